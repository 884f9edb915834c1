"""Tests for nblib.data.splits: fixed, stratified train/val splits and nested train subsets."""

from __future__ import annotations

import pytest

from nblib.data.splits import Split, sample_indices, split_episodes, subset_train
from nblib.errors import ParameterError

# 30 demos over three tasks of 12, 10 and 8 demos, plus a task with 2 and one with 1 demo.
SIZES = {"reach": 12, "push": 10, "pick": 8, "drawer": 2, "button": 1}
GROUPS = {}
for _task, _n in SIZES.items():
    for _ in range(_n):
        GROUPS[f"demo_{len(GROUPS)}"] = _task
DEMOS = list(GROUPS)


def test_split_is_deterministic_per_seed():
    a = split_episodes(DEMOS, GROUPS, val_fraction=0.2, seed=0)
    b = split_episodes(DEMOS, GROUPS, val_fraction=0.2, seed=0)
    c = split_episodes(DEMOS, GROUPS, val_fraction=0.2, seed=1)
    assert a == b
    assert a.seed == 0 and c.seed == 1
    assert (a.train, a.val) != (c.train, c.val)
    assert set(a.val) != set(c.val)


def test_split_stratified_every_task_validated():
    split = split_episodes(DEMOS, GROUPS, val_fraction=0.1, seed=3)
    val_per_task = {t: sum(GROUPS[d] == t for d in split.val) for t in SIZES}
    # round(0.1 * n), at least one for tasks with >= 2 demos, none for a single demo.
    assert val_per_task == {"reach": 1, "push": 1, "pick": 1, "drawer": 1, "button": 0}
    split = split_episodes(DEMOS, GROUPS, val_fraction=0.3, seed=3)
    val_per_task = {t: sum(GROUPS[d] == t for d in split.val) for t in SIZES}
    assert val_per_task == {"reach": 4, "push": 3, "pick": 2, "drawer": 1, "button": 0}


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("groups", [GROUPS, None])
def test_train_val_disjoint_and_cover(seed, groups):
    split = split_episodes(DEMOS, groups, val_fraction=0.25, seed=seed)
    assert not set(split.train) & set(split.val)
    assert sorted(split.train + split.val) == sorted(DEMOS)
    assert len(split.train) + len(split.val) == len(DEMOS)
    groups = groups or {}
    for g in set(groups.get(d) for d in split.val):  # within a task, val keeps input order
        members = [d for d in split.val if groups.get(d) == g]
        assert members == sorted(members, key=DEMOS.index)
    # interleaved by task, so a val_cap of one per task covers every task with val demos
    n_groups = len(set(groups.get(d) for d in split.val))
    assert len(set(groups.get(d) for d in split.val[:n_groups])) == n_groups
    assert split.summary() == {"train": len(split.train), "val": len(split.val), "seed": seed}


def test_zero_val_fraction_puts_everything_in_train():
    split = split_episodes(DEMOS, GROUPS, val_fraction=0.0, seed=0)
    assert split.val == [] and sorted(split.train) == sorted(DEMOS)


def test_train_order_interleaves_tasks():
    split = split_episodes(DEMOS, GROUPS, val_fraction=0.2, seed=0)
    # Every task with a training demo appears among the first len(SIZES) training demos.
    first = {GROUPS[d] for d in split.train[: len(SIZES)]}
    assert first == set(SIZES)


def test_subset_train_nested_with_same_val():
    split = split_episodes(DEMOS, GROUPS, val_fraction=0.2, seed=0)
    subsets = {n: subset_train(split, train_demos=n) for n in (1, 5, 10)}
    assert (
        len(subsets[1].train) == 1 and len(subsets[5].train) == 5 and len(subsets[10].train) == 10
    )
    assert subsets[1].train == subsets[5].train[:1]
    assert subsets[5].train == subsets[10].train[:5]
    assert subsets[10].train == split.train[:10]
    for sub in subsets.values():
        assert sub.val == split.val
        assert sub.seed == split.seed
    assert subset_train(split) == split
    assert subset_train(split, train_demos=len(split.train)).train == split.train


def test_val_cap():
    split = split_episodes(DEMOS, GROUPS, val_fraction=0.3, seed=0)
    assert len(split.val) > 3
    capped = subset_train(split, train_demos=2, val_cap=3)
    assert capped.val == split.val[:3]
    assert subset_train(split, val_cap=100).val == split.val
    assert subset_train(split, val_cap=0).val == []


@pytest.mark.parametrize("train_demos", [0, -1, 10_000])
def test_bad_train_demos(train_demos):
    split = split_episodes(DEMOS, GROUPS, seed=0)
    with pytest.raises(ParameterError, match="train_demos"):
        subset_train(split, train_demos=train_demos)


def test_bad_val_cap():
    with pytest.raises(ParameterError, match="val_cap"):
        subset_train(split_episodes(DEMOS, GROUPS), val_cap=-1)


@pytest.mark.parametrize("val_fraction", [-0.1, 1.0, 1.5])
def test_bad_val_fraction(val_fraction):
    with pytest.raises(ParameterError, match="val_fraction"):
        split_episodes(DEMOS, GROUPS, val_fraction=val_fraction)


def test_duplicate_demo_names_refused():
    with pytest.raises(ParameterError, match="unique"):
        split_episodes(["demo_0", "demo_1", "demo_0"])


def test_split_is_frozen():
    split = Split(train=["a"], val=["b"], seed=0)
    with pytest.raises(AttributeError):
        split.seed = 1


def test_sample_indices():
    a = sample_indices(100, 10, seed=5)
    assert a == sample_indices(100, 10, seed=5)
    assert a != sample_indices(100, 10, seed=6)
    assert len(a) == 10 and len(set(a)) == 10
    assert a == sorted(a) and all(0 <= i < 100 for i in a)
    assert a != list(range(10))  # not just the first items
    assert sample_indices(4, 10, seed=0) == [0, 1, 2, 3]
    assert sample_indices(0, 3, seed=0) == []
