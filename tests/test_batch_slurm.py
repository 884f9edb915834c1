"""SLURM on a real single-node cluster (started and stopped by these tests; no mock:
slurmctld, slurmd and munge run here). All SLURM tests live in this one file, so one
pytest worker runs them against one cluster: two clusters at once on one machine share
munged, and the first to stop took it away from the other.

- nblib batch: a job array submitted through submitit, results collected, a failing run
  reported, a cancelled job reported without hanging; a run signalled mid-way (USR2, the
  time-limit signal submitit asks for) or requeued by SLURM resumes from its checkpoint
  and ends as an uninterrupted run does, its requeues reported.
- nblib eval --shards N --executor slurm: the shards are the array tasks of one job array
  against one policy server, merged into the unsharded run's rows; a cancelled shard keeps
  the finished one, and --resume completes the run.
"""

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
from probe_notebook import stepper_state, write_grid, write_probe, write_stepper
from slurm_cluster import start_cluster
from test_serving import FAULTY, Server

from nblib.cli import main
from nblib.errors import NotebookError
from nblib.eval.rollout import EvalConfig, evaluate
from nblib.run.batch import run_batch
from nblib.run.params import notebook_parameters
from nblib.run.slurm import SlurmExecutor, _slurm_state

REPO = Path(__file__).resolve().parents[1]
KEYS = ["task", "episode", "success", "steps", "seed"]  # the run label names the server


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


# ----------------------------------------------------------- requeue and resume


def _step(folder: Path) -> int:
    """The step of the stepper notebook's latest checkpoint in its run folder (0: none)."""
    import json

    try:
        return json.loads((folder / "checkpoints" / "latest.json").read_text())["step"]
    except (OSError, ValueError):
        return 0


def test_a_signalled_or_requeued_run_resumes_from_its_checkpoint(
    cluster, submitted, tmp_path, capsys
):
    """USR2 is the signal submitit asks SLURM to send signal_delay_s before the time
    limit (``--signal=USR2@N``; also at preemption with send_user_signal): submitit's
    handler checkpoints and requeues the job. ``scontrol requeue`` (an admin, preemption in
    REQUEUE mode) restarts the job without that handler: SIGTERM, then the batch script
    again. Either way the notebook runs again into its folder and continues from its
    latest checkpoint, ending where the run left alone ends."""
    write_stepper(tmp_path)
    tags = ["usr2", "requeue", "alone"]
    grid = write_grid(
        tmp_path,
        [{"notebook": "stepper.ipynb", "params": {"steps": 16, "step_seconds": 0.5},
          "grid": {"tag": tags}}],
        slurm={"time_min": 10, "parallel": 2, "signal_delay_s": 30},
    )  # fmt: skip
    out = tmp_path / "out"
    command = ["batch", str(grid), "--executor", "slurm", "--out", str(out)]
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(main(command)))
    thread.start()
    folders = [out / f"stepper__tag={tag}" for tag in tags]
    deadline = time.monotonic() + 120
    # the two first array tasks run (two at a time): signal them a few steps in
    while time.monotonic() < deadline and min(_step(f) for f in folders[:2]) < 3:
        time.sleep(0.2)
    assert min(_step(f) for f in folders[:2]) >= 3, cluster.logs()
    signalled, requeued, _ = submitted[0].jobs
    subprocess.run(["scancel", "--signal=USR2", str(signalled.job_id)], check=True)
    subprocess.run(["scontrol", "requeue", str(requeued.job_id)], check=True)
    thread.join(240)
    assert not thread.is_alive(), f"the batch did not end\n{cluster.logs()}"
    printed = capsys.readouterr()
    assert status == [0], printed.err

    table = pd.read_csv(out / "batch.csv")
    assert table["status"].tolist() == ["done", "done", "done"]
    assert table["requeues"].tolist() == [1, 1, 0]
    # the same end as the run left alone (and as the steps computed here)
    assert table["metric.state"].tolist() == [stepper_state(16)] * 3
    resumed = table["metric.resumed_from_step"].tolist()
    assert 3 <= resumed[0] < 16 and 3 <= resumed[1] < 16 and pd.isna(resumed[2])
    usr2, scontrol = (int(step) for step in resumed[:2])
    assert (
        f"run stepper__tag=usr2: requeued 1x by SLURM, resumed from its checkpoint at step {usr2}"
    ) in printed.out
    assert (
        f"2 run(s) requeued by SLURM: stepper__tag=usr2 1x (resumed from its checkpoint at "
        f"step {usr2}), stepper__tag=requeue 1x (resumed from its checkpoint at step {scontrol})"
    ) in printed.out
    # submitit asked SLURM for the signal, and its handler is what requeued the USR2 one
    [script] = (out / "slurm-logs").glob(".submission_file_*.sh")
    assert "#SBATCH --signal=USR2@30" in script.read_text()
    assert "Calling checkpoint method" in signalled.paths.stdout.read_text()
    assert "Calling checkpoint method" not in requeued.paths.stdout.read_text()


