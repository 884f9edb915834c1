"""Closed-loop episodes of the doctor's policy at several ``replan`` values, with every
action chunk it returns recorded, and the step changes of what was executed.

The harness (:func:`nblib.eval.rollout.run_episode`) executes the first ``replan``
actions of each chunk and asks again. From the recorded chunks the executed actions are
rebuilt exactly (``chunk[:replan]`` each, cut at the episode's steps), so every change
between two consecutive executed actions is either *within* a chunk or *at a boundary*
between two chunks. A policy whose chunks are aligned with time and consistent with each
other changes its action at a boundary about as much as within a chunk, and about as much
as the demonstrations change theirs in one step; chunks executed open loop for too long,
or misaligned (reversed, shifted), jump at the boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ChunkRecorder:
    """``policy`` in the harness, recording each chunk it returns, per episode. What
    the harness reads of a policy (cameras, image size, colour depth, depth, action
    width) is the wrapped policy's."""

    def __init__(self, policy):
        self.policy = policy
        self.episodes: list[list[np.ndarray]] = []

    def __getattr__(self, name):  # only called for what this class does not define
        if name == "policy" or name.startswith("_"):  # ours (unset while copying): never forwarded
            raise AttributeError(name)
        return getattr(self.policy, name)

    def begin_episode(self, task: str, suite: str, episode: int, seed: int) -> None:
        self.episodes.append([])
        begin = getattr(self.policy, "begin_episode", None)  # a served policy hears it all
        if begin is not None:
            begin(task=task, suite=suite, episode=episode, seed=seed)
        else:
            self.policy.reset(task)

    def reset(self, task: str) -> None:
        self.episodes.append([])
        self.policy.reset(task)

    def end_episode(self, outcome: dict) -> None:
        end = getattr(self.policy, "end_episode", None)
        if end is not None:
            end(outcome)

    def act(self, observation: dict, instruction: str) -> np.ndarray:
        chunk = np.asarray(self.policy.act(observation, instruction), dtype=np.float32)
        chunk = chunk[None] if chunk.ndim == 1 else chunk
        self.episodes[-1].append(chunk.copy())
        return chunk


@dataclass(frozen=True)
class ReplanRun:
    """The episodes at one replan: outcomes and the step changes of the executed actions
    (mean absolute change over the action's dimensions, per transition)."""

    replan: int
    successes: int
    episodes: int
    boundary: (
        np.ndarray
    )  # changes between the last executed action of a chunk and the next chunk's first
    within: np.ndarray  # changes between consecutive executed actions of one chunk
    chunk_steps: np.ndarray  # changes between consecutive actions of every recorded chunk
    chunk_length: int  # the longest chunk the policy returned
    lags: np.ndarray  # per pair of consecutive chunks, the shift at which they overlap best
    trace: np.ndarray  # the first episode's executed actions (T, action_dim)
    trace_boundaries: np.ndarray  # indices t where trace[t] is a new chunk's first action


