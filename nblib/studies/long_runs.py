"""Long runs on GPU nodes, for every study that trains (notebooks 01, 02 and 03).

Seed 001 trained for 10.3 hours on one GPU, seed 000 to 200k steps with a checkpoint every
5k, and seed 002 could not see whether gradients reached its compressor. Under papermill on
a SLURM node such runs are preempted or reach their time limit, so a training study:

- checkpoints into ``OUT/checkpoints/`` every ``checkpoint_every`` steps and, with
  ``resume`` (the default), continues from the newest checkpoint when the same command is
  run into the same ``--out`` again (bit-identical on the CPU; the checkpoint's identity,
  the notebook's training parameters and the code version, must match: see
  :mod:`nblib.checkpoints`);
- logs each module's gradient norm every ``grad_flow_every`` steps, and says in its
  verdict when a trainable module never receives a gradient or its gradient vanishes;
- measures what the run costs: samples per second, seconds per step, memory by phase
  (CUDA's peak allocation on a GPU, the process's resident memory on the CPU) and the
  wall time projected to longer runs, with and without the feature cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from nblib.errors import is_int, require
from nblib.memory import MemoryTracker
from nblib.metrics.cost import project_wall_time, throughput
from nblib.metrics.gradient_flow import gradient_findings, gradient_flow
from nblib.threads import fixed_threads
from nblib.train import History

CHECKPOINTS = "checkpoints"  # the sub-folder of a run's output folder
#: Study parameters that do not shape the trained numbers: changing them between a run and
#: its resumption is allowed (every other parameter must match the checkpoint's).
NOT_TRAINING = (
    "checkpoint_every",
    "resume",
    "grad_flow_every",
    "pass_threshold",
    "partial_threshold",
    "n_examples",
    "interactive",
)


def check_params(config, owner: str) -> None:
    """Check the long-run parameters a study config has (``checkpoint_every``,
    ``resume``, ``grad_flow_every``, ``lr_groups``), naming ``owner``'s parameter."""
    for name in ("checkpoint_every", "grad_flow_every"):
        value = getattr(config, name, 0)
        require(is_int(value) and value >= 0, owner, name, value, "an int >= 0 (0 = off)")
    resume = config.resume
    require(isinstance(resume, bool), owner, "resume", resume, "True or False")
    groups = getattr(config, "lr_groups", {})
    require(isinstance(groups, dict), owner, "lr_groups", groups, "a dict prefix -> lr")


def checkpoint_settings(
    config,
    run_dir: str | Path | None,
    name: str | None = None,
    identity: dict | None = None,
    threads: int | None = None,
) -> dict:
    """The :class:`nblib.train.TrainConfig` fields of a study's checkpoints: the folder
    ``run_dir/checkpoints[/name]`` when ``checkpoint_every`` > 0 (none otherwise),
    ``resume``, and the identity a checkpoint must match: ``identity``, by default the
    study's parameters that shape the trained numbers (all but :data:`NOT_TRAINING`); and a
    fixed thread count (``threads``, default :func:`nblib.threads.fixed_threads`)."""
    if not config.checkpoint_every or run_dir is None:
        return {}
    folder = Path(run_dir) / CHECKPOINTS
    folder = folder / name if name else folder
    if identity is None:
        identity = {k: v for k, v in config.params().items() if k not in NOT_TRAINING}
    return {
        "checkpoint_dir": str(folder),
        "checkpoint_every": config.checkpoint_every,
        "resume": config.resume,
        "identity": {"study": type(config).__name__, **identity},
        # one thread count throughout, whatever else runs: bit-identical on resumption
        "threads": threads or fixed_threads(),
    }


@dataclass(frozen=True)
class Cost:
    """What a training run cost: throughput (:func:`nblib.metrics.cost.throughput`), the
    wall time projected to longer runs, and memory by phase (:class:`nblib.memory.MemoryTracker`)."""

    throughput: dict
    projection: list[dict]
    memory: dict
    backbone_seconds_per_step: float | None  # the backbone forward a step without the cache adds


def cost(history: History, memory: MemoryTracker, backbone_seconds_per_step=None) -> Cost:
    """The run's cost from its history (steps after a resumption count as measured)."""
    rates = throughput(history)
    projection = project_wall_time(
        rates["seconds_per_step"], backbone_seconds_per_step=backbone_seconds_per_step
    )
    return Cost(rates, projection, memory.record(), backbone_seconds_per_step)


def time_backbone(forward, repeats: int = 2) -> float:
    """Seconds of one call of ``forward()`` (the best of ``repeats``: the first call also
    pays for warm-up)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        forward()
        best = min(best, time.perf_counter() - t0)
    return best


def gradient_reasons(history: History | None) -> list[str]:
    """Verdict reasons about the gradient flow: a trainable module that never received a
    gradient, or whose gradient vanished (:func:`nblib.metrics.gradient_flow.gradient_findings`)."""
    return gradient_findings(history) if history else []


def metrics(history: History | None, run_cost: Cost | None) -> dict:
    """The long-run part of a study's metrics.json."""
    out: dict = {"resumed_from_step": None if history is None else history.resumed_from_step}
    out["gradient_flow"] = gradient_flow(history) if history else {}
    rates = run_cost.throughput if run_cost is not None else throughput(history) if history else {}
    out["samples_per_second"] = rates.get("samples_per_second")
    out["seconds_per_step"] = rates.get("seconds_per_step")
    out["throughput"] = rates  # what the cost figure shows (with the steps it measured)
    if run_cost is not None:
        out["memory"] = run_cost.memory
        out["peak_memory_bytes"] = run_cost.memory.get("peak_bytes")
        out["wall_time_projection"] = run_cost.projection
    return out
