"""Which initial states an evaluation used, against its benchmark's protocol.

The initial state of an episode, per benchmark, as its runners choose it:

- LIBERO (and LIBERO-PRO / -Plus suites): episode ``i`` of a task starts from the task's
  official initial state ``i`` (50 per task). ``run_libero_eval.py`` of openvla / openvla-oft
  and its forks, openpi's LIBERO example, vla-evaluation-harness and ``nblib eval`` all do
  ``initial_states[episode]``, so the file's episode index names the state. LeRobot's files
  are the exception: its LIBERO env chose the state per vector-env slot, not per episode
  (before huggingface/lerobot#2899 every reset of a slot reused the same state; after it the
  order depends on when episodes end, huggingface/lerobot#4152), and ``eval_info.json``
  records no state, so the states of a LeRobot run cannot be read from its file.
- Meta-World as ``nblib eval`` runs it: each episode its own layout seed (the ``seed``
  column; :func:`nblib.eval.rollout.episode_seed`, checked distinct before a run starts).

Decisions: a state repeated within a task is a mismatch (the repeat adds no new scene while
the count says it did, so the interval is too narrow); so are tasks of one run and suite
with different episode counts (the suite's rate then weights tasks unequally, unlike the
protocol; an interrupted run is the usual cause, and the file's ``complete`` flag says so).
Fewer episodes than LIBERO's 50 per task, the same for every task, is reported ("10 of 50")
but is no mismatch: a short run is a smaller sample, honest as long as its intervals are
read, and partial runs are common. When a run's states cannot be known (LeRobot, counts
only) and nothing else is wrong the check is ``skipped``: it cannot say the states were
distinct. Without result files the check reports the plan of the doctor's own episodes.
"""

from __future__ import annotations

import warnings
from collections import Counter

from nblib.studies.doctor.checks import mismatch, ok, skipped

CHECK = "coverage"
LIBERO_EPISODES = 50  # official initial states per task, one episode each (the protocol)
LEROBOT_FORMATS = ("lerobot_eval_info", "lerobot_stdout")
MAX_TASKS = 120  # tasks kept in the evidence (metrics.json); LIBERO-90 has 90
LIBERO_FIX = (
    "start episode i of a task from the task's official initial state i (LIBERO's "
    "protocol: 50 per task, e.g. nblib eval --sim libero)"
)
METAWORLD_FIX = (
    "give every episode its own layout seed (nblib eval derives one per episode: "
    "nblib.eval.rollout.episode_seed)"
)


def coverage(study):
    """The initial states of the result files in ``study.config.results`` (or, without
    any, of the doctor's own closed-loop plan) against the benchmark's protocol."""
    if not study.config.results:
        return _plan(study)
    from nblib.eval.results import read_results

    with warnings.catch_warnings(record=True) as caught:  # a README beside the logs
        warnings.simplefilter("always")
        frame = read_results(study.config.results)
    ignored = [str(w.message) for w in caught]
    formats = {source: _format_of(source) for source in frame["source"].unique()}
    groups = []
    for (run, suite, task, task_id), rows in frame.groupby(
        ["run", "suite", "task", "task_id"], sort=False, dropna=False
    ):
        fmt = formats[rows["source"].iloc[0]]
        states, how = states_of(rows, suite, fmt)
        groups.append(_group(run, suite, task, task_id, rows, states, how))
    return _judge(groups, source="results", ignored=ignored)


def _format_of(source: str) -> str:
    from pathlib import Path

    from nblib.eval.results import detect_format

    text = Path(source).read_text(encoding="utf-8", errors="replace")
    return detect_format(text, source)


def family(suite: str) -> str:
    from nblib.eval.results.schema import SUITES, base_suite

    if base_suite(suite) in SUITES:
        return "libero"
    return "metaworld" if suite == "metaworld" else "other"