def test_a_failed_result_of_an_attempt_slurm_requeued_is_not_taken(monkeypatch, tmp_path):
    """``scontrol requeue`` (or preemption) SIGTERMs the job's processes: the kernel dies
    and the run, still alive until SIGKILL, writes a failed result. The job is pending
    again: that result is stale, and the requeued attempt's result is the one reported."""
    import os
    from types import SimpleNamespace

    from nblib.run import slurm

    pickle = tmp_path / "7_0_result.pkl"
    pickle.write_text("attempt 0")
    written = {"result": {"name": "r", "status": "failed", "error": "Kernel died", "requeues": 0}}
    polls = []

    def queued():
        polls.append(1)
        if len(polls) == 3:  # the requeued attempt ends
            written["result"] = {"name": "r", "status": "done", "error": None, "requeues": 1}
            os.utime(pickle, ns=(1, 1))
        return {"7_0"}, ""

    class Job:  # what the executor reads of a submitit.Job
        job_id = "7_0"
        paths = SimpleNamespace(result_pickle=pickle, stderr=tmp_path / "7_0.err")

        def result(self):
            return dict(written["result"])

    monkeypatch.setattr(slurm, "_queued_job_ids", queued)
    monkeypatch.setattr(slurm, "_slurm_fields", lambda _: {"JobState": "PENDING", "Restarts": "1"})
    executor = slurm.SlurmExecutor(tmp_path / "logs")
    executor.poll = 0.01
    results: list[dict] = []
    executor._collect({Job(): SimpleNamespace(name="r")}, results.append)
    assert results == [{"name": "r", "status": "done", "error": None, "requeues": 1}]
    assert len(polls) == 3


def test_a_requeued_job_runs_its_item_again_resumed(monkeypatch, tmp_path):
    """The callable submitit submits: checkpointable (so a job signalled near its time limit
    is requeued), counting requeues, resuming an evaluation shard's partial file."""
    from nblib.eval.scaleout import ShardJob
    from nblib.run.slurm import Requeueable

    seen = []

    def run(job):
        seen.append(job)
        return {"name": job.name, "status": "done", "error": None}

    shard = ShardJob(EvalConfig(tasks=["reach"], episodes=2, shard="0/2"), tmp_path / "s.csv",
                     overwrite=True)  # fmt: skip
    job = Requeueable(run)
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert job(shard)["requeues"] == 0 and seen[-1] is shard
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")  # what SLURM sets in a requeued job
    assert job(shard) == {"name": "shard 0/2", "status": "done", "error": None, "requeues": 2}
    assert seen[-1].resume and not seen[-1].overwrite and seen[-1].out == shard.out
    requeued = job.checkpoint(shard)  # what submitit pickles for the requeued job
    assert requeued.function is job and requeued.args == (shard,)


