"""Closed-loop evaluation: run a policy in a simulator and write one row per episode.

Simulators: Meta-World (``sim="metaworld"``, :mod:`nblib.eval.metaworld`) and LIBERO /
LIBERO-PRO (``sim="libero"``, :mod:`nblib.eval.libero`, the optional extra).
:func:`evaluate` runs ``episodes`` episodes of every task with fixed seeds (episode ``i``
of a task has the same layout for every policy and option: a seeded Meta-World layout, or
LIBERO's official initial state ``i``), asks the policy for an action
chunk and executes ``replan`` of its actions before asking again, stops at the simulator's
success or at the step limit, and writes every episode in the results schema
(:mod:`nblib.eval.results.schema`) the moment it ends, so ``nblib results summarize`` and
notebook 05 read the file like any other tool's output.

Crash safety: rows are appended (and flushed) with ``complete=False`` as episodes end; only
when every episode has finished is the file rewritten, atomically, with ``complete=True``.
A run that dies half-way leaves its finished episodes, marked incomplete. An episode whose
policy or simulator raises is reported and the run is incomplete; the others still run.
The policy, tasks, episodes and output name are checked before anything runs, and the file
is created by the first finished episode (:mod:`nblib.eval.output`), so a run that cannot
start leaves no file behind to block its retry. Meta-World runs at most
:data:`MAX_METAWORLD_EPISODES` episodes per task, with distinct layout seeds.

Perturbations (the ``perturbation`` column): ``instruction`` = ``paraphrase`` gives each
episode one of the task's paraphrases (``language``), ``other`` another task's instruction
(``instruction_other``), ``empty`` an empty one (``instruction_empty``; seed 000 expects a
policy that uses language to fail); ``position_noise`` widens the reset space
(``position``); several join with ``+``. A LIBERO-PRO suite records its own category
(``language``, ``object``, ``position``, ``task``); LIBERO's paraphrases are the
``<suite>_lan`` suites and its wider layouts the ``_swap`` suites, so ``paraphrase`` and
``position_noise`` are Meta-World options.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from nblib.errors import NotebookError, ParameterError, is_int, is_number, require
from nblib.eval.output import ResultsFile, unfinished_jobs
from nblib.eval.results.schema import base_suite
from nblib.eval.shards import parse_shard
from nblib.eval.sims import check_action_dim, simulator_for

SIMULATORS = ("metaworld", "libero")
INSTRUCTION_MODES = ("original", "paraphrase", "other", "empty")
DEFAULT_TASKS = ("reach", "push")  # Meta-World
# Meta-World draws episode i's layout from a 31-bit seed (episode_seed), so the layouts
# of a task are only as many as its distinct seeds; task_specs checks that the episodes
# asked for have distinct ones, up to this many per task (at 10,000 episodes a task's
# 95 % Wilson interval is at most +-1 point wide: more adds run time, not information).
MAX_METAWORLD_EPISODES = 10_000


@dataclass
class EvalConfig:
    tasks: list[str] | None = None  # Meta-World tasks (default: reach, push)
    policy: str = "expert"  # expert, random, zero, a notebook-01 run folder, or your policy: file.py:factory, module:factory or an entry point
    episodes: int = 10  # per task
    sim: str = "metaworld"
    seed: int = 0  # episode layouts and random/flow sampling
    max_steps: int | None = None  # per episode (None: the simulator's own limit)
    replan: int = 1  # actions executed from each predicted chunk
    instruction: str = "original"  # original, paraphrase, other or empty
    position_noise: float = 0.0  # metres added to the reset box in x and y
    workers: int = 1  # worker processes (1: in this process)
    video: str | None = None  # folder for one MP4 per episode
    run: str | None = None  # run label (None: from the policy and the options)
    device: str = "cpu"
    suite: str | None = None  # LIBERO: the suite (libero_spatial, ..., libero_goal_lan, ...)
    task_ids: list[int] | None = None  # LIBERO: task ids in the suite (default: all)
    policy_kwargs: dict = field(
        default_factory=dict
    )  # your policy's factory's keyword arguments (JSON/YAML)
    manifest: str | None = (
        None  # your policy's data (cameras, state, statistics); default: the embedded Meta-World demos
    )
    server_timeout: float = 60.0  # policy=ws://...: seconds to wait for each answer of the server
    shard: str | None = (
        None  # I/N: only the I-th (0..N-1) of N disjoint slices of the (task, episode) list
    )

    def __post_init__(self):
        own = "EvalConfig"
        require(self.sim in SIMULATORS, own, "sim", self.sim, f"one of {list(SIMULATORS)}")
        if self.sim == "metaworld":
            self._check_metaworld(own)
        else:
            self._check_libero(own)
        require(isinstance(self.policy, str), own, "policy", self.policy, "a name or a path")
        pk = self.policy_kwargs
        require(isinstance(pk, dict), own, "policy_kwargs", pk, "a mapping such as {width: 64}")
        m = self.manifest
        require(m is None or isinstance(m, str), own, "manifest", m, "None or a name or path")
        for name in ("episodes", "replan", "workers"):
            value = getattr(self, name)
            require(is_int(value) and value >= 1, own, name, value, "an int >= 1")
        require(is_int(self.seed), own, "seed", self.seed, "an int")
        t = self.server_timeout
        require(is_number(t) and t > 0, own, "server_timeout", t, "seconds > 0")
        if self.shard is not None:
            parse_shard(self.shard)
        if self.sim == "metaworld" and self.episodes > MAX_METAWORLD_EPISODES:
            raise ParameterError(
                f"episodes={self.episodes} (--episodes): Meta-World runs at most "
                f"{MAX_METAWORLD_EPISODES} episodes per task (each episode's layout comes "
                "from its own seed, checked distinct up to that count)"
            )
        require(
            self.max_steps is None or (is_int(self.max_steps) and self.max_steps >= 1),
            own,
            "max_steps",
            self.max_steps,
            "None or an int >= 1",
        )
        require(
            self.instruction in INSTRUCTION_MODES,
            own,
            "instruction",
            self.instruction,
            f"one of {list(INSTRUCTION_MODES)}",
        )
        require(
            is_number(self.position_noise) and self.position_noise >= 0,
            own,
            "position_noise",
            self.position_noise,
            "metres >= 0",
        )

    def _check_metaworld(self, own: str) -> None:
        from nblib.data.metaworld_gen import INSTRUCTIONS

        for name in ("suite", "task_ids"):
            value = getattr(self, name)
            require(
                value is None,
                own,
                name,
                value,
                "nothing with sim='metaworld' (Meta-World tasks are named: tasks=NAME...)",
            )
        self.tasks = list(DEFAULT_TASKS) if self.tasks is None else self.tasks
        ok = isinstance(self.tasks, (list, tuple)) and self.tasks
        ok = ok and all(isinstance(t, str) for t in self.tasks)
        require(bool(ok), own, "tasks", self.tasks, "a non-empty list of task names")
        self.tasks = list(self.tasks)
        unknown = [t for t in self.tasks if t not in INSTRUCTIONS]
        require(
            not unknown, own, "tasks", self.tasks, f"Meta-World tasks among {sorted(INSTRUCTIONS)}"
        )

    def _check_libero(self, own: str) -> None:
        from nblib.eval.libero import check_suite

        require(
            self.tasks is None,
            own,
            "tasks",
            self.tasks,
            "nothing with sim='libero' (LIBERO tasks are numbered in their suite: task_ids=ID...)",
        )
        require(isinstance(self.suite, str), own, "suite", self.suite, "a LIBERO suite name")
        check_suite(self.suite)
        if self.task_ids is not None:
            ok = isinstance(self.task_ids, (list, tuple)) and self.task_ids
            ok = ok and all(is_int(t) and t >= 0 for t in self.task_ids)
            require(bool(ok), own, "task_ids", self.task_ids, "a non-empty list of ints >= 0")
            self.task_ids = [int(t) for t in self.task_ids]
        base = base_suite(self.suite)
        require(
            self.instruction != "paraphrase",
            own,
            "instruction",
            self.instruction,
            f"original, other or empty with LIBERO (its paraphrases are the suite {base}_lan)",
        )
        require(
            not self.position_noise,
            own,
            "position_noise",
            self.position_noise,
            f"0 with LIBERO (its moved layouts are the suite {base}_swap)",
        )

    @property
    def label(self) -> str:
        if self.run:
            return self.run
        from nblib.serving import check_url, is_remote

        name = self.policy
        path = Path(self.policy).expanduser()
        if is_remote(name):  # a policy server: named after its address
            host, port = check_url(name)
            name = f"server-{host}-{port}"
        elif path.exists():  # a saved policy: named after its run folder
            path = path.resolve()
            path = path.parent if path.name == "policy.pt" else path
            path = path.parent if path.name in ("policy", "plugin.json") else path
            path = path.parent if path.name == "policy" else path
            name = path.name
        elif ":" in name:  # a plug-in spec: named after its factory's file or module
            target, _, factory = name.rpartition(":")
            name = f"{Path(target).stem if target.endswith('.py') else target}-{factory}"
        parts = [name]
        if self.replan != 1:
            parts.append(f"replan{self.replan}")
        if self.instruction != "original":
            parts.append(f"instr-{self.instruction}")
        if self.position_noise:
            parts.append(f"pos{self.position_noise:g}")
        return "_".join(parts)


@dataclass(frozen=True)
class TaskSpec:
    """One task of a run, in what a worker needs to build its simulator and write rows."""

    sim: str
    key: str | int  # Meta-World task name, or LIBERO task id
    suite: str  # the rows' suite
    task: str  # the rows' task: Meta-World name, or LIBERO instruction
    task_id: int | None
    max_steps: int  # the simulator's step limit for the task
    instructions: tuple[str, ...]  # the original first, then paraphrases
    other_instruction: str  # another task's instruction (instruction="other")
    perturbation: str = "none"  # the suite's own (LIBERO-PRO), else none

    @property
    def slug(self) -> str:  # file names
        return self.task if self.task_id is None else f"{self.suite}_task{self.task_id:02d}"


def task_specs(config: EvalConfig) -> list[TaskSpec]:
    """The tasks of ``config`` in run order (imports LIBERO for ``sim="libero"``)."""
    if config.sim == "metaworld":
        from nblib.data.metaworld_gen import INSTRUCTIONS
        from nblib.eval.metaworld import MAX_STEPS

        names = sorted(INSTRUCTIONS)
        for task in config.tasks:
            _check_distinct_layouts(config.seed, task, config.episodes)
        return [
            TaskSpec(
                sim="metaworld",
                key=task,
                suite="metaworld",
                task=task,
                task_id=None,
                max_steps=MAX_STEPS,
                instructions=tuple(INSTRUCTIONS[task]),
                other_instruction=INSTRUCTIONS[names[(names.index(task) + 1) % len(names)]][0],
            )
            for task in config.tasks
        ]
    from nblib.eval.libero import LiberoSuite

    suite = LiberoSuite(config.suite)
    ids = config.task_ids if config.task_ids is not None else list(range(suite.n_tasks))
    specs = []
    for task_id in ids:
        states = len(suite.init_states(task_id))
        if config.episodes > states:
            raise ParameterError(
                f"episodes={config.episodes}: {suite.name} task {task_id} ships {states} "
                f"official initial states; LIBERO's protocol runs one episode per state "
                f"(episodes <= {states})"
            )
        specs.append(
            TaskSpec(
                sim="libero",
                key=task_id,
                suite=suite.name,
                task=suite.task_name(task_id),
                task_id=task_id,
                max_steps=suite.max_steps,
                instructions=(suite.instruction(task_id),),
                other_instruction=suite.instruction((task_id + 1) % suite.n_tasks),
                perturbation=suite.perturbation,
            )
        )
    return specs


def episode_seed(seed: int, task: str, episode: int) -> int:
    """The layout seed of episode ``episode`` of ``task`` (crc32: stable across processes).
    Distinct from the demonstrations' seeds, so evaluation layouts are new ones."""
    return zlib.crc32(f"eval/{seed}/{task}/{episode}".encode()) & 0x7FFFFFFF


