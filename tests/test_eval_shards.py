"""`nblib eval --shard I/N` and `nblib results merge`: disjoint slices of one run's
(task, episode) list that join back into the unsharded run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nblib.errors import ParameterError
from nblib.eval.rollout import EvalConfig, evaluate
from nblib.eval.shards import merge_shards, parse_shard

KEYS = ["run", "task", "episode", "success", "steps", "seed"]


def test_shards_are_disjoint_and_merge_into_the_unsharded_run(tmp_path: Path) -> None:
    whole = evaluate(
        EvalConfig(tasks=["reach", "push"], episodes=3), tmp_path / "whole.csv", progress=False
    )
    shards = []
    for i in range(3):
        out = tmp_path / f"shard{i}.csv"
        part = evaluate(
            EvalConfig(tasks=["reach", "push"], episodes=3, shard=f"{i}/3"), out, progress=False
        )
        assert len(part) == 2 and part["complete"].all()
        shards.append(out)
    merged = merge_shards(shards, tmp_path / "merged.csv")
    assert merged == {"rows": 6, "missing": [], "complete": True}
    joined = pd.read_csv(tmp_path / "merged.csv")
    pd.testing.assert_frame_equal(
        joined[KEYS], whole[KEYS].reset_index(drop=True), check_dtype=False
    )
    assert joined["complete"].all()


def test_merge_refuses_overlaps_and_names_missing_episodes(tmp_path: Path) -> None:
    for i in range(2):
        evaluate(
            EvalConfig(tasks=["reach"], episodes=4, policy="zero", max_steps=3, shard=f"{i}/2"),
            tmp_path / f"s{i}.csv",
            progress=False,
        )
    with pytest.raises(ParameterError, match=r"s0\.csv and .*s0\.csv both hold .*episode 0"):
        merge_shards([tmp_path / "s0.csv", tmp_path / "s0.csv"], tmp_path / "m.csv")
    half = merge_shards([tmp_path / "s0.csv"], tmp_path / "m.csv")
    assert half["missing"] == ["reach episode 1"] and not half["complete"]
    assert not pd.read_csv(tmp_path / "m.csv")["complete"].any()
    with pytest.raises(ParameterError, match="exists; pass --overwrite"):
        merge_shards([tmp_path / "s0.csv", tmp_path / "s1.csv"], tmp_path / "m.csv")
    full = merge_shards([tmp_path / "s0.csv", tmp_path / "s1.csv"], tmp_path / "m.csv", True)
    assert full["complete"] and full["rows"] == 4
    other = tmp_path / "other.csv"
    evaluate(EvalConfig(tasks=["reach"], episodes=1, policy="random", max_steps=3), other)
    with pytest.raises(ParameterError, match=r"2 runs \['random', 'zero'\]"):
        merge_shards([tmp_path / "s0.csv", other], tmp_path / "m2.csv")


def test_shard_spec_errors_and_the_cli(tmp_path: Path) -> None:
    assert parse_shard("1/2") == (1, 2)
    for bad in ("2/2", "1", "a/b", "-1/2", "0/0"):
        with pytest.raises(ParameterError, match="expected I/N with N >= 1 and I in 0..N-1"):
            EvalConfig(tasks=["reach"], shard=bad)
    run = subprocess.run(
        [sys.executable, "-m", "nblib", "results", "merge", str(tmp_path / "none.csv"),
         "--out", str(tmp_path / "m.csv")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1 and "none.csv: no such shard file" in run.stderr