def test_slurm_options_of_the_requeue(tmp_path):
    from nblib.errors import ParameterError
    from nblib.run.batch import slurm_options

    write_probe(tmp_path)
    grid = write_grid(tmp_path, [{"notebook": "probe.ipynb"}],
                      slurm={"signal_delay_s": 120, "max_timeouts": 10})  # fmt: skip
    assert slurm_options(grid) == {"signal_delay_s": 120, "max_timeouts": 10}
    executor = SlurmExecutor(tmp_path / "logs", **slurm_options(grid))
    assert executor.options["slurm_signal_delay_s"] == 120 and executor.max_timeouts == 10
    grid = write_grid(tmp_path, [{"notebook": "probe.ipynb"}], slurm={"signal_delay_s": -5})
    with pytest.raises(ParameterError, match=r"slurm\.signal_delay_s: expected an int >= 0"):
        slurm_options(grid)


NOTEBOOK_01 = REPO / "notebooks" / "01_overfit_diagnosis.ipynb"
# metrics that are not what training computed: timings and throughput, memory, the
# feature cache's hit counts, where a run resumed
UNTRAINED = re.compile(r"second|time|resumed|memory|^throughput$|^cache$")


def _trained(value):
    if isinstance(value, dict):
        return {k: _trained(v) for k, v in value.items() if not UNTRAINED.search(k)}
    return value


@pytest.mark.skipif(
    "checkpoint_every" not in notebook_parameters(NOTEBOOK_01),
    reason="notebook 01 has no checkpoint_every / resume parameters yet",
)
def test_notebook_01_signalled_mid_training_ends_with_the_uninterrupted_metrics(cluster, tmp_path):
    """Issue 27 end to end: notebook 01 under SLURM, signalled (USR2) after its first
    checkpoint, requeued and resumed; its metrics equal those of a run left alone."""
    import json

    # ~20 ms a step on 2 CPU cores: 300 steps leave seconds after the first checkpoint
    # (step 40) to signal the job before training ends
    params = {"steps": 300, "checkpoint_every": 40, "demos": 2, "val_demos": 1,
              "n_examples": 2}  # fmt: skip
    grid = write_grid(tmp_path, [{"notebook": str(NOTEBOOK_01), "params": params}])
    outs = {case: tmp_path / case for case in ("alone", "signalled")}
    executors = {case: SlurmExecutor(tmp_path / f"logs-{case}", time_min=10) for case in outs}
    failures: list[BaseException] = []

    def batch(case: str) -> None:
        try:
            run_batch(grid, outs[case], executor=executors[case], progress=False)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=batch, args=(case,)) for case in outs]
    for thread in threads:
        thread.start()
    run = outs["signalled"] / NOTEBOOK_01.stem
    deadline = time.monotonic() + 300
    # step-*.pt only once complete: a checkpoint being written is a hidden .tmp file, and
    # a signal before the first one completes leaves nothing to resume from
    while time.monotonic() < deadline and not any((run / "checkpoints").glob("step-*.pt")):
        time.sleep(0.05)
    assert any((run / "checkpoints").glob("step-*.pt")), f"no checkpoint in {run}\n{cluster.logs()}"
    [job] = executors["signalled"].jobs
    subprocess.run(["scancel", "--signal=USR2", str(job.job_id)], check=True)
    for thread in threads:
        thread.join(600)
    assert not any(t.is_alive() for t in threads), cluster.logs()
    assert not failures, failures

    alone, signalled = (
        json.loads((outs[case] / NOTEBOOK_01.stem / "metrics.json").read_text()) for case in outs
    )
    assert signalled["verdict"] == alone["verdict"]
    assert _trained(signalled["metrics"]) == _trained(alone["metrics"])
    resumed = signalled["metrics"]["resumed_from_step"]
    assert resumed is not None and alone["metrics"]["resumed_from_step"] is None
    assert pd.read_csv(outs["signalled"] / "batch.csv")["requeues"].tolist() == [1]


# ------------------------------------------------------- nblib eval --shards on SLURM


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
