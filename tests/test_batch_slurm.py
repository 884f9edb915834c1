"""nblib batch on a real single-node SLURM cluster (started and stopped by the tests):
a job array submitted through submitit, results collected, a failing run reported, a
cancelled job reported without hanging. No mock: slurmctld, slurmd and munge run here."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
from probe_notebook import write_grid, write_probe
from slurm_cluster import start_cluster

from nblib.errors import NotebookError
from nblib.run.batch import SlurmExecutor, run_batch


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = start_cluster(tmp_path_factory.mktemp("slurm"))
    yield running
    running.stop()


def test_job_array_collects_results_and_reports_failed_and_cancelled_jobs(cluster, tmp_path):
    write_probe(tmp_path)
    grid = write_grid(
        tmp_path,
        [{"notebook": "probe.ipynb", "zip": {"x": [1, 2, 3, 4],
                                              "fail": [False, True, False, False],
                                              "pause": [0.0, 0.0, 300.0, 0.0]}}],
        slurm={"time_min": 10},
    )  # fmt: skip
    out = tmp_path / "out"
    # one array task at a time: the fourth waits in the queue while the third runs
    executor = SlurmExecutor(tmp_path / "logs", time_min=10, parallel=1)
    executor.poll, executor.grace = 1.0, 3.0
    failure: list[BaseException] = []

    def batch():
        try:
            run_batch(grid, out, executor=executor, progress=False)
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=batch)
    thread.start()
    deadline = time.monotonic() + 120
    # cancel the slow run once its job runs (its kernel sleeps for 5 minutes)
    while time.monotonic() < deadline and not (out / "probe__x=3_fail=False_pause=300").is_dir():
        time.sleep(0.5)
    assert len(executor.jobs) == 4, f"the array was not submitted\n{cluster.logs()}"
    assert len({str(job.job_id).split("_")[0] for job in executor.jobs}) == 1  # one array
    time.sleep(2)
    executor.jobs[3].cancel()  # still pending: it never runs, so it leaves no result
    executor.jobs[2].cancel()  # running
    thread.join(180)
    assert not thread.is_alive(), "the batch hung on the cancelled job"

    assert failure and isinstance(failure[0], NotebookError)
    assert "3 of 4 run(s) failed" in str(failure[0])
    table = pd.read_csv(out / "batch.csv")
    assert table["status"].tolist() == ["done", "failed", "failed", "failed"]
    assert table.loc[0, "verdict"] == "PASS" and table.loc[0, "metric.twice"] == 2
    assert "asked to fail" in table.loc[1, "error"]
    # scancel kills the kernel: the run ends, and the batch says SLURM cancelled it
    assert f"SLURM job {executor.jobs[2].job_id} CANCELLED" in table.loc[2, "error"]
    assert "ended without a result" in table.loc[3, "error"]


def test_cli_submits_to_slurm_with_the_grid_options(cluster, tmp_path, capsys):
    from nblib.cli import main

    write_probe(tmp_path)
    grid = write_grid(
        tmp_path,
        [{"notebook": "probe.ipynb", "seeds": [4, 5]}],
        slurm={"partition": "debug", "time_min": 5},
    )
    out = tmp_path / "out"
    assert main(["batch", str(grid), "--executor", "slurm", "--out", str(out)]) == 0
    assert "2 run(s) done, 0 skipped" in capsys.readouterr().out
    assert list((out / "slurm-logs").glob("*_log.out"))  # submitit's logs where promised
    table = pd.read_csv(out / "batch.csv")
    assert table["metric.seed"].tolist() == [4, 5]
