"""`nblib eval --shards N --executor slurm` on a real single-node SLURM cluster (started
and stopped by these tests, see slurm_cluster.py): the shards are the array tasks of one
submitit job array against one policy server, merged into the unsharded run's rows; a
cancelled shard keeps the finished one, and --resume completes the run."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from slurm_cluster import start_cluster
from test_serving import FAULTY, Server

from nblib.cli import main
from nblib.eval.rollout import EvalConfig, evaluate
from nblib.run.batch import SlurmExecutor, _slurm_state

REPO = Path(__file__).resolve().parents[1]
KEYS = ["task", "episode", "success", "steps", "seed"]  # the run label names the server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = start_cluster(tmp_path_factory.mktemp("slurm"))
    yield running
    running.stop()


@pytest.fixture
def submitted(monkeypatch) -> list[SlurmExecutor]:
    """The SlurmExecutor(s) the command submits with, as soon as each submits."""
    executors: list[SlurmExecutor] = []
    real = SlurmExecutor.map

    def spy(self, function, items, on_result):
        executors.append(self)
        return real(self, function, items, on_result)

    monkeypatch.setattr(SlurmExecutor, "map", spy)
    return executors


@contextmanager
def served(*args: str, timeout: float = 60.0):
    """`nblib serve ARGS --port 0` as a subprocess; yields the ws:// URL it prints."""
    command = [sys.executable, "-m", "nblib", "serve", *args, "--port", "0"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO
    )
    lines: queue.Queue[str] = queue.Queue()
    # read all along, so the server never blocks on a full pipe
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()
    try:
        seen, url = [], None
        deadline = time.monotonic() + timeout
        while url is None and time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                assert process.poll() is None, f"nblib serve exited: {''.join(seen)}"
                continue
            found = re.search(r" on (ws://\S+);", seen[-1])
            url = found.group(1) if found else None
        assert url, f"nblib serve printed no URL in {timeout} s: {''.join(seen)}"
        yield url
    finally:
        process.kill()
        process.wait(timeout=30)


def _array_tasks(executor: SlurmExecutor) -> list[tuple[str, str]]:
    return [tuple(str(job.job_id).split("_")) for job in executor.jobs]


def test_two_shards_are_one_slurm_array_against_one_server(cluster, submitted, tmp_path, capsys):
    out = tmp_path / "X.csv"
    with served("expert", "--sim", "metaworld") as url:
        status = main(
            ["eval", "--policy", url, "--sim", "metaworld", "--tasks", "reach",
             "--episodes", "4", "--shards", "2", "--executor", "slurm", "--time", "10",
             "--out", str(out)]
        )  # fmt: skip
    printed = capsys.readouterr()
    assert status == 0, f"{printed.err}\n{cluster.logs()}"
    [executor] = submitted
    tasks = _array_tasks(executor)
    assert len(tasks) == 2 and len({array for array, _ in tasks}) == 1  # one array
    assert sorted(index for _, index in tasks) == ["0", "1"]
    assert "4 episodes -> " in printed.out and "reach" in printed.out  # the summary table

    folder = tmp_path / "X.shards"
    for i in range(2):
        shard = pd.read_csv(folder / f"shard-{i}-of-2.csv")
        assert shard["episode"].tolist() == [i, i + 2] and shard["complete"].all()
    assert list((folder / "slurm-logs").glob(f"{tasks[0][0]}_*_log.err"))
    merged = pd.read_csv(out)
    assert merged["episode"].tolist() == [0, 1, 2, 3] and merged["complete"].all()
    assert set(merged["run"]) == {"server-" + url.removeprefix("ws://").replace(":", "-")}

    local = evaluate(
        EvalConfig(tasks=["reach"], episodes=4), tmp_path / "local.csv", progress=False
    )
    assert local["success"].all()  # the scripted expert solves them: a real comparison
    pd.testing.assert_frame_equal(merged[KEYS], local[KEYS], check_dtype=False)


def test_a_cancelled_shard_keeps_the_other_and_resume_completes_the_run(
    cluster, submitted, tmp_path, capsys
):
    out = tmp_path / "X.csv"
    # each answer takes 1 s: a shard's 2 episodes of 3 steps run for 6 s, time to cancel one
    with Server(sys.executable, str(FAULTY), "{port}", "slow", "1") as server:
        command = ["eval", "--policy", server.url, "--tasks", "reach", "--episodes", "4",
                   "--max-steps", "3", "--shards", "2", "--executor", "slurm",
                   "--out", str(out)]  # fmt: skip
        status: list[int] = []
        thread = threading.Thread(target=lambda: status.append(main(command)))
        thread.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (submitted and len(submitted[0].jobs) == 2):
            time.sleep(0.2)
        assert submitted and len(submitted[0].jobs) == 2, cluster.logs()
        second = submitted[0].jobs[1]
        while time.monotonic() < deadline and _slurm_state(second.job_id) != "RUNNING":
            time.sleep(0.2)
        second.cancel()
        thread.join(180)
        assert not thread.is_alive(), "nblib eval hung on the cancelled shard"
        error = capsys.readouterr().err
        assert status == [1], error
        assert "1 of 2 shard(s) failed: shard 1/2: SLURM job " in error
        assert "CANCELLED" in error and f"(log {second.paths.stderr})" in error
        assert "rerun the same command with --resume" in error
        first = pd.read_csv(tmp_path / "X.shards" / "shard-0-of-2.csv")
        assert first["episode"].tolist() == [0, 2] and first["complete"].all()
        kept = pd.read_csv(out)  # merged without shard 1: incomplete
        assert {0, 2} <= set(kept["episode"]) and not kept["complete"].any()

        assert main([*command, "--resume"]) == 0, capsys.readouterr().err
    done = pd.read_csv(out)
    assert done["episode"].tolist() == [0, 1, 2, 3] and done["complete"].all()
    assert (done["steps"] == 3).all() and not done["success"].any()  # zero actions
    assert len(submitted) == 2 and len(submitted[1].jobs) == 2  # the rerun: one array again