def _check_distinct_layouts(seed: int, task: str, episodes: int) -> None:
    """A ParameterError when two of the first ``episodes`` episodes of a Meta-World
    ``task`` would share a layout seed (the same scene counted twice)."""
    first: dict[int, int] = {}
    for episode in range(episodes):
        other = first.setdefault(episode_seed(seed, task, episode), episode)
        if other != episode:
            raise ParameterError(
                f"episodes={episodes} (--episodes): with seed={seed}, episode {episode} of "
                f"{task} would repeat episode {other}'s layout; pass --episodes {episode} "
                "or fewer, or another --seed"
            )


def instruction_for(spec: TaskSpec, episode: int, mode: str) -> tuple[str, str]:
    """(instruction, perturbation) of an episode under instruction ``mode``."""
    texts = spec.instructions
    if mode == "original":
        return texts[0], "none"
    if mode == "paraphrase":
        if len(texts) < 2:
            raise ParameterError(f"instruction='paraphrase': task {spec.task!r} has none")
        return texts[1 + episode % (len(texts) - 1)], "language"
    if mode == "other":
        return spec.other_instruction, "instruction_other"
    return "", "instruction_empty"


def _join(*perturbations: str) -> str:
    named = [p for p in perturbations if p != "none"]
    return "+".join(named) if named else "none"


