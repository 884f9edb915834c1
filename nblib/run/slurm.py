"""The SLURM executor of :mod:`nblib.run.batch`: one job array through submitit for a
list of items (notebook runs, evaluation shards), their results collected as they appear.

Without job accounting (``sacct``), submitit cannot tell that a job was cancelled or timed
out; the executor watches ``squeue`` and ``scontrol`` instead: a job that left the queue
without a result is reported failed after a grace period, with the state SLURM gives.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


class SlurmExecutor:
    """SLURM job arrays through submitit: one array task per item, logs in ``logs``."""

    def __init__(
        self,
        logs: str | os.PathLike[str],
        partition: str | None = None,
        time_min: int = 60,
        mem_gb: float | None = None,
        gpus: int = 0,
        cpus: int | None = None,
        parallel: int | None = None,
        name: str = "nblib-batch",
    ):
        self.logs = Path(logs)
        self.options = {
            "name": name,  # the SLURM job's name
            "timeout_min": int(time_min),
            "slurm_partition": partition,
            "mem_gb": mem_gb,
            "gpus_per_node": int(gpus) or None,  # a node without GPUs rejects --gres=gpu
            "cpus_per_task": cpus,
            "slurm_array_parallelism": parallel,
        }
        self.jobs: list = []  # the submitted jobs (submitit.Job), e.g. to cancel one
        self.poll, self.grace = 2.0, 10.0  # seconds between checks; before "no result"
        # seconds squeue may keep failing (slurmctld down, munge gone) before the jobs
        # still pending are reported failed, instead of waiting for ever
        self.patience = 300.0

    def map(self, function, items: list, on_result) -> None:
        import submitit

        executor = submitit.AutoExecutor(folder=str(self.logs), cluster="slurm")
        executor.update_parameters(**{k: v for k, v in self.options.items() if v is not None})
        self.jobs = executor.map_array(function, items)
        self._collect(dict(zip(self.jobs, items, strict=True)), on_result)

    def _collect(self, pending: dict, on_result) -> None:
        """Each job's result as it appears. A job that left the queue without a result
        (cancelled, timed out, killed) is reported failed after a grace period: submitit
        learns that from ``sacct``, which clusters without job accounting do not have."""
        import time

        gone_since: dict = {}
        failing_since = None
        while pending:
            queued, why = _queued_job_ids()
            failing_since = None if queued is not None else failing_since or time.monotonic()
            for job, item in list(pending.items()):
                if job.paths.result_pickle.exists():
                    try:
                        result = job.result()
                    except Exception as exc:  # the function raised inside the job
                        result = _slurm_failure(job, item, exc)
                    state = _final_state(job.job_id) if result["status"] == "failed" else None
                    if state in ENDED_BY_SLURM:
                        # e.g. scancel: the kernel was killed and the run says "Kernel died"
                        result["error"] = f"SLURM job {job.job_id} {state}: {result['error']}"
                    on_result(result)
                    del pending[job]
                elif queued is not None and str(job.job_id) not in queued:
                    first = gone_since.setdefault(job, time.monotonic())
                    if time.monotonic() - first > self.grace:
                        state = _slurm_state(job.job_id) or "no longer known to SLURM"
                        message = f"ended without a result ({state})"
                        on_result(_slurm_failure(job, item, message))
                        del pending[job]
            if failing_since is not None and time.monotonic() - failing_since > self.patience:
                for job, item in list(pending.items()):  # no result, and no way to learn more
                    message = f"squeue has failed for {self.patience:.0f} s ({why})"
                    on_result(_slurm_failure(job, item, message))
                return
            if pending:
                time.sleep(self.poll)


def _queued_job_ids() -> tuple[set[str] | None, str]:
    """``(ids, "")``: the job ids SLURM still holds (array tasks one per line), or
    ``(None, why)`` when squeue fails."""
    import subprocess

    try:
        result = subprocess.run(
            ["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if result.returncode:
        said = result.stderr.strip().splitlines()
        return None, said[-1] if said else f"exit status {result.returncode}"
    return set(result.stdout.split()), ""


# job states in which SLURM, not the notebook, ended the run
ENDED_BY_SLURM = ("CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY", "DEADLINE")


def _slurm_state(job_id) -> str | None:
    """The job's state while slurmctld still holds it (``scontrol``: no accounting needed)."""
    import subprocess

    try:
        result = subprocess.run(
            ["scontrol", "show", "job", "-o", str(job_id)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"JobState=(\w+)", result.stdout)
    return found.group(1) if found else None


def _final_state(job_id, wait: float = 15.0) -> str | None:
    """The job's state once SLURM has settled it: a cancelled job is COMPLETING while its
    processes are killed, and its run's failure may arrive before CANCELLED does."""
    import time

    deadline = time.monotonic() + wait
    state = _slurm_state(job_id)
    while state in ("RUNNING", "COMPLETING", "CONFIGURING") and time.monotonic() < deadline:
        time.sleep(0.5)
        state = _slurm_state(job_id)
    return state


def _slurm_failure(job, item, error) -> dict:
    lines = str(error).strip().splitlines()
    # submitit's FailedJobError carries the job's traceback: its last line is the error
    detail = next((line for line in reversed(lines) if line.strip()), type(error).__name__)
    return {
        "name": item.name,
        "status": "failed",
        "error": f"SLURM job {job.job_id}: {detail.strip()} (log {job.paths.stderr})",
    }
