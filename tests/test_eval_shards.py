"""`nblib eval --shard I/N` and `nblib results merge`: disjoint slices of one run's
(task, episode) list that join back into the unsharded run; `nblib eval --shards N` runs
them on local worker processes and merges them (SLURM: tests/test_batch_slurm.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_serving import FAULTY, Server

from nblib.cli import main
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


# ------------------------------------------------------------------ nblib eval --shards N


def test_shards_on_local_workers_merge_into_the_unsharded_run(tmp_path: Path, capsys) -> None:
    out = tmp_path / "X.csv"
    command = ["eval", "--policy", "expert", "--tasks", "reach", "push", "--episodes", "2",
               "--shards", "2", "--out", str(out)]  # fmt: skip
    assert main(command) == 0, capsys.readouterr().err  # a worker process per shard
    assert "4 episodes -> " in capsys.readouterr().out
    whole = evaluate(
        EvalConfig(tasks=["reach", "push"], episodes=2), tmp_path / "whole.csv", progress=False
    )
    merged = pd.read_csv(out)
    pd.testing.assert_frame_equal(merged[KEYS], whole[KEYS], check_dtype=False)
    assert merged["complete"].all()
    for i in range(2):  # round robin: each shard has a share of every task
        shard = pd.read_csv(tmp_path / "X.shards" / f"shard-{i}-of-2.csv")
        assert list(zip(shard["task"], shard["episode"], strict=True)) == [
            ("reach", i),
            ("push", i),
        ]

    assert main(command) == 1  # a finished run is never replaced silently
    assert f"{out} exists; pass resume=True (--resume)" in capsys.readouterr().err
    assert main([*command, "--resume", "--workers", "1"]) == 0  # nothing left to run
    pd.testing.assert_frame_equal(pd.read_csv(out), merged)


def test_a_failed_local_shard_keeps_the_others_and_resume_completes(tmp_path, capsys) -> None:
    out = tmp_path / "X.csv"
    command = ["eval", "--tasks", "reach", "--episodes", "4", "--max-steps", "5", "--run",
               "zeros", "--shards", "2", "--workers", "1", "--out", str(out)]  # fmt: skip
    # one shard after the other, 5 observations an episode: the server exits at the 16th,
    # after shard 0's episodes 0 and 2 and shard 1's episode 1, in shard 1's episode 3
    with Server(sys.executable, str(FAULTY), "{port}", "die", "16") as server:
        assert main([*command, "--policy", server.url]) == 1
    error = capsys.readouterr().err
    assert "1 of 2 shard(s) failed: shard 1/2: 1 of 2 episodes failed" in error
    assert "holds the 3 finished episodes of 4, marked incomplete" in error
    assert "rerun the same command with --resume" in error
    kept = pd.read_csv(out)
    assert kept["episode"].tolist() == [0, 1, 2] and not kept["complete"].any()
    assert pd.read_csv(tmp_path / "X.shards" / "shard-0-of-2.csv")["complete"].all()

    with Server(sys.executable, str(FAULTY), "{port}", "zeros") as server:
        assert main([*command, "--policy", server.url, "--resume"]) == 0
    done = pd.read_csv(out)
    assert done["episode"].tolist() == [0, 1, 2, 3] and done["complete"].all()
    assert (done["steps"] == 5).all() and not done["success"].any()  # zero actions
    assert pd.read_csv(tmp_path / "X.shards" / "shard-1-of-2.csv")["episode"].tolist() == [1, 3]


def test_shards_flag_errors_come_before_anything_runs(tmp_path: Path, capsys) -> None:
    out = tmp_path / "X.csv"
    command = ["eval", "--policy", "zero", "--tasks", "reach", "--episodes", "2", "--out", str(out)]
    cases = [
        (["--shards", "2", "--shard", "0/2"], "--shard 0/2 with --shards 2: --shard I/N runs one"),
        (["--executor", "slurm"], "--executor: only with --shards N"),
        (["--shards", "2", "--partition", "cpu"], "--partition: SLURM options; add --executor"),
        (["--shards", "0"], "--shards=0 is invalid; expected an int >= 1"),
        (["--shards", "2", "--workers", "0"], "--workers=0 is invalid"),
        (["--shards", "3"], "shards=3 (--shards): the run has 2 episodes (1 task(s) x 2)"),
    ]
    for extra, message in cases:
        assert main([*command, *extra]) == 1
        assert message in capsys.readouterr().err, extra
    folder = tmp_path / "X.shards"
    folder.mkdir()
    assert main([*command, "--shards", "2"]) == 1
    assert f"{folder} exists; pass resume=True (--resume)" in capsys.readouterr().err
    (folder / "shard-0-of-3.csv").write_text("")
    assert main([*command, "--shards", "2", "--resume"]) == 1
    assert "it holds shard-0-of-3.csv; resume with the --shards" in capsys.readouterr().err
    assert not out.exists()


def test_slurm_collection_gives_up_when_squeue_keeps_failing(monkeypatch, tmp_path):
    """squeue failing for good (slurmctld gone, munge gone) must not hang a batch: after
    ``patience`` seconds the jobs still without a result are reported failed, with why."""
    from types import SimpleNamespace

    from nblib.run import slurm

    monkeypatch.setattr(slurm, "_queued_job_ids", lambda: (None, "Invalid authentication"))

    class Job:  # what the executor reads of a submitit.Job (hashable, as Jobs are)
        job_id = "7_0"
        paths = SimpleNamespace(result_pickle=tmp_path / "never.pkl", stderr=tmp_path / "7_0.err")

    job = Job()
    executor = slurm.SlurmExecutor(tmp_path / "logs")
    executor.poll, executor.patience = 0.05, 0.3
    results: list[dict] = []
    start = time.monotonic()
    executor._collect({job: SimpleNamespace(name="shard 0/1")}, results.append)
    assert time.monotonic() - start < 5
    [result] = results
    assert result["status"] == "failed" and result["name"] == "shard 0/1"
    assert "squeue has failed for 0 s (Invalid authentication)" in result["error"]
