"""Closed-loop evaluation: run a policy in a simulator and write one row per episode.

:func:`evaluate` runs ``episodes`` episodes of every task with fixed seeds (episode ``i``
of a task has the same layout for every policy and option), asks the policy for an action
chunk and executes ``replan`` of its actions before asking again, stops at the simulator's
success or at the step limit, and writes every episode in the results schema
(:mod:`nblib.eval.results.schema`) the moment it ends, so ``nblib results summarize`` and
notebook 05 read the file like any other tool's output.

Crash safety: rows are appended (and flushed) with ``complete=False`` as episodes end; only
when every episode has finished is the file rewritten, atomically, with ``complete=True``.
A run that dies half-way leaves its finished episodes, marked incomplete. An episode whose
policy or simulator raises is reported and the run is incomplete; the others still run.

Perturbations (the ``perturbation`` column): ``instruction`` = ``paraphrase`` gives each
episode one of the task's paraphrases (``language``), ``other`` another task's instruction
(``instruction_other``), ``empty`` an empty one (``instruction_empty``; seed 000 expects a
policy that uses language to fail); ``position_noise`` widens the reset space
(``position``); several join with ``+``.
"""

from __future__ import annotations

import csv
import json
import os
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from nblib.errors import NotebookError, ParameterError, is_int, is_number, require
from nblib.eval.results.schema import COLUMNS
from nblib.paths import atomic_write

SIMULATORS = ("metaworld",)
INSTRUCTION_MODES = ("original", "paraphrase", "other", "empty")
OUTPUT_COLUMNS = (*COLUMNS, "task_id", "complete")
SUITE = {"metaworld": "metaworld"}


@dataclass
class EvalConfig:
    tasks: list[str] = field(default_factory=lambda: ["reach", "push"])
    policy: str = "expert"  # expert, random, zero, or a saved policy's path
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

    def __post_init__(self):
        own = "EvalConfig"
        require(self.sim in SIMULATORS, own, "sim", self.sim, f"one of {list(SIMULATORS)}")
        ok = isinstance(self.tasks, (list, tuple)) and self.tasks
        ok = ok and all(isinstance(t, str) for t in self.tasks)
        require(bool(ok), own, "tasks", self.tasks, "a non-empty list of task names")
        self.tasks = list(self.tasks)
        from nblib.data.metaworld_gen import INSTRUCTIONS

        unknown = [t for t in self.tasks if t not in INSTRUCTIONS]
        require(
            not unknown, own, "tasks", self.tasks, f"Meta-World tasks among {sorted(INSTRUCTIONS)}"
        )
        require(isinstance(self.policy, str), own, "policy", self.policy, "a name or a path")
        for name in ("episodes", "replan", "workers"):
            value = getattr(self, name)
            require(is_int(value) and value >= 1, own, name, value, "an int >= 1")
        require(is_int(self.seed), own, "seed", self.seed, "an int")
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

    @property
    def label(self) -> str:
        if self.run:
            return self.run
        name = self.policy
        path = Path(self.policy).expanduser()
        if path.exists():  # a saved policy: named after its run folder
            path = path.resolve()
            path = path.parent if path.name == "policy.pt" else path
            path = path.parent if path.name == "policy" else path
            name = path.name
        parts = [name]
        if self.replan != 1:
            parts.append(f"replan{self.replan}")
        if self.instruction != "original":
            parts.append(f"instr-{self.instruction}")
        if self.position_noise:
            parts.append(f"pos{self.position_noise:g}")
        return "_".join(parts)


def episode_seed(seed: int, task: str, episode: int) -> int:
    """The layout seed of episode ``episode`` of ``task`` (crc32: stable across processes).
    Distinct from the demonstrations' seeds, so evaluation layouts are new ones."""
    return zlib.crc32(f"eval/{seed}/{task}/{episode}".encode()) & 0x7FFFFFFF


def instruction_for(task: str, episode: int, mode: str) -> tuple[str, str]:
    """(instruction, perturbation) of an episode under instruction ``mode``."""
    from nblib.data.metaworld_gen import INSTRUCTIONS

    texts = INSTRUCTIONS[task]
    if mode == "original":
        return texts[0], "none"
    if mode == "paraphrase":
        return texts[1 + episode % (len(texts) - 1)], "language"
    if mode == "other":
        names = sorted(INSTRUCTIONS)
        other = names[(names.index(task) + 1) % len(names)]
        return INSTRUCTIONS[other][0], "instruction_other"
    return "", "instruction_empty"


# ----------------------------------------------------------------------------- one episode


