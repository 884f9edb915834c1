"""Does the policy hear the instruction the evaluation means, and the one it was trained on?

``instruction_delivery`` runs a few short episodes through the real eval harness
(:func:`nblib.eval.rollout.evaluate`, one per task and instruction mode) with a recording
wrapper around the policy (a zero policy when none is given: delivery is the harness's
business, not the policy's), and compares what ``act`` received with what each mode
intends, computed here without the harness's code path:

- Meta-World: from the generator's instruction table (:data:`nblib.data.metaworld_gen.
  INSTRUCTIONS`, the one the demos were made with): ``original`` the task's first
  phrasing, ``paraphrase`` one of its other phrasings, ``other`` a phrasing of another
  task, ``empty`` nothing.
- LIBERO-PRO's ``_lan`` / ``_task`` suites: the ``(:language ...)`` of the suite's own BDDL
  file for the task, read with a regular expression here. The known fault is a runner that
  takes the instruction from the file name or the base suite, which in these suites is the
  unperturbed one, so the policy never sees the perturbation.
- LIBERO's suites and the other LIBERO-PRO variants: the task's instruction as LIBERO's
  benchmark registry names it (from its file name), the one LIBERO's protocol and every
  published evaluation send. Their BDDL files often word it otherwise (libero_spatial's
  say "Pick the akita black bowl ..." for "pick up the black bowl ..."), which is why the
  BDDL is the reference only where the perturbation is the wording.

Then the original instruction is compared with what the training data says for the task
(``store.instruction`` of its demos): an evaluation that words the task differently from
training is the common silent fault. For a served policy the wrapper sits on the client:
what it sees is what goes on the wire, not what the server does with it.

Texts are compared with whitespace collapsed, case folded and a trailing full stop dropped
(LIBERO's own BDDL parser lower-cases; a tokenizer seeing "Put" for "put" is not the fault
this check is after).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from nblib.errors import DataError
from nblib.studies.doctor.checks import mismatch, ok

CHECK = "instruction_delivery"
#: Steps per episode: the instruction is passed at every step, so a few show whether it
#: holds through the episode; more would only cost simulator time.
STEPS = 3
LIBERO_MODES = ("original", "other", "empty")  # LIBERO's paraphrases are the _lan suites
#: LIBERO-PRO suites whose perturbation is the wording itself (a paraphrase, a new task)
WORDING_VARIANTS = ("lan", "task")
_LANGUAGE = re.compile(r"\(:language\s+([^()]*?)\s*\)", re.IGNORECASE)


def same_text(a: str, b: str) -> bool:
    return normalize(a) == normalize(b)


def normalize(text: str) -> str:
    return " ".join(str(text).split()).casefold().rstrip(".").rstrip()


def clip(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# ----------------------------------------------------------------------------- recording


class RecordingPolicy:
    """``policy`` as the harness sees it (cameras, action width, episode hooks forwarded),
    recording per episode every instruction ``act`` receives and, for a served policy,
    the text the client puts on the wire."""

    def __init__(self, policy, sim: str, spec: str | None = None):
        self._policy, self._sim, self._spec = policy, sim, spec or ""
        self.episodes: list[dict] = []

    def __getattr__(self, name):  # cameras, image_size, color_bits, depth, action_dim, ...
        if name.startswith("_"):  # never forward our own (unset during copy / unpickling)
            raise AttributeError(name)
        return getattr(self._policy, name)

    def begin_episode(self, task: str, suite: str, episode: int, seed: int) -> None:
        self.episodes.append({"task": task, "episode": episode, "received": [], "wire": []})
        begin = getattr(self._policy, "begin_episode", None)
        if begin is not None:
            begin(task=task, suite=suite, episode=episode, seed=seed)
        else:
            self._policy.reset(task)

    def reset(self, task: str) -> None:  # never called: begin_episode is defined
        self.begin_episode(task, "", -1, -1)

    def end_episode(self, result: dict) -> None:
        end = getattr(self._policy, "end_episode", None)
        if end is not None:
            end(result)

    def act(self, observation: dict, instruction: str):
        record = self.episodes[-1]
        record["received"].append(instruction)
        if self._spec:
            record["wire"].append(self._wire_text(observation, instruction))
        return self._policy.act(observation, instruction)

    def _wire_text(self, observation: dict, instruction: str) -> str:
        """The instruction as nblib's client serialises it (frames left out: only the
        text is wanted)."""
        bare = {k: v for k, v in observation.items() if k != "images"}
        if self._spec.startswith("openpi://"):
            from nblib.serving.openpi import PROMPT, to_openpi

            return to_openpi(bare, instruction, self._sim, ())[PROMPT]
        from nblib.serving.wire import to_wire

        return to_wire(bare, instruction, self._sim)["task_description"]


# ----------------------------------------------------------------------------- intended


def bddl_language(path: Path) -> str:
    """The ``(:language ...)`` a BDDL file states."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    found = _LANGUAGE.search(re.sub(r";[^\n]*", "", text))  # BDDL comments start with ;
    if found is None:
        raise DataError(f"{path}: no (:language ...) in this BDDL file")
    return " ".join(found.group(1).split())


