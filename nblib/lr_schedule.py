"""Learning-rate schedules of the training loop, as named, plottable choices (seed 003).

Cosine decay without a floor stopped learning right after warmup in seed 003, so the
schedule is a name from :data:`SCHEDULES`, built from transformers' schedulers, and
:func:`lr_curve` shows it before anything is trained. ``cosine_with_min_lr``, WSD and
``cosine_with_restarts`` keep a floor of ``min_lr_rate * lr``. Every schedule multiplies
each parameter group's peak lr.

``cosine_with_restarts`` is seed 001's "warm restarts to escape plateaus": after the
linear warmup the run is split into ``cycles`` equal cosine cycles, each starting back at
the peak lr (a hard restart) and decaying to the floor. With ``cycles=1`` it is exactly
``cosine_with_min_lr``; with ``min_lr_rate=0`` it is transformers' hard-restarts schedule.
"""

from __future__ import annotations

from functools import partial
from typing import Protocol

import numpy as np
import torch

from nblib.errors import ParameterError, is_int

SCHEDULES = (
    "constant",
    "cosine",
    "cosine_with_min_lr",
    "linear",
    "warmup_stable_decay",
    "exponential",
    "cosine_with_restarts",
)


class ScheduleSettings(Protocol):
    """The fields of :class:`nblib.train.TrainConfig` a schedule reads (see there)."""

    steps: int
    lr: float
    schedule: str
    warmup_steps: int
    min_lr_rate: float
    decay_fraction: float
    cycles: int


def decay_steps(config: ScheduleSettings) -> int:
    """Steps of warmup_stable_decay's final decay: ``decay_fraction`` of the run, rounded."""
    return round(config.decay_fraction * config.steps)


def make_scheduler(optimizer: torch.optim.Optimizer, config: ScheduleSettings):
    """The transformers schedule ``config`` names; a LambdaLR multiplying each group's peak lr."""
    from transformers import get_scheduler, get_wsd_schedule

    if config.schedule == "warmup_stable_decay":
        return get_wsd_schedule(
            optimizer,
            num_warmup_steps=config.warmup_steps,
            num_decay_steps=decay_steps(config),
            num_training_steps=config.steps,
            min_lr_ratio=config.min_lr_rate,
        )
    if config.schedule == "cosine_with_restarts":
        return _restarts(optimizer, config)
    if config.schedule == "exponential":  # LR range test: log-linear from min_lr_rate * lr
        last = max(config.steps - 1, 1)
        rate = config.min_lr_rate
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: rate ** (1.0 - min(step, last) / last)
        )
    name = config.schedule
    if name == "constant" and config.warmup_steps > 0:
        name = "constant_with_warmup"  # transformers' "constant" silently ignores warmup
    extra = {"min_lr_rate": config.min_lr_rate} if name == "cosine_with_min_lr" else None
    return get_scheduler(
        name,
        optimizer,
        num_warmup_steps=config.warmup_steps,
        num_training_steps=config.steps,
        scheduler_specific_kwargs=extra,
    )


def restart_steps(config: ScheduleSettings) -> list[int]:
    """First step of each of ``cosine_with_restarts``' ``cycles`` cycles (the first is the
    end of warmup), e.g. to mark restarts on a plot. The lr there is the peak when a cycle
    is a whole number of steps (``(steps - warmup_steps) / cycles``), else just below it."""
    span = config.steps - config.warmup_steps
    return [config.warmup_steps - (-k * span // config.cycles) for k in range(config.cycles)]


def floored(step: int, *, factor, warmup: int, floor: float) -> float:
    """``factor(step)`` lifted onto a floor after warmup: ``floor + (1 - floor) * f``, so a
    factor decaying to 0 ends at ``floor`` and one at 1 stays 1; the warmup ramp is kept."""
    f = factor(step)
    return f if step < warmup else floor + (1.0 - floor) * f


def _restarts(optimizer: torch.optim.Optimizer, config: ScheduleSettings):
    """transformers' cosine with hard restarts, lifted onto ``min_lr_rate``.

    transformers' schedule decays every cycle to zero, the very decay that stopped learning
    in seed 003, so its factor is mapped through :func:`floored`. Its factor is taken from
    a scheduler built on a throwaway optimizer (public API, no side effect on
    ``optimizer``). Factors are ``functools.partial`` objects, not closures: LambdaLR's
    state_dict then holds only the step (a partial has an empty ``__dict__``) and pickles,
    so a resumed run rebuilds the schedule from its config and continues the same curve.
    """
    from transformers import get_cosine_with_hard_restarts_schedule_with_warmup

    span = config.steps - config.warmup_steps
    if not is_int(config.cycles) or not 1 <= config.cycles <= max(span, 1):
        raise ParameterError(
            f"cycles: need an int in [1, steps - warmup_steps = {span}] for "
            f"cosine_with_restarts (a cycle of at least one step), got {config.cycles!r}"
        )
    throwaway = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    factor = get_cosine_with_hard_restarts_schedule_with_warmup(
        throwaway,
        num_warmup_steps=config.warmup_steps,
        num_training_steps=config.steps,
        num_cycles=config.cycles,
    ).lr_lambdas[0]
    lifted = partial(floored, factor=factor, warmup=config.warmup_steps, floor=config.min_lr_rate)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lifted)


def lr_curve(config: ScheduleSettings, steps: int | None = None) -> np.ndarray:
    """Learning rate of the default group at each step 0..steps-1 (default ``config.steps``).

    Built on a dummy optimizer, so notebooks can plot a schedule without training. Other
    lr_groups follow the same curve scaled by ``group_lr / config.lr``.
    """
    steps = config.steps if steps is None else steps
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    scheduler = make_scheduler(optimizer, config)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no grads: a no-op that keeps torch's "step order" warning quiet
        scheduler.step()
    return np.asarray(lrs, dtype=float)