def states_of(rows, suite: str, fmt: str) -> tuple[list | None, str]:
    """(the initial state of each episode, or None when the file cannot tell; how it was
    read)."""
    kind = family(suite)
    if fmt in LEROBOT_FORMATS:
        return None, "LeRobot's files record no initial state per episode"
    if kind == "libero":
        if rows["episode"].isna().any():
            return None, "the file gives counts, not episodes"
        return [int(e) for e in rows["episode"]], "episode index = official initial state"
    if kind == "metaworld":
        if rows["seed"].isna().any():
            return None, "the file gives no layout seed per episode"
        return [int(s) for s in rows["seed"]], "layout seed"
    return None, f"no protocol is known for suite {suite!r}"


def _group(run, suite, task, task_id, rows, states, how) -> dict:
    import pandas as pd

    counts = Counter(states) if states is not None else Counter()
    repeated = sorted(([s, n] for s, n in counts.items() if n > 1), key=lambda x: -x[1])
    complete = rows["complete"]
    return {
        "run": str(run),
        "suite": str(suite),
        "task": str(task),
        "task_id": None if pd.isna(task_id) else int(task_id),
        "family": family(str(suite)),
        "episodes": len(rows),
        "unique": len(counts) if states is not None else None,
        "repeated": repeated[:5],
        "beyond": sum(s >= LIBERO_EPISODES for s in counts) if family(suite) == "libero" else 0,
        "states": how,
        "interrupted": bool((complete == False).any()),  # noqa: E712 (nullable boolean)
    }


def _plan(study):
    """The states of the doctor's own closed-loop episodes (nothing is run)."""
    from nblib.eval.rollout import episode_seed

    config = study.eval_config()
    groups = []
    if config.sim == "libero":  # the harness runs episode i from official state i
        for task_id in config.task_ids:
            states = list(range(config.episodes))
            how = "episode index = official initial state"
            groups.append(_plan_group(config, f"task {task_id}", task_id, states, how))
    else:
        for task in config.tasks:
            states = [episode_seed(config.seed, task, e) for e in range(config.episodes)]
            groups.append(_plan_group(config, task, None, states, "layout seed"))
    return _judge(groups, source="plan", ignored=[])


def _plan_group(config, task, task_id, states, how) -> dict:
    counts = Counter(states)
    suite = config.suite or "metaworld"
    return {
        "run": "doctor plan",
        "suite": suite,
        "task": task,
        "task_id": task_id,
        "family": family(suite),
        "episodes": len(states),
        "unique": len(counts),
        "repeated": sorted(([s, n] for s, n in counts.items() if n > 1), key=lambda x: -x[1]),
        "beyond": 0,
        "states": how,
        "interrupted": False,
    }


def _label(g: dict) -> str:
    return f"{g['run']} | {g['suite']} | {g['task']}"