def executed(chunks: list[np.ndarray], replan: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The actions the harness executed from ``chunks`` at ``replan`` in an episode of
    ``steps`` steps, and the index of the chunk each came from."""
    actions = [c[:replan] for c in chunks]
    source = [np.full(len(a), i) for i, a in enumerate(actions)]
    if not actions:
        return np.zeros((0, 0), np.float32), np.zeros(0, int)
    return np.concatenate(actions)[:steps], np.concatenate(source)[:steps]


def step_changes(actions: np.ndarray) -> np.ndarray:
    """Mean absolute change over the dimensions between consecutive rows."""
    if len(actions) < 2:
        return np.zeros(0)
    return np.abs(np.diff(np.asarray(actions, dtype=np.float64), axis=0)).mean(axis=1)


def overlap_lag(first: np.ndarray, second: np.ndarray, expected: int) -> int | None:
    """The shift ``s`` at which ``second[j]`` best matches ``first[j + s]`` (mean
    absolute difference over the overlap, at least a quarter of the chunk): a policy whose
    chunks are aligned with time, asked again ``expected`` steps later, gives about
    ``expected``; chunks that run backwards give 0 or less. Ties (constant chunks) go to
    the shift nearest ``expected``. None for chunks of different or too short lengths."""
    length = len(first)
    if length < 4 or len(second) != length:
        return None
    j = np.arange(length)
    best, lag = np.inf, None
    for shift in range(-(length - 1), length):
        keep = (j + shift >= 0) & (j + shift < length)
        if keep.sum() < length // 4:
            continue
        misfit = np.abs(second[j[keep]] - first[j[keep] + shift]).mean()
        tie = np.isclose(misfit, best, rtol=1e-6, atol=1e-9)
        if (misfit < best and not tie) or (tie and abs(shift - expected) < abs(lag - expected)):
            best, lag = min(misfit, best), shift
    return lag


def run_replan(study, policy, replan: int, sims: dict, **overrides) -> ReplanRun:
    """The doctor's closed-loop episodes (its tasks, episodes, step limit; ``overrides``
    of its eval config) at ``replan`` with ``policy`` recorded; simulators are built once
    per task and kept in ``sims``."""
    from nblib.eval.rollout import run_episode, task_specs
    from nblib.eval.sims import simulator_for

    config = study.eval_config(replan=replan, **overrides)
    recorder = ChunkRecorder(policy)
    rows = []
    for spec in task_specs(config):
        sim = simulator_for(sims, spec, policy, config)
        for episode in range(config.episodes):
            rows.append(run_episode(sim, recorder, spec, episode, config))
    boundary, within, own, lags = [], [], [], []
    trace = trace_boundaries = None
    for chunks, row in zip(recorder.episodes, rows, strict=True):
        actions, source = executed(chunks, replan, row["steps"])
        changes = step_changes(actions)
        new_chunk = source[1:] != source[:-1]
        boundary.append(changes[new_chunk])
        within.append(changes[~new_chunk])
        own += [step_changes(c) for c in chunks]
        pairs = zip(chunks[:-1], chunks[1:], strict=True)
        lags += [overlap_lag(a, b, replan) for a, b in pairs]
        if trace is None:
            trace = actions
            trace_boundaries = np.flatnonzero(np.r_[False, new_chunk])
    length = max((len(c) for chunks in recorder.episodes for c in chunks), default=0)
    return ReplanRun(
        replan=replan,
        successes=int(sum(bool(r["success"]) for r in rows)),
        episodes=len(rows),
        boundary=np.concatenate(boundary) if boundary else np.zeros(0),
        within=np.concatenate(within) if within else np.zeros(0),
        chunk_steps=np.concatenate(own) if own else np.zeros(0),
        chunk_length=int(length),
        lags=np.array([lag for lag in lags if lag is not None], dtype=float),
        trace=trace if trace is not None else np.zeros((0, 0)),
        trace_boundaries=trace_boundaries if trace_boundaries is not None else np.zeros(0, int),
    )


def data_steps(store, tasks: list[str] | None = None) -> np.ndarray:
    """The demonstrations' step changes (as :func:`step_changes`), over the demos of
    ``tasks`` when the data has them, else over every demo."""
    demos = [d for d in store.demos if tasks is None or store.task_label(d) in tasks]
    return np.concatenate([step_changes(store.actions[d]) for d in demos or store.demos])


def evaluated_replan(study) -> tuple[int, str]:
    """The replan an evaluation of this policy uses, and where that comes from: what the
    policy or its run folder records (``n_action_steps``, LeRobot's name, or
    ``replan``), else ``nblib eval``'s default."""
    from dataclasses import fields
    from pathlib import Path

    from nblib.eval.rollout import EvalConfig
    from nblib.studies.doctor.policy_stats import read_saved

    policy, spec = study.policy, study.config.policy
    holders = [
        (policy, "the policy"),
        (getattr(getattr(policy, "model", None), "config", None), "the policy's config"),
    ]
    if spec and Path(spec).expanduser().exists():
        saved = read_saved(spec)
        if saved is not None:
            holders.append((saved[1], f"its run folder ({saved[0].source})"))
    for holder, where in holders:
        for name in ("n_action_steps", "replan"):
            value = holder.get(name) if isinstance(holder, dict) else getattr(holder, name, None)
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1:
                return int(value), f"{name} = {int(value)} recorded by {where}"
    default = next(f.default for f in fields(EvalConfig) if f.name == "replan")
    return int(default), f"nblib eval's default replan ({default}); the policy records none"