# ----------------------------------------------------------------------------- one episode


def run_episode(sim, policy, spec: TaskSpec, episode: int, config: EvalConfig, writer=None) -> dict:
    """One episode: reset with its seed, act until success or the step limit. Returns the
    row (results schema). ``writer(frame)`` receives video frames when given."""
    key = spec.key if spec.task_id is None else f"{spec.suite}/{spec.task_id}"
    seed = episode_seed(config.seed, key, episode)
    instruction, perturbation = instruction_for(spec, episode, config.instruction)
    position = "position" if config.position_noise else "none"
    limit = config.max_steps or spec.max_steps
    begin = getattr(policy, "begin_episode", None)  # a served policy hears the details
    if begin is not None:
        begin(task=spec.task, suite=spec.suite, episode=episode, seed=seed)
    else:
        policy.reset(spec.task)
    obs = sim.reset(seed, episode)
    steps, success = 0, False
    while steps < limit and not success:
        chunk = np.asarray(policy.act(obs, instruction), dtype=np.float32)
        if chunk.ndim == 1:
            chunk = chunk[None]
        for action in chunk[: config.replan]:
            obs, success = sim.step(action)
            steps += 1
            if writer is not None:
                writer(sim.video_frame())
            if success or steps >= limit:
                break
    end = getattr(policy, "end_episode", None)
    if end is not None:
        end({"success": bool(success), "steps": steps})
    return {
        "run": config.label,
        "suite": spec.suite,
        "task": spec.task,
        "episode": episode,
        "success": success,
        "steps": steps,
        "perturbation": _join(spec.perturbation, perturbation, position),
        "seed": seed,
        "task_id": spec.task_id,
        "complete": False,
    }