def libero_texts(suite: str) -> dict:
    """Per task id of ``suite``: ``names`` (LIBERO's registry, from the file name) and
    ``bddl`` (the suite's own BDDL file's ``(:language ...)``); ``intended`` is the one the
    policy should be told (the BDDL's in ``_lan`` / ``_task`` suites, else the name) and
    ``source`` says which. Read through LIBERO's benchmark registry, not through nblib's
    LiberoSuite, whose result this checks."""
    import contextlib
    import io

    from nblib.eval.libero import _import_libero
    from nblib.eval.results.schema import base_suite

    benchmark, get_libero_path, _, _ = _import_libero()
    with contextlib.redirect_stdout(io.StringIO()):  # LIBERO prints its task order
        tasks = benchmark.get_benchmark_dict()[suite]()
    entries = [tasks.get_task(i) for i in range(int(tasks.n_tasks))]
    root = Path(get_libero_path("bddl_files"))
    names = [t.language for t in entries]
    bddl = [bddl_language(root / t.problem_folder / t.bddl_file) for t in entries]
    worded = suite[len(base_suite(suite)) + 1 :] in WORDING_VARIANTS
    return {
        "names": names,
        "bddl": bddl,
        "intended": bddl if worded else names,
        "source": "the suite's BDDL (:language ...)" if worded else "LIBERO's task name",
        "worded": worded,
    }


def intended_metaworld(task: str, mode: str) -> list[str]:
    from nblib.data.metaworld_gen import INSTRUCTIONS

    own = INSTRUCTIONS[task]
    if mode == "original":
        return [own[0]]
    if mode == "paraphrase":
        return list(own[1:])
    if mode == "other":
        mine = {normalize(t) for t in own}
        return [
            t for k, v in INSTRUCTIONS.items() if k != task for t in v if normalize(t) not in mine
        ]
    return [""]


def intended_libero(texts: list[str], task_id: int, mode: str) -> list[str]:
    if mode == "original":
        return [texts[task_id]]
    if mode == "other":
        return [t for t in texts if not same_text(t, texts[task_id])]
    return [""]


def trained_instructions(store, names: list[str]) -> list[str]:
    """The instructions the training data gives the demos of a task (the demos whose task
    label is one of ``names``)."""
    wanted = {normalize(n) for n in names}
    demos = [d for d in store.demos if normalize(store.task_label(d)) in wanted]
    return sorted({store.instruction[d] or "" for d in demos})


# ----------------------------------------------------------------------------- the check


def instruction_delivery(study, modes=None, steps: int = STEPS):
    """One short episode per task and instruction mode through the eval harness; every
    instruction ``act`` receives against the intended one, and the original against the
    training data's."""
    from nblib.eval.rollout import INSTRUCTION_MODES, evaluate
    from nblib.eval.sims import action_dim
    from nblib.serving import is_remote

    config = study.config
    sim = config.sim
    modes = list(modes or (LIBERO_MODES if sim == "libero" else INSTRUCTION_MODES))
    spec = config.policy if is_remote(config.policy) else None
    if study.policy is not None:
        policy = study.policy
    else:
        from nblib.eval.policies import ZeroPolicy

        policy = ZeroPolicy(action_dim(sim))
    suite = study.eval_config().suite
    libero = libero_texts(suite) if sim == "libero" else None
    episodes = []
    with tempfile.TemporaryDirectory(prefix="nblib-doctor-delivery-") as folder:
        for mode in modes:
            recorder = RecordingPolicy(policy, sim, spec)
            rows: list[dict] = []
            run = study.eval_config(
                instruction=mode, episodes=1, max_steps=steps, workers=1, run=f"doctor-{mode}"
            )
            evaluate(run, Path(folder) / f"{mode}.jsonl", progress=False, policy=recorder,
                     on_row=rows.append)  # fmt: skip
            for record, row in zip(recorder.episodes, rows, strict=True):
                episodes.append(_judge(record, row, mode, libero))
    training = _training(study, episodes, libero)
    return _result(study, episodes, training, modes, steps, spec, libero)


def _judge(record: dict, row: dict, mode: str, libero) -> dict:
    if libero is None:
        key = label = row["task"]
        intended = intended_metaworld(row["task"], mode)
        names = [row["task"]]
    else:
        key = int(row["task_id"])
        label = f"task {key}: {libero['intended'][key]}"
        intended = intended_libero(libero["intended"], key, mode)
        # the data may name the task either way (LIBERO's HDF5 files by the BDDL text)
        names = [row["task"], libero["names"][key], libero["bddl"][key]]
    received = list(dict.fromkeys(record["received"]))  # distinct, in order
    wire = list(dict.fromkeys(record["wire"]))
    good = bool(received) and all(any(same_text(r, t) for t in intended) for r in received)
    good = good and all(any(same_text(w, t) for t in intended) for w in wire)
    return {
        "task": label,
        "key": key,
        "names": names,
        "mode": mode,
        "episode": int(row["episode"]),
        "received": received,
        "wire": wire,
        "intended": intended,
        "ok": good,
    }