def run_episode(sim, policy, task: str, episode: int, config: EvalConfig, writer=None) -> dict:
    """One episode: reset with its seed, act until success or the step limit. Returns the
    row (results schema). ``writer(frame)`` receives video frames when given."""
    from nblib.eval.metaworld import MAX_STEPS

    seed = episode_seed(config.seed, task, episode)
    instruction, perturbation = instruction_for(task, episode, config.instruction)
    if config.position_noise:
        perturbation = "position" if perturbation == "none" else f"{perturbation}+position"
    limit = config.max_steps or MAX_STEPS
    policy.reset(task)
    obs = sim.reset(seed)
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
    return {
        "run": config.label,
        "suite": SUITE[config.sim],
        "task": task,
        "episode": episode,
        "success": success,
        "steps": steps,
        "perturbation": perturbation,
        "seed": seed,
        "task_id": None,
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
    _WORKER["policy"] = _build_policy(config)
    _WORKER["sims"] = {}


def _build_policy(config: EvalConfig):
    from nblib.eval.metaworld import ACTION_DIM
    from nblib.eval.policies import make_policy

    return make_policy(config.policy, action_dim=ACTION_DIM, seed=config.seed, device=config.device)


def _sim_for(cache: dict, task: str, policy, config: EvalConfig):
    from nblib.eval.metaworld import MetaWorldTask

    if task not in cache:
        cache[task] = MetaWorldTask(
            task,
            cameras=tuple(getattr(policy, "cameras", ())),
            size=getattr(policy, "image_size", 128) or 128,
            color_bits=getattr(policy, "color_bits", 8),
            position_noise=config.position_noise,
        )
    return cache[task]


def _episode_job(task: str, episode: int) -> dict:
    config, policy = _WORKER["config"], _WORKER["policy"]
    sim = _sim_for(_WORKER["sims"], task, policy, config)
    return _episode_with_video(sim, policy, task, episode, config)


def _episode_with_video(sim, policy, task, episode, config) -> dict:
    if not config.video:
        return run_episode(sim, policy, task, episode, config)
    import cv2

    folder = Path(config.video)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{config.label}_{task}_ep{episode:03d}.mp4"
    video = None

    def write(frame):
        nonlocal video
        if video is None:
            height, width = frame.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            video = cv2.VideoWriter(str(path), fourcc, 30, (width, height))
        video.write(frame[:, :, ::-1])  # OpenCV writes BGR

    try:
        return run_episode(sim, policy, task, episode, config, writer=write)
    finally:
        if video is not None:
            video.release()


# ----------------------------------------------------------------------------- output


class ResultsFile:
    """Rows appended as episodes end (``complete=False``), rewritten complete at the end."""

    def __init__(self, path: str | os.PathLike, overwrite: bool = False):
        self.path = Path(path)
        if self.path.suffix not in (".csv", ".jsonl"):
            raise ParameterError(f"out={str(self.path)!r}: expected a .csv or .jsonl file name")
        if self.path.exists() and not overwrite:
            raise ParameterError(
                f"out={str(self.path)!r} exists; pass overwrite=True (--overwrite) to replace "
                "it, or choose another file: a finished evaluation is never replaced silently"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []
        self._handle = open(self.path, "w", newline="", encoding="utf-8")
        if self.path.suffix == ".csv":
            self._csv = csv.DictWriter(self._handle, OUTPUT_COLUMNS, lineterminator="\n")
            self._csv.writeheader()
        self._handle.flush()

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self._write(self._handle, row)
        self._handle.flush()

    def _write(self, handle, row: dict) -> None:
        if self.path.suffix == ".csv":
            csv.DictWriter(handle, OUTPUT_COLUMNS, lineterminator="\n").writerow(row)
        else:
            handle.write(json.dumps({k: row[k] for k in OUTPUT_COLUMNS}) + "\n")

    def close(self, complete: bool, order=None) -> None:
        """Close the file; when ``complete``, rewrite it with ``complete=True`` in
        ``order`` (a sort key over rows; default the order episodes ended)."""
        self._handle.close()
        if not complete:
            return
        order = sorted(self.rows, key=order) if order is not None else self.rows
        with atomic_write(self.path, "w") as handle:
            if self.path.suffix == ".csv":
                csv.DictWriter(handle, OUTPUT_COLUMNS, lineterminator="\n").writeheader()
            for row in order:
                self._write(handle, row | {"complete": True})


def evaluate(
    config: EvalConfig,
    out: str | os.PathLike,
    progress: bool = True,
    on_row: Callable | None = None,
    policy=None,
    overwrite: bool = False,
):
    """Run every (task, episode) of ``config`` and write ``out`` (.csv or .jsonl).

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
    if policy is not None and not config.run:  # name the run after the object, not config.policy
        config = replace(config, run=type(policy).__name__.lower())
    jobs = [(task, i) for task in config.tasks for i in range(config.episodes)]
    position = {job: i for i, job in enumerate(jobs)}

    def in_order(row: dict) -> int:  # the configured task order, then the episode
        return position[(row["task"], row["episode"])]

    results = ResultsFile(out, overwrite=overwrite)
    failures: list[str] = []
    bar = tqdm(total=len(jobs), desc=f"{config.label} episodes", disable=not progress)

    def record(row: dict) -> None:
        results.append(row)
        bar.update(1)
        bar.set_postfix(success=f"{np.mean([r['success'] for r in results.rows]):.0%}")
        if on_row is not None:
            on_row(row)

    try:
        if config.workers == 1:
            policy = policy if policy is not None else _build_policy(config)
            sims: dict = {}
            try:
                for task, episode in jobs:
                    try:
                        sim = _sim_for(sims, task, policy, config)
                        record(_episode_with_video(sim, policy, task, episode, config))
                    except Exception as error:  # the run goes on; it is marked incomplete
                        failures.append(
                            f"{task} episode {episode}: {type(error).__name__}: {error}"
                        )
            finally:
                for sim in sims.values():
                    sim.close()
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
                futures = {pool.submit(_episode_job, t, e): (t, e) for t, e in jobs}
                for future in as_completed(futures):
                    task, episode = futures[future]
                    try:
                        record(future.result())
                    except Exception as error:
                        failures.append(
                            f"{task} episode {episode}: {type(error).__name__}: {error}"
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
        raise NotebookError(
            f"{len(failures)} of {len(jobs)} episodes failed; the {len(results.rows)} finished "
            f"ones are in {out}, marked incomplete. First: {failures[0]}"
        )
    return pd.DataFrame(frame)
