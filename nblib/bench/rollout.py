"""``nblib bench rollout``: closed-loop evaluation speed against the simulator alone
(Meta-World, and LIBERO when its extra is installed)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from nblib.bench.common import machine, ratio


def _tiny_closed_loop(cameras: tuple[str, ...], size: int, action_dim: int):
    """The tiny VLA policy (random initialisation, tiny backbone, flow head) in the loop,
    with unit statistics (no rescaling): what a closed-loop step costs, not what it does."""
    import torch

    from nblib.data.normalization import NormStats, Stats
    from nblib.eval.policies import VLAClosedLoop
    from nblib.models.backbone import Backbone
    from nblib.models.policy import PolicyConfig, VLAPolicy
    from nblib.models.vla import PolicyWithBackbone

    backbone = Backbone.tiny()
    torch.manual_seed(0)
    config = PolicyConfig(vlm_dim=backbone.hidden_size, proprio_dim=4, action_dim=action_dim)
    unit_actions = Stats.of(np.array([[-1.0] * action_dim, [1.0] * action_dim]))
    unit_proprio = Stats.of(np.array([[-1.0] * 4, [1.0] * 4]))
    stats = NormStats(actions=unit_actions, proprio=unit_proprio, demos=[])
    return VLAClosedLoop(PolicyWithBackbone(VLAPolicy(config)), backbone, stats, cameras, size)


def _rollout_rates(sims, closed, config_for, steps: int, rounds: int, action_dim: int):
    """Steps/s of the bare simulator (a reset, then zero actions with the cameras
    rendered) and of the harness with ``closed`` at replan 1 and 4 (its episode: the same
    reset, then the policy's actions), interleaved round by round per simulator. Both
    sides include the reset, which for LIBERO (a model rebuild and settle steps) is not
    negligible."""
    from nblib.eval.rollout import run_episode, task_specs

    bare_rates, loop_rates = [], {1: [], 4: []}
    for key, make in sims:
        sim = make()
        try:
            for _ in range(rounds):
                start = time.perf_counter()
                sim.reset(0, 0)
                for _ in range(steps):
                    sim.step(np.zeros(action_dim, dtype=np.float32))  # renders the cameras
                bare_rates.append(steps / (time.perf_counter() - start))
                for replan in loop_rates:
                    config = config_for(key, replan)
                    (spec,) = task_specs(config)
                    start = time.perf_counter()
                    row = run_episode(sim, closed, spec, 0, config)
                    loop_rates[replan].append(row["steps"] / (time.perf_counter() - start))
        finally:
            sim.close()
    return bare_rates, loop_rates


def bench_rollout(
    steps: int = 150,
    tasks: tuple[str, ...] = ("reach", "push"),
    rounds: int = 3,
    items: int | None = None,
    libero_steps: int = 30,
) -> Iterator[dict]:
    """Closed-loop evaluation speed against the simulator alone, on the same tasks.

    ``bare``: simulator steps with zero actions, rendering the two cameras a policy reads
    (128 px) every step: the floor any closed-loop run pays. ``closed_loop``: the harness
    (:func:`nblib.eval.rollout.run_episode`, its reset included) with the tiny VLA policy
    (random initialisation, tiny backbone, both cameras) asked every step (``replan`` 1,
    the worst case) and every 4 steps. Steps/s per figure; ``ratio`` is closed-loop over
    bare (target >= 0.5). One torch thread, medians over tasks and interleaved rounds.
    Meta-World on ``tasks``; LIBERO (libero_spatial task 0, ``libero_steps`` steps) when
    the ``libero`` extra is installed.
    """
    import importlib.util

    import torch

    from nblib.eval.metaworld import MetaWorldTask
    from nblib.eval.rollout import EvalConfig

    steps = items or steps
    torch.set_num_threads(1)
    cameras, size = ("corner", "behindGripper"), 128
    closed = _tiny_closed_loop(cameras, size, action_dim=4)
    sims = [(t, lambda t=t: MetaWorldTask(t, cameras=cameras, size=size)) for t in tasks]

    def metaworld_config(task, replan):
        return EvalConfig(tasks=[task], episodes=1, max_steps=steps, replan=replan)

    rates = _rollout_rates(sims, closed, metaworld_config, steps, rounds, 4)
    common = {"tasks": list(tasks), "steps": steps, "rounds": rounds, "cameras": list(cameras)}
    yield from _rollout_lines("", rates, {**common, "size": size})

    if importlib.util.find_spec("libero") is None:
        return
    from nblib.eval.libero import ACTION_DIM, CAMERAS, SETTLE_STEPS, LiberoTask

    closed = _tiny_closed_loop(CAMERAS, size, action_dim=ACTION_DIM)
    suite, task_id = "libero_spatial", 0
    sims = [(task_id, lambda: LiberoTask(suite, task_id, cameras=CAMERAS, size=size))]

    def libero_config(task_id, replan):
        return EvalConfig(
            sim="libero",
            suite=suite,
            task_ids=[task_id],
            episodes=1,
            max_steps=libero_steps,
            replan=replan,
        )

    rates = _rollout_rates(sims, closed, libero_config, libero_steps, rounds, ACTION_DIM)
    common = {"suite": suite, "task_id": task_id, "steps": libero_steps, "rounds": rounds}
    common |= {"cameras": list(CAMERAS), "size": size, "settle_steps": SETTLE_STEPS}
    yield from _rollout_lines("libero_", rates, common)


def _sig3(value: float) -> float:
    return float(f"{value:.3g}")


def _rollout_lines(prefix: str, rates, common: dict) -> Iterator[dict]:
    """Rates to 3 significant figures: a short LIBERO run (its reset included) can be
    well under 1 step/s, where 0.01 steps/s is a few per cent."""
    bare_rates, loop_rates = rates
    bare = float(np.median(bare_rates))
    yield {"bench": "rollout", "figure": f"{prefix}bare_steps_per_s",
           "steps_per_s": _sig3(bare), **common, **machine()}  # fmt: skip
    for replan, runs in loop_rates.items():
        rate = float(np.median(runs))
        yield {
            "bench": "rollout",
            "figure": f"{prefix}closed_loop_steps_per_s_replan{replan}",
            "steps_per_s": _sig3(rate),
            "bare_steps_per_s": _sig3(bare),
            "ratio": ratio(rate, bare, 2),
            "policy": "tiny VLA (random init), flow head",
            **common,
            **machine(),
        }
