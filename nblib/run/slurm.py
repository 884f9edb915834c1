"""The SLURM executor of :mod:`nblib.run.batch`: one job array through submitit for a
list of items (notebook runs, evaluation shards), their results collected as they appear.

Without job accounting (``sacct``), submitit cannot tell that a job was cancelled or timed
out; the executor watches ``squeue`` and ``scontrol`` instead: a job that left the queue
without a result is reported failed after a grace period, with the state SLURM gives.

Requeue: each job is submitted with ``--signal=USR2@<signal_delay_s>``, so SLURM signals
it that long before its time limit (and at preemption on clusters with
``PreemptParameters=send_user_signal``). submitit's handler then calls the job's
``checkpoint`` (:class:`Requeueable`) and ``scontrol requeue``s it; the requeued job calls
the same function on the same item again. A notebook run goes into the same folder and,
its ``resume`` parameter being on, continues from its latest checkpoint there; an item
with a ``resumed()`` method (an evaluation shard) is replaced by what it returns. A job
SLURM requeues by itself (``scontrol requeue``, preemption in REQUEUE mode) restarts the
same way, from its last checkpoint. Each result says how often its job was requeued
(``"requeues"``: SLURM's own restart count).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

# job states of a job SLURM requeued: a result written as it was being ended is stale
REQUEUED = ("PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "SPECIAL_EXIT")


def restart_count() -> int:
    """How many times SLURM has requeued the job this process runs in (0 outside SLURM)."""
    value = os.environ.get("SLURM_RESTART_COUNT", "")
    return int(value) if value.isdigit() else 0


class Requeueable:
    """``function(item)`` in a SLURM job that submitit requeues when SLURM signals it.

    submitit requeues a signalled job after its time limit was (nearly) reached only when
    the submitted callable has a ``checkpoint`` method returning what to run next: here the
    same call (the notebook's own checkpoints hold the progress, not this object). The
    result gets ``"requeues"``; after a requeue an item with ``resumed()`` is replaced by
    ``item.resumed()`` (e.g. an evaluation shard that appends to its partial file)."""

    def __init__(self, function):
        self.function = function

    def __call__(self, item) -> dict:
        requeues = restart_count()
        if requeues:
            name = getattr(item, "name", item)
            print(
                f"nblib: SLURM requeued this job {requeues}x; running {name} again (a "
                "notebook resumes from its latest checkpoint, a shard from its partial file)",
                file=sys.stderr,
                flush=True,
            )
            if hasattr(item, "resumed"):
                item = item.resumed()
        return {**self.function(item), "requeues": requeues}

    def checkpoint(self, item):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, item)


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
        signal_delay_s: int | None = None,
        max_timeouts: int | None = None,
        name: str = "nblib-batch",
    ):
        """``signal_delay_s``: seconds before the time limit at which SLURM signals a job
        to requeue it (submitit's default 90: time for the signal to arrive and the
        requeue to be asked); ``max_timeouts``: how many times a job that reaches its time
        limit is requeued (submitit's default 3; preemptions are not counted)."""
        self.logs = Path(logs)
        self.options = {
            "name": name,  # the SLURM job's name
            "timeout_min": int(time_min),
            "slurm_partition": partition,
            "mem_gb": mem_gb,
            "gpus_per_node": int(gpus) or None,  # a node without GPUs rejects --gres=gpu
            "cpus_per_task": cpus,
            "slurm_array_parallelism": parallel,
            "slurm_signal_delay_s": signal_delay_s,
        }
        self.max_timeouts = max_timeouts
        self.jobs: list = []  # the submitted jobs (submitit.Job), e.g. to cancel one
        self.poll, self.grace = 2.0, 10.0  # seconds between checks; before "no result"
        # seconds squeue may keep failing (slurmctld down, munge gone) before the jobs
        # still pending are reported failed, instead of waiting for ever
        self.patience = 300.0

    def map(self, function, items: list, on_result) -> None:
        import submitit

        extra = {} if self.max_timeouts is None else {"slurm_max_num_timeout": self.max_timeouts}
        executor = submitit.AutoExecutor(folder=str(self.logs), cluster="slurm", **extra)
        executor.update_parameters(**{k: v for k, v in self.options.items() if v is not None})
        self.jobs = executor.map_array(Requeueable(function), items)
        self._collect(dict(zip(self.jobs, items, strict=True)), on_result)

    def _collect(self, pending: dict, on_result) -> None:
        """Each job's result as it appears. A job that left the queue without a result
        (cancelled, timed out, killed) is reported failed after a grace period: submitit
        learns that from ``sacct``, which clusters without job accounting do not have. A
        failed result written while SLURM was ending the job to requeue it (its kernel got
        SIGTERM) is stale: the requeued job writes the real one."""
        import time

        gone_since: dict = {}
        stale: dict = {}  # job -> modification time of its stale result file
        failing_since = None
        while pending:
            queued, why = _queued_job_ids()
            failing_since = None if queued is not None else failing_since or time.monotonic()
            for job, item in list(pending.items()):
                written = _modified(job.paths.result_pickle)
                if written is not None and written != stale.get(job):
                    try:
                        result = job.result()
                    except Exception as exc:  # the function raised inside the job
                        result = _slurm_failure(job, item, exc)
                    if result["status"] == "failed":
                        fields = _slurm_fields(job.job_id)
                        if not _requeued(fields, result):
                            fields = _final_fields(job.job_id)
                        if _requeued(fields, result):
                            stale[job] = written
                            continue
                        result.setdefault("requeues", _restarts(fields))
                        state = fields.get("JobState")
                        if state in ENDED_BY_SLURM:
                            # e.g. scancel: the kernel was killed and the run says "Kernel died"
                            result["error"] = f"SLURM job {job.job_id} {state}: {result['error']}"
                    on_result(result)
                    del pending[job]
                elif queued is not None and str(job.job_id) not in queued:
                    first = gone_since.setdefault(job, time.monotonic())
                    if time.monotonic() - first > self.grace:
                        fields = _slurm_fields(job.job_id)
                        state = fields.get("JobState") or "no longer known to SLURM"
                        message = f"ended without a result ({state})"
                        failure = _slurm_failure(job, item, message)
                        on_result(failure | {"requeues": _restarts(fields)})
                        del pending[job]
            if failing_since is not None and time.monotonic() - failing_since > self.patience:
                for job, item in list(pending.items()):  # no result, and no way to learn more
                    message = f"squeue has failed for {self.patience:.0f} s ({why})"
                    on_result(_slurm_failure(job, item, message))
                return
            if pending:
                time.sleep(self.poll)


def _modified(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _requeued(fields: dict, result: dict) -> bool:
    """Whether SLURM requeued the job after the attempt that wrote ``result``: the job is
    pending again, or it has restarted more often than that attempt had seen."""
    if fields.get("JobState") in REQUEUED:
        return True
    return "requeues" in result and _restarts(fields) > result["requeues"]


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


def _slurm_fields(job_id) -> dict[str, str]:
    """The job's ``Key=Value`` fields while slurmctld still holds it (``scontrol``: no
    accounting needed); empty when it does not."""
    import subprocess

    try:
        result = subprocess.run(
            ["scontrol", "show", "job", "-o", str(job_id)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return dict(re.findall(r"(?:^|\s)(\w+)=(\S*)", result.stdout))


def _slurm_state(job_id) -> str | None:
    return _slurm_fields(job_id).get("JobState")


def _restarts(fields: dict) -> int:
    """How many times SLURM requeued the job (``Restarts``; 0 when unknown)."""
    value = fields.get("Restarts", "")
    return int(value) if value.isdigit() else 0


def _final_fields(job_id, wait: float = 15.0) -> dict[str, str]:
    """The job's fields once SLURM has settled its state: a cancelled job is COMPLETING
    while its processes are killed, and its run's failure may arrive before CANCELLED does
    (a requeued one, before it is PENDING again)."""
    import time

    deadline = time.monotonic() + wait
    fields = _slurm_fields(job_id)
    while (
        fields.get("JobState") in ("RUNNING", "COMPLETING", "CONFIGURING")
        and time.monotonic() < deadline
    ):
        time.sleep(0.5)
        fields = _slurm_fields(job_id)
    return fields


def _slurm_failure(job, item, error) -> dict:
    lines = str(error).strip().splitlines()
    # submitit's FailedJobError carries the job's traceback: its last line is the error
    detail = next((line for line in reversed(lines) if line.strip()), type(error).__name__)
    return {
        "name": item.name,
        "status": "failed",
        "error": f"SLURM job {job.job_id}: {detail.strip()} (log {job.paths.stderr})",
    }
