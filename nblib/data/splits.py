"""Episode-level splits that keep one validation set for every training-subset size.

Seed 004's lesson: limit the data *after* splitting. The demos are split into train and
validation once (per task, with a fixed seed); ``train_demos=1/5/10`` then takes a prefix
of the shuffled training list, so smaller subsets are nested in larger ones and every
run is validated on exactly the same episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nblib.errors import ParameterError

VAL_FRACTION = 0.2  # the suite's share of each task's demos held out for validation


@dataclass(frozen=True)
class Split:
    train: list[str]
    val: list[str]
    seed: int

    def summary(self) -> dict:
        return {"train": len(self.train), "val": len(self.val), "seed": self.seed}


def split_episodes(
    demos: list[str],
    groups: dict[str, str | None] | None = None,
    val_fraction: float = VAL_FRACTION,
    seed: int = 0,
) -> Split:
    """Split demo names into train/val, stratified by ``groups`` (demo -> task) if given.

    Each group contributes ``round(val_fraction * n)`` validation demos (at least one when
    it has two or more demos), so every task is validated.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ParameterError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if len(set(demos)) != len(demos):
        raise ParameterError("demos: names must be unique")
    groups = groups or {}
    by_group: dict[str | None, list[str]] = {}
    for d in demos:
        by_group.setdefault(groups.get(d), []).append(d)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for key in sorted(by_group, key=str):
        members = list(by_group[key])
        order = rng.permutation(len(members))
        n_val = int(round(val_fraction * len(members)))
        if val_fraction > 0 and len(members) >= 2:
            n_val = max(n_val, 1)
        val += [members[i] for i in order[:n_val]]
        train += [members[i] for i in order[n_val:]]
    # Interleave tasks so that a prefix (train_demos, val_cap) covers all tasks evenly.
    train = _interleave(train, groups, seed)
    val = _interleave(sorted(val, key=demos.index), groups, seed)
    return Split(train=train, val=val, seed=seed)


def _interleave(names: list[str], groups: dict, seed: int) -> list[str]:
    queues: dict = {}
    for n in names:
        queues.setdefault(groups.get(n), []).append(n)
    out = []
    keys = sorted(queues, key=str)
    while any(queues[k] for k in keys):
        for k in keys:
            if queues[k]:
                out.append(queues[k].pop(0))
    return out


def subset_train(split: Split, train_demos: int | None = None, val_cap: int | None = None) -> Split:
    """The first ``train_demos`` training demos (nested subsets) and at most ``val_cap``
    validation demos; ``None`` keeps all."""
    train, val = split.train, split.val
    if train_demos is not None:
        if not 1 <= train_demos <= len(train):
            raise ParameterError(
                f"train_demos must be between 1 and {len(train)} (training demos available), got {train_demos}"
            )
        train = train[:train_demos]
    if val_cap is not None:
        if val_cap < 0:
            raise ParameterError(f"val_cap must be >= 0, got {val_cap}")
        val = val[:val_cap]
    return Split(train=list(train), val=list(val), seed=split.seed)


def sample_indices(n_items: int, k: int, seed: int) -> list[int]:
    """``k`` distinct random indices out of ``n_items``, the same for the same seed.

    Used for visualisation samples, so figures never show only the first batch (seed 004).
    """
    if n_items <= 0:
        return []
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(n_items, size=min(k, n_items), replace=False).tolist())