def _judge(groups: list[dict], source: str, ignored: list[str]):
    repeats = [g for g in groups if g["repeated"]]
    uneven = _uneven(groups)
    unknown = [g for g in groups if g["unique"] is None]
    runs = _runs(groups)
    evidence = dict(
        source=source,
        protocol={"libero": LIBERO_EPISODES},
        runs=runs,
        tasks=len(groups),
        repeated_tasks=len(repeats),
        uneven_runs=len(uneven),
        unknown_tasks=len(unknown),
        per_task={
            _label(g): {k: g[k] for k in ("episodes", "unique", "repeated", "beyond", "states")}
            | {"protocol": LIBERO_EPISODES if g["family"] == "libero" else None}
            for g in groups[:MAX_TASKS]
        },
        shown_tasks=min(len(groups), MAX_TASKS),
        ignored_files=ignored[:3],
    )
    summary = "; ".join(r["summary"] for r in runs[:4]) + (
        f"; and {len(runs) - 4} more run(s)" if len(runs) > 4 else ""
    )
    beyond = sum(g["beyond"] for g in groups)
    if beyond:  # vla-eval and run_libero_eval.py would fail there; LeRobot wraps around
        summary += (
            f"; {beyond} LIBERO episode index(es) lie beyond the {LIBERO_EPISODES} official "
            "states (the runner chose those states some other way)"
        )
    if repeats or uneven:
        parts = []
        if repeats:
            g = repeats[0]
            state, times = g["repeated"][0]
            what = "initial state" if g["family"] == "libero" else "layout seed"
            fix = LIBERO_FIX if g["family"] == "libero" else METAWORLD_FIX
            parts.append(
                f"{len(repeats)} task(s) repeat initial states: run {g['run']}, {g['suite']} "
                f"task {g['task']!r} uses {what} {state} in {times} of its {g['episodes']} "
                f"episodes ({g['unique']} distinct); fix: {fix}"
            )
        if uneven:
            u = uneven[0]
            why = " (the file marks the run interrupted: finish it)" if u["interrupted"] else ""
            parts.append(
                f"run {u['run']}, {u['suite']}: task {u['task']!r} has {u['count']} episodes "
                f"where its other {u['others']} task(s) have {u['usual']}{why}; compare "
                "task by task, or give every task the same episodes"
            )
        return mismatch(CHECK, ". ".join(parts) + f". Coverage: {summary}.", **evidence)
    if unknown:
        g = unknown[0]
        return skipped(
            CHECK,
            f"The initial states of {len(unknown)} of {len(groups)} task(s) cannot be told "
            f"(run {g['run']}: {g['states']}), so whether they differ is unknown; the "
            f"episode counts agree: {summary}. Evaluate with a runner that records them "
            "(LIBERO: episode i from official initial state i; LeRobot before "
            "huggingface/lerobot#2899 reused one state per environment slot).",
            **evidence,
        )
    head = (
        "No result files given (results=...): the doctor's own closed-loop episodes"
        if source == "plan"
        else f"{len(groups)} task(s) in {len(runs)} run(s)"
    )
    return ok(
        CHECK,
        f"{head} start each from its own initial state and every task of a run has the "
        f"same count: {summary}.",
        **evidence,
    )


def _uneven(groups: list[dict]) -> list[dict]:
    """Per (run, suite) whose tasks differ in episode count: the first task off the most
    common count."""
    out = []
    for (run, suite), members in _by_run(groups).items():
        counts = Counter(g["episodes"] for g in members)
        if len(counts) < 2:
            continue
        usual = counts.most_common(1)[0][0]
        odd = next(g for g in members if g["episodes"] != usual)
        out.append(
            {
                "run": run,
                "suite": suite,
                "task": odd["task"],
                "count": odd["episodes"],
                "usual": usual,
                "others": sum(1 for g in members if g["episodes"] == usual),
                "interrupted": any(g["interrupted"] for g in members),
            }
        )
    return out


def _by_run(groups: list[dict]) -> dict:
    runs: dict = {}
    for g in groups:
        runs.setdefault((g["run"], g["suite"]), []).append(g)
    return runs


def _runs(groups: list[dict]) -> list[dict]:
    """One line per (run, suite): tasks × episodes, against the protocol, distinct states."""
    out = []
    for (run, suite), members in _by_run(groups).items():
        counts = sorted({g["episodes"] for g in members})
        uniques = sorted({g["unique"] for g in members if g["unique"] is not None})
        per = " or ".join(str(c) for c in counts)
        libero = members[0]["family"] == "libero"
        protocol = f" ({per} of LIBERO's {LIBERO_EPISODES} per task)" if libero else ""
        distinct = (
            f", {' or '.join(str(u) for u in uniques)} distinct state(s) per task"
            if uniques
            else ", states unknown"
        )
        out.append(
            {
                "run": run,
                "suite": suite,
                "tasks": len(members),
                "episodes_per_task": counts,
                "summary": f"{run} {suite}: {len(members)} task(s) × {per} episodes"
                f"{protocol}{distinct}",
            }
        )
    return out