# ----------------------------------------------------------------------------- workers

_WORKER: dict = {}


def _worker_init(config_dict: dict) -> None:
    """Per worker process: one torch thread (workers share the cores), the policy once."""
    import torch

    torch.set_num_threads(1)
    config = EvalConfig(**config_dict)
    _WORKER["config"] = config
    _WORKER["policy"] = build_policy(config)
    _WORKER["sims"] = {}


def build_policy(config: EvalConfig):
    """The policy `config.policy` names: a served one (ws://, openpi://) through its
    client, else built in this process."""
    from nblib.eval.policies import check_policy
    from nblib.serving import is_remote

    check_policy(config.policy, config.sim)
    if is_remote(config.policy):
        if config.policy.startswith("openpi://"):
            from nblib.serving.openpi import OpenpiPolicy

            return OpenpiPolicy(config.policy, config.sim, timeout=config.server_timeout)
        from nblib.serving.client import RemotePolicy

        return RemotePolicy(config.policy, config.sim, timeout=config.server_timeout)
    from nblib.eval.policies import local_policy

    return local_policy(
        config.policy, config.sim, config.seed, config.device, config.policy_kwargs, config.manifest
    )


def _episode_job(spec: TaskSpec, episode: int) -> dict:
    config, policy = _WORKER["config"], _WORKER["policy"]
    sim = simulator_for(_WORKER["sims"], spec, policy, config)
    return _episode_with_video(sim, policy, spec, episode, config)


def _episode_with_video(sim, policy, spec: TaskSpec, episode: int, config) -> dict:
    if not config.video:
        return run_episode(sim, policy, spec, episode, config)
    import cv2

    folder = Path(config.video)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{config.label}_{spec.slug}_ep{episode:03d}.mp4"
    video = None

    def write(frame):
        nonlocal video
        if video is None:
            height, width = frame.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            video = cv2.VideoWriter(str(path), fourcc, 30, (width, height))
        video.write(frame[:, :, ::-1])  # OpenCV writes BGR

    try:
        return run_episode(sim, policy, spec, episode, config, writer=write)
    finally:
        if video is not None:
            video.release()


