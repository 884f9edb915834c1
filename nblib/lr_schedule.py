"""Learning-rate schedules of the training loop, as named, plottable choices (seed 003).

Cosine decay without a floor stopped learning right after warmup in seed 003, so the
schedule is a name from :data:`SCHEDULES`, built from transformers' schedulers, and
:func:`lr_curve` shows it before anything is trained. ``cosine_with_min_lr`` and WSD keep
a floor of ``min_lr_rate * lr``. Every schedule multiplies each parameter group's peak lr.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

SCHEDULES = (
    "constant",
    "cosine",
    "cosine_with_min_lr",
    "linear",
    "warmup_stable_decay",
    "exponential",
)


class ScheduleSettings(Protocol):
    """The fields of :class:`nblib.train.TrainConfig` a schedule reads (see there)."""

    steps: int
    lr: float
    schedule: str
    warmup_steps: int
    min_lr_rate: float
    decay_fraction: float


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
