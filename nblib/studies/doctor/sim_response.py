"""How the evaluation simulator responds to commands, measured by stepping it: what the
doctor's dynamics checks (:mod:`nblib.studies.doctor.dynamics`) hold a dataset against.

- :func:`action_response`: from a reset, each hand axis is given a held +1, 0, -1 and 0
  command; the per-step displacement per unit command late in the ±1 holds is the axis'
  gain (metres per step per unit action), and whether a held zero keeps the hand where it
  is (a delta / velocity action space) or sends it to one place from anywhere (an
  absolute target) is the action space's kind.
- :func:`gripper_response`: from a reset, the gripper command is held at +1 then at -1
  (which one closes), then each of several levels from open and from closed: whether it
  closes, opens or only holds the gripper.
- :func:`replay_states`: the simulator's state at the moments a demo recorded, by
  resetting with the demo's seed and replaying its actions while the simulator's full
  state still matches the recorded one.

The simulators are the eval harness's own (:class:`nblib.eval.metaworld.MetaWorldTask`,
:class:`nblib.eval.libero.LiberoTask`), built once per task and kept, and every
measurement is cached by its (hashable) inputs: the three checks share them.
:func:`clear` forgets everything (tests that patch a simulator call it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from nblib.errors import ParameterError

AXES = ("x", "y", "z")
HOLD_STEPS = 12  # a held push: Meta-World's hand reaches its steady speed in ~8 steps
GRIP_STEPS = 25  # a held gripper command: Meta-World's fingers settle in ~20 steps
PROBE_HORIZON = 1000  # steps a probe may take after one reset (LIBERO's episode limit)
PREPARE_STEPS = 20  # +-1 held before each level, so it starts fully open / closed
# Delta: late in a held zero the hand moves at < 30 % of its unit-command speed and two
# positions keep > 70 % of their distance (Meta-World: 4-10 % and 210-260 %, the lagging
# hand still drifting apart). Absolute: > 50 % of that speed, or < 30 % of the distance
# left (Meta-World behind a position controller: 89-105 %).
DELTA_DRIFT, DELTA_CONVERGENCE = 0.3, 0.7
ABSOLUTE_DRIFT, ABSOLUTE_CONVERGENCE = 0.5, 0.3
# Replayed states count as the recorded moment while the simulator's full state stays
# this close (max abs) to the recorded one: Meta-World replays bit-exactly.
REPLAY_TOLERANCE = 1e-3


@dataclass(frozen=True, eq=False)  # hashed by identity: measurements are cached per Sim
class Sim:
    """One evaluation task as the checks step it: ``action_dim`` values per action, the
    gripper command at ``gripper_dim``, commands in [``low``, ``high``]."""

    name: str  # "metaworld" or "libero"
    task: str  # the Meta-World task, or "<suite> task <id>"
    env: object  # MetaWorldTask or LiberoTask (reset(seed, episode) / step(action))
    action_dim: int
    gripper_dim: int
    low: float = -1.0
    high: float = 1.0

    def reset(self, seed: int) -> dict:
        return self.env.reset(int(seed), 0)

    def step(self, action) -> dict:
        return self.env.step(np.asarray(action, dtype=np.float64))[0]


_SIMS: dict[tuple, Sim] = {}


def open_sim(sim: str, task: str | None = None, suite: str | None = None, task_id: int = 0) -> Sim:
    """The eval harness's simulator of one task (a Meta-World ``task``, or LIBERO's
    ``suite`` and ``task_id``), built once (a Meta-World env costs ~0.5 s, a LIBERO scene
    ~4 s) and shared by every measurement until :func:`clear`."""
    key = (sim, task, suite, int(task_id))
    if key not in _SIMS:
        _SIMS[key] = _build(sim, task, suite, int(task_id))
    return _SIMS[key]


def _build(sim: str, task: str | None, suite: str | None, task_id: int) -> Sim:
    if sim == "metaworld":
        from nblib.eval.metaworld import ACTION_DIM, MetaWorldTask

        return Sim(sim, task, MetaWorldTask(task), ACTION_DIM, ACTION_DIM - 1)
    if sim == "libero":
        from nblib.eval.libero import ACTION_DIM, LiberoTask

        # robosuite refuses steps past its horizon: room for every probe after a reset
        env = LiberoTask(suite or "libero_spatial", task_id, max_steps=PROBE_HORIZON)
        return Sim(sim, f"{env.suite.name} task {env.task_id}", env, ACTION_DIM, ACTION_DIM - 1)
    raise ParameterError(f"sim={sim!r}: expected metaworld or libero")


def eval_sim(config, store) -> tuple[Sim | None, str | None]:
    """The simulator task whose responses the doctor measures (or None and why): LIBERO's
    first configured task, or one of the evaluation's Meta-World tasks (reach when it is
    one: its hand moves freely). Any task serves: a simulator's action space is the same
    for all its tasks."""
    if config.sim == "libero":
        return open_sim("libero", suite=config.suite, task_id=(config.task_ids or [0])[0]), None
    from nblib.data.metaworld_gen import INSTRUCTIONS

    tasks = [t for t in (config.tasks or store.tasks()) if t in INSTRUCTIONS]
    if not tasks:
        return None, (
            f"no Meta-World task to measure: tasks {config.tasks or store.tasks()} are not "
            f"Meta-World tasks nblib knows ({sorted(INSTRUCTIONS)}); give tasks=[...]"
        )
    return open_sim("metaworld", "reach" if "reach" in tasks else sorted(tasks)[0]), None


@dataclass(frozen=True)
class ActionResponse:
    """Per hand axis: ``gain`` (metres per step per unit command, late in a held push),
    ``drift`` (the hand's speed late in a held zero command, over the gain: ~0 when zero
    means "stay", as in a delta space; up to 1 when it means a place to go to),
    ``convergence`` (how much of the distance between two hand positions is left after a
    held zero command from each: >= ~1 in a delta space, < 1 when both head for the same
    target), the ``kind`` these decide (delta, absolute or unclear) and the measured
    ``samples``: per axis (n, 2) [command, per-step displacement along the axis] late in
    each hold."""

    task: str
    gain: tuple[float, ...]
    drift: tuple[float, ...]
    convergence: tuple[float, ...]
    kind: str
    samples: tuple[np.ndarray, ...]


@functools.lru_cache(maxsize=16)
def action_response(sim: Sim, seed: int = 0) -> ActionResponse:
    """From one reset, per axis: +1, 0, -1, 0, each held ``HOLD_STEPS`` steps.

    A delta (velocity) command moves the hand at a speed set by the command wherever the
    hand is, so zero holds it still and two positions stay apart; an absolute command
    names a place, so under zero the hand heads for one point from anywhere."""
    obs = sim.reset(seed)
    gains, drift, convergence, samples = [], [], [], []
    late = slice(HOLD_STEPS // 2, None)  # the first steps still carry the previous hold
    for axis in range(3):
        holds = []
        for command in (1.0, 0.0, -1.0, 0.0):
            action = np.zeros(sim.action_dim)
            action[axis] = command
            path = [obs["eef_pos"][axis]]
            for _ in range(HOLD_STEPS):
                obs = sim.step(action)
                path.append(obs["eef_pos"][axis])
            holds.append((command, np.asarray(path, dtype=np.float64)))
        (_, plus), (_, zero_a), (_, minus), (_, zero_b) = holds
        gain = float((np.diff(plus)[late].mean() - np.diff(minus)[late].mean()) / 2)
        gains.append(gain)
        still = max(np.abs(np.diff(zero_a)[late]).mean(), np.abs(np.diff(zero_b)[late]).mean())
        drift.append(float(still / max(abs(gain), 1e-12)))
        apart = abs(zero_a[0] - zero_b[0])
        convergence.append(float(abs(zero_a[-1] - zero_b[-1]) / max(apart, 1e-12)))
        samples.append(
            np.concatenate(
                [np.stack([np.full(len(p) - 1, c), np.diff(p)], 1)[late] for c, p in holds]
            )
        )
    delta = [
        d < DELTA_DRIFT and c > DELTA_CONVERGENCE for d, c in zip(drift, convergence, strict=True)
    ]
    absolute = [
        d > ABSOLUTE_DRIFT or c < ABSOLUTE_CONVERGENCE
        for d, c in zip(drift, convergence, strict=True)
    ]
    if all(delta) and min(gains) > 0:
        kind = "delta"
    elif all(absolute):
        kind = "absolute"
    else:
        kind = "unclear"
    return ActionResponse(
        sim.task, tuple(gains), tuple(drift), tuple(convergence), kind, tuple(samples)
    )


@dataclass(frozen=True)
class GripperResponse:
    """``levels`` (sorted commands) and the opening each settles at after ``GRIP_STEPS``
    held from open (``from_open``) and from closed (``from_closed``); ``open_level`` /
    ``closed_level`` (the extremes reached); per level its ``effects``: ``close`` (closes
    an open gripper), ``open`` (opens a closed one) or ``hold`` (neither: Meta-World at 0,
    LIBERO, whose gripper moves by the command's sign, at 0); the traces of the first +1
    and -1 holds from the reset (``trace_plus``, ``trace_minus``)."""

    task: str
    levels: tuple[float, ...]
    from_open: tuple[float, ...]
    from_closed: tuple[float, ...]
    open_level: float
    closed_level: float
    effects: tuple[str, ...]
    trace_plus: np.ndarray
    trace_minus: np.ndarray

    @property
    def swing(self) -> float:
        return self.open_level - self.closed_level

    def effect_at(self, command: float) -> str:
        """What ``command`` does to the gripper (the nearest measured level decides)."""
        return self.effects[int(np.argmin(np.abs(np.asarray(self.levels) - command)))]


@functools.lru_cache(maxsize=32)
def gripper_response(sim: Sim, levels: tuple[float, ...], seed: int = 0) -> GripperResponse:
    """From one reset: +1 held, then -1 held (the traces: which one closes), then each
    level held once after the gripper was opened and once after it was closed."""
    obs = sim.reset(seed)

    def hold(command: float, steps: int) -> list[float]:
        nonlocal obs
        action = np.zeros(sim.action_dim)
        action[sim.gripper_dim] = command
        trace = []
        for _ in range(steps):
            obs = sim.step(action)
            trace.append(float(obs["gripper_opening"][0]))
        return trace

    start = float(obs["gripper_opening"][0])
    plus = np.asarray([start, *hold(1.0, GRIP_STEPS)])
    minus = np.asarray([plus[-1], *hold(-1.0, GRIP_STEPS)])
    opener = 1.0 if plus[-1] > minus[-1] else -1.0  # the one of +-1 that ends more open
    from_open, from_closed = [], []
    for level in levels:
        hold(opener, PREPARE_STEPS)
        from_open.append(hold(level, GRIP_STEPS)[-1])
        hold(-opener, PREPARE_STEPS)
        from_closed.append(hold(level, GRIP_STEPS)[-1])
    extremes = [*from_open, *from_closed, plus[-1], minus[-1], start]
    open_level, closed_level = max(extremes), min(extremes)
    mid = (open_level + closed_level) / 2
    effects = []
    for o, c in zip(from_open, from_closed, strict=True):
        closes, opens = o < mid, c > mid
        effects.append(
            "close" if closes and not opens else "open" if opens and not closes else "hold"
        )
    return GripperResponse(
        sim.task,
        tuple(levels),
        tuple(from_open),
        tuple(from_closed),
        open_level,
        closed_level,
        tuple(effects),
        plus,
        minus,
    )


@dataclass(frozen=True)
class Replay:
    """One demo replayed: ``steps`` (indices into the demo) and the simulator's
    observation at each (``eef_pos``, ``gripper_opening``, ``state``; LIBERO adds
    ``gripper_qpos`` and the 8-D proprio as ``state``)."""

    demo: str
    steps: tuple[int, ...]
    observations: tuple[dict, ...]


def replay_states(sim: Sim, demo: str, record: dict, steps: int) -> Replay:
    """Reset ``sim`` with the demo's seed and step its recorded actions for up to
    ``steps`` steps; a moment counts while the simulator's full state matches the
    recorded one (so a demo that does not replay keeps only the moments that match)."""
    recorded = np.asarray(record["state"], dtype=np.float64)
    actions = np.asarray(record["actions"], dtype=np.float64)
    obs = sim.reset(record["seed"])
    kept, observations = [], []
    for t in range(min(steps, len(recorded))):
        state = np.asarray(obs["state"], dtype=np.float64)
        if state.shape != recorded[t].shape or np.abs(state - recorded[t]).max() > REPLAY_TOLERANCE:
            break
        kept.append(t)
        observations.append({k: np.array(v) for k, v in obs.items() if k != "images"})
        if t + 1 < len(recorded):
            obs = sim.step(actions[t])
    return Replay(demo, tuple(kept), tuple(observations))


def paired_states(store, demos: list[str], columns, steps: int):
    """``(data (n, D), sim (n, D), demos matched)``: the dataset's proprio ``columns``
    (each with ``data_slice``, ``sim_key``, ``sim_slice``) and the Meta-World simulator's
    counterparts at every moment of ``demos`` that :func:`replay_states` matched."""
    records = store.replay_records(demos)
    data_rows, sim_rows = [], []
    for demo in demos:
        record = records[demo]
        replay = replay_states(open_sim("metaworld", record["task"]), demo, record, steps)
        if not replay.steps:
            continue
        proprio = store.proprio[demo][list(replay.steps)].astype(np.float64)
        data_rows.append(np.concatenate([proprio[:, c.data_slice] for c in columns], axis=1))
        sim_rows.append(
            np.stack(
                [
                    np.concatenate(
                        [
                            np.asarray(o[c.sim_key], np.float64).reshape(-1)[c.sim_slice]
                            for c in columns
                        ]
                    )
                    for o in replay.observations
                ]
            )
        )
    if not data_rows:
        return np.zeros((0, 0)), np.zeros((0, 0)), 0
    return np.concatenate(data_rows), np.concatenate(sim_rows), len(data_rows)


def clear() -> None:
    """Close every simulator and forget every measurement (tests that patch a simulator)."""
    action_response.cache_clear()
    gripper_response.cache_clear()
    while _SIMS:
        _SIMS.popitem()[1].env.close()