def evaluate(
    config: EvalConfig,
    out: str | os.PathLike,
    progress: bool = True,
    on_row: Callable | None = None,
    policy=None,
    overwrite: bool = False,
    resume: bool = False,
):
    """Run every (task, episode) of ``config`` and write ``out`` (.csv or .jsonl).

    ``resume``: ``out`` holds the finished episodes of an interrupted run of the same
    configuration; only the missing ones run, appended to it.

    ``policy``: your own object implementing :class:`nblib.eval.policies.Policy` instead of
    ``config.policy`` (run in this process: ``workers`` must be 1). An existing ``out`` is
    an error unless ``overwrite``. ``on_row`` is called
    with each row as its episode ends. Returns the rows as a DataFrame (results schema).
    Raises :class:`NotebookError` listing the episodes that failed, after the others have
    finished and been written.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from nblib.eval.results.schema import episodes_frame

    if policy is not None and config.workers != 1:
        raise ParameterError(
            "a policy object runs in this process: set workers=1 (worker processes build "
            "their policy from config.policy)"
        )
    # checks the name; created at the first row (appended to when resuming)
    results = ResultsFile(out, overwrite=overwrite, resume=resume)
    if policy is not None and not config.run:  # name the run after the object, not config.policy
        config = replace(config, run=type(policy).__name__.lower())
    specs = task_specs(config)
    built = False  # whether this call built the policy (and so closes it)
    if policy is not None:
        check_action_dim(policy, config.sim)
    elif config.workers == 1:  # a wrong policy fails now, before any episode or output
        policy = build_policy(config)
        built = True
    else:  # worker processes build their own; the name is checked here
        from nblib.eval.policies import check_policy

        check_policy(config.policy, config.sim)
    jobs = [(spec, i) for spec in specs for i in range(config.episodes)]
    position = {(spec.task, spec.task_id, i): n for n, (spec, i) in enumerate(jobs)}
    if config.shard is not None:
        index, count = parse_shard(config.shard)
        jobs = jobs[index::count]  # round robin: every shard gets a share of every task
    todo = unfinished_jobs(jobs, results.rows, config.label, out)

    def in_order(row: dict) -> int:  # the configured task order, then the episode
        return position[(row["task"], row["task_id"], row["episode"])]

    failures: list[str] = []
    bar = tqdm(
        total=len(jobs),
        initial=len(jobs) - len(todo),
        desc=f"{config.label} episodes",
        disable=not progress,
    )

    def record(row: dict) -> None:
        results.append(row)
        bar.update(1)
        bar.set_postfix(success=f"{np.mean([r['success'] for r in results.rows]):.0%}")
        if on_row is not None:
            on_row(row)

    try:
        if config.workers == 1:
            sims: dict = {}
            try:
                for spec, episode in todo:
                    try:
                        sim = simulator_for(sims, spec, policy, config)
                        record(_episode_with_video(sim, policy, spec, episode, config))
                    except Exception as error:  # the run goes on; it is marked incomplete
                        failures.append(
                            f"{spec.slug} episode {episode}: {type(error).__name__}: {error}"
                        )
            finally:
                for sim in sims.values():
                    sim.close()
                if built and hasattr(policy, "close"):  # a served policy's connection
                    policy.close()
        else:
            import multiprocessing

            # spawn, not fork: MuJoCo's EGL context and torch's threads do not survive fork
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                config.workers,
                mp_context=context,
                initializer=_worker_init,
                initargs=(asdict(config),),
            ) as pool:
                futures = {pool.submit(_episode_job, t, e): (t, e) for t, e in todo}
                for future in as_completed(futures):
                    spec, episode = futures[future]
                    try:
                        record(future.result())
                    except Exception as error:
                        failures.append(
                            f"{spec.slug} episode {episode}: {type(error).__name__}: {error}"
                        )
    finally:
        bar.close()
        results.close(complete=not failures and len(results.rows) == len(jobs), order=in_order)
    frame = episodes_frame(
        [
            r | {"source": str(out), "complete": not failures}
            for r in sorted(results.rows, key=in_order)
        ]
    )
    if failures:
        kept = (
            f"the {len(results.rows)} finished ones are in {out}, marked incomplete"
            if results.rows
            else f"none finished, so {out} was not written"
        )
        raise NotebookError(
            f"{len(failures)} of {len(jobs)} episodes failed; {kept}. First: {failures[0]}"
        )
    return pd.DataFrame(frame)