def _training(study, episodes: list[dict], libero) -> dict:
    """Per task: the original instruction delivered against the training data's."""
    if libero is not None and libero["worded"]:  # a wording unlike training's, by design
        suite = study.eval_config().suite
        return {"applies": False, "why": f"{suite} changes the instruction by design"}
    out: dict = {"applies": True, "tasks": {}}
    for e in episodes:
        if e["mode"] != "original":
            continue
        trained = trained_instructions(study.store, e["names"])
        sent = e["received"]
        agree = bool(trained) and all(any(same_text(s, t) for t in trained) for s in sent)
        out["tasks"][e["task"]] = {
            "trained": trained[:5],
            "sent": sent,
            "ok": None if not trained else agree,
        }
    return out


def _delivery_fix(libero) -> str:
    if libero is None:
        return (
            "pass policy.act each episode's instruction as the mode defines it (the task's "
            "own, one of its paraphrases, another task's, or none)."
        )
    if libero["worded"]:
        return (
            "tell the policy the instruction the suite's BDDL file states ((:language ...)"
            ", e.g. LIBERO's env.language_instruction), not the one LIBERO derives from "
            "the file name, which is the unperturbed base task's."
        )
    return "tell the policy LIBERO's task instruction (task.language) as the protocol does."


def _result(study, episodes, training, modes, steps, spec, libero):
    tasks = list(dict.fromkeys(e["task"] for e in episodes))
    bad = [e for e in episodes if not e["ok"]]
    compared = {t: v for t, v in training.get("tasks", {}).items() if v["ok"] is not None}
    untrained = [t for t, v in training.get("tasks", {}).items() if v["ok"] is None]
    wrong = {t: v for t, v in compared.items() if not v["ok"]}
    config = study.config
    where = f"{config.sim} {study.eval_config().suite}" if config.sim == "libero" else config.sim
    who = spec or (config.policy if study.policy is not None else "a zero policy")
    evidence = dict(
        sim=config.sim,
        suite=study.eval_config().suite,
        policy=who,
        served=spec is not None,
        intended_from=libero["source"] if libero else "nblib.data.metaworld_gen.INSTRUCTIONS",
        modes=list(modes),
        tasks=tasks,
        steps=steps,
        episodes=len(episodes),
        delivered=len(episodes) - len(bad),
        matrix={t: {e["mode"]: int(e["ok"]) for e in episodes if e["task"] == t} for t in tasks},
        received={
            t: {e["mode"]: (e["received"] or [""])[0] for e in episodes if e["task"] == t}
            for t in tasks
        },
        training={t: (None if v["ok"] is None else int(v["ok"]))
                  for t, v in training.get("tasks", {}).items()},  # fmt: skip
        trained_wording={t: v["trained"] for t, v in training.get("tasks", {}).items()},
        training_compared=training["applies"],
        mismatches=[
            {"task": e["task"], "mode": e["mode"], "episode": e["episode"],
             "received": e["received"], "intended": e["intended"][:3]}
            for e in bad[:10]
        ],
    )  # fmt: skip
    runs = (
        f"{len(episodes)} episode(s) ({len(tasks)} task(s) × {', '.join(modes)}; {steps} "
        f"steps each, {who}, {where})"
    )
    served = (
        f" Recorded on the client of {spec}: the text sent as the instruction on the wire; "
        "what the server does with it is not visible from here."
        if spec
        else ""
    )
    if bad:
        e = bad[0]
        got = " / ".join(repr(clip(r)) for r in e["received"]) or "nothing"
        want = " or ".join(repr(clip(t)) for t in e["intended"][:2])
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        detail = (
            f"{len(bad)} of {runs} got another instruction than intended: {e['task']} "
            f"({e['mode']}, episode {e['episode']}) received {got} where {want} was "
            f"intended{more}. Fix: {_delivery_fix(libero)}{served}"
        )
        return mismatch(CHECK, detail, **evidence)
    if wrong:
        task, v = next(iter(wrong.items()))
        detail = (
            f"All {runs} received the intended instruction, but for {len(wrong)} of "
            f"{len(compared)} task(s) the eval's original wording is not the training "
            f"data's: {task} is evaluated with {clip(v['sent'][0])!r}, its demos say "
            f"{' / '.join(repr(clip(t)) for t in v['trained'][:2])}. Fix: evaluate with the "
            f"wording the policy was trained on (or retrain on the eval's).{served}"
        )
        return mismatch(CHECK, detail, **evidence)
    if not training["applies"]:
        against = f" The training data is not compared: {training['why']}."
    elif compared:
        against = (
            f" The original instruction of {len(compared)} task(s) is the one its training "
            "demos carry"
            + (f"; {len(untrained)} task(s) have no demos in the data" if untrained else "")
            + "."
        )
    else:
        against = " The training data has no demos of these tasks, so it is not compared."
    intended = f" ({evidence['intended_from']})" if libero else ""
    detail = f"All {runs} received the intended instruction{intended}.{against}{served}"
    return ok(CHECK, detail, **evidence)
