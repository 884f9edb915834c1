"""``nblib eval --shards N``: the N shards of one closed-loop evaluation run as jobs of a
batch executor (:mod:`nblib.run.batch`: local worker processes, or one SLURM job array
through submitit), then merged into the run's one results file.

Shard ``I`` (``EvalConfig.shard = "I/N"``) writes ``<out stem>.shards/shard-I-of-N<out
suffix>`` beside ``out``; when every job has ended, :func:`nblib.eval.shards.merge_shards`
joins the shard files into ``out``, checked against the run's full (task, episode) list.
A failed or cancelled shard keeps the finished ones; ``out`` is then written incomplete
and :func:`evaluate_shards` raises, naming the shard, its error and (SLURM) its log. A
rerun with ``resume=True`` resumes every shard file, so only the missing episodes run.

Each shard is one process running its episodes one after another (``EvalConfig.workers``
must be 1): more parallelism is more shards. The executor bounds how many run at once.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from nblib.errors import NblibError, NotebookError, ParameterError, is_int
from nblib.eval.shards import merge_shards
from nblib.paths import held_alone

if TYPE_CHECKING:
    from nblib.eval.rollout import EvalConfig

LOCK_FILE = ".eval.lock"


@dataclass(frozen=True)
class ShardJob:
    """One shard of a run as a batch executor's item: its config (``shard`` set), the
    file it writes, and the run's resume / overwrite choice."""

    config: EvalConfig
    out: Path
    resume: bool = False
    overwrite: bool = False

    @property
    def name(self) -> str:
        return f"shard {self.config.shard}"

    def resumed(self) -> ShardJob:
        """The job a SLURM requeue runs instead (:class:`nblib.run.slurm.Requeueable`): it
        appends to the file the interrupted attempt began, whatever this one asked."""
        return replace(self, resume=True, overwrite=False)


def shard_folder(out: str | os.PathLike) -> Path:
    """Where the shards of ``out`` go: ``<out stem>.shards`` beside it."""
    out = Path(out)
    return out.parent / f"{out.stem}.shards"


def shard_path(out: str | os.PathLike, index: int, count: int) -> Path:
    out = Path(out)
    return shard_folder(out) / f"shard-{index}-of-{count}{out.suffix}"


def run_shard(job: ShardJob) -> dict:
    """Evaluate one shard into its file (in a worker process or a SLURM array task): the
    executor's result dict, failed with the error's message when the shard raised."""
    from nblib.eval.rollout import evaluate

    result = {"name": job.name, "status": "done", "error": None, "out": str(job.out)}
    try:
        frame = evaluate(
            job.config, job.out, progress=False, overwrite=job.overwrite, resume=job.resume
        )
    except NblibError as error:  # an expected failure: its message says it all
        return result | {"status": "failed", "error": str(error)}
    except Exception as error:  # a bug: its traceback into the job's log (stderr)
        traceback.print_exc()
        return result | {"status": "failed", "error": repr(error)}
    return result | {"episodes": len(frame), "successes": int(frame["success"].sum())}


def evaluate_shards(
    config: EvalConfig,
    out: str | os.PathLike,
    shards: int,
    executor=None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
):
    """Run ``config`` as ``shards`` shards on ``executor`` (default: one local worker
    process per shard) and merge them into ``out``; returns the rows as a DataFrame, as
    :func:`nblib.eval.rollout.evaluate` does.

    ``resume`` resumes every shard file (only missing episodes run); ``overwrite`` deletes
    the shard files and ``out`` first; without either, an existing ``out`` or shard folder
    is an error. Raises :class:`NotebookError` after the merge when a shard failed.
    """
    from nblib.eval.policies import check_policy
    from nblib.eval.rollout import task_specs
    from nblib.run.batch import LocalExecutor

    if config.shard is not None:
        raise ParameterError(
            f"shard={config.shard!r} with shards={shards}: shard=I/N runs one shard, "
            "shards=N runs all N of them; give one of the two"
        )
    if not is_int(shards) or shards < 1:
        raise ParameterError(f"shards={shards!r}: expected an int >= 1")
    if config.workers != 1:
        raise ParameterError(
            f"workers={config.workers}: each shard is one process; for more parallelism "
            "ask for more shards (the executor sets how many run at once)"
        )
    out = Path(out).resolve()  # the jobs may start in another folder
    folder = shard_folder(out)
    _check_outputs(out, folder, shards, overwrite, resume)
    check_policy(config.policy, config.sim)
    specs = task_specs(config)  # the tasks and episodes checked before anything is submitted
    expected = [(s.suite, s.task, s.task_id, i) for s in specs for i in range(config.episodes)]
    if shards > len(expected):  # a shard without episodes would write an empty file
        raise ParameterError(
            f"shards={shards} (--shards): the run has {len(expected)} episodes "
            f"({len(specs)} task(s) x {config.episodes}); ask for at most {len(expected)} shards"
        )
    jobs = [
        ShardJob(
            replace(config, shard=f"{i}/{shards}"), shard_path(out, i, shards), resume, overwrite
        )
        for i in range(shards)
    ]
    executor = executor or LocalExecutor(workers=shards)
    folder.mkdir(parents=True, exist_ok=True)
    busy = f"another nblib eval is running the shards in {folder} (lock {folder / LOCK_FILE})"
    with held_alone(folder / LOCK_FILE, busy):
        if overwrite:
            for path in [out, *_shard_files(folder, out.suffix)]:
                path.unlink(missing_ok=True)
        results = {}

        def on_result(result: dict) -> None:
            results[result["name"]] = result
            if progress:
                print(_shard_line(result), file=sys.stderr, flush=True)

        executor.map(run_shard, jobs, on_result)
        return _merge(jobs, results, out, expected, _logs(executor, jobs))


def _check_outputs(out: Path, folder: Path, shards: int, overwrite: bool, resume: bool):
    if out.suffix not in (".csv", ".jsonl"):
        raise ParameterError(f"out={str(out)!r}: expected a .csv or .jsonl file name")
    if overwrite and resume:
        raise ParameterError("overwrite and resume: give one (replace the run, or continue it)")
    if not (overwrite or resume):
        for path in (out, folder):
            if path.exists():
                raise ParameterError(
                    f"{path} exists; pass resume=True (--resume) to run only the missing "
                    f"episodes of the shards in {folder}, overwrite=True (--overwrite) to "
                    "replace them, or choose another --out"
                )
    others = [
        p.name
        for p in _shard_files(folder, out.suffix)
        if not p.name.endswith(f"-of-{shards}{out.suffix}")
    ]
    if resume and others:
        raise ParameterError(
            f"cannot resume {folder} with {shards} shard(s): it holds {others[0]}; resume "
            "with the --shards of the run that wrote it, or pass --overwrite"
        )


def _shard_files(folder: Path, suffix: str) -> list[Path]:
    return sorted(folder.glob(f"shard-*-of-*{suffix}")) if folder.is_dir() else []


def _shard_line(result: dict) -> str:
    if result["status"] != "done":
        return f"{result['name']}: FAILED: {result['error']}"
    return (
        f"{result['name']}: {result.get('episodes')} episodes, {result.get('successes')} "
        f"successes -> {result.get('out')}"
    )


def _logs(executor, jobs: list[ShardJob]) -> dict:
    """Each shard's log file (SLURM: submitit's stderr of its array task)."""
    submitted = getattr(executor, "jobs", None) or []
    return {item.name: job.paths.stderr for job, item in zip(submitted, jobs, strict=False)}


def _merge(jobs: list[ShardJob], results: dict, out: Path, expected: list, logs: dict):
    """Merge the shard files there are into ``out``; raise when a shard did not finish."""
    import pandas as pd

    from nblib.eval.output import read_rows
    from nblib.eval.results.schema import episodes_frame

    failed = [job for job in jobs if results.get(job.name, {}).get("status") != "done"]
    present = [job.out for job in jobs if job.out.is_file()]
    merged = merge_shards(present, out, overwrite=True, expected=expected) if present else None
    if failed:
        reasons = []
        for job in failed:
            error = results.get(job.name, {}).get("error") or "no result"
            log = logs.get(job.name)
            reasons.append(error + (f" (log {log})" if log and str(log) not in error else ""))
        named = "; ".join(f"{job.name}: {why}" for job, why in zip(failed, reasons, strict=True))
        kept = (
            f"{out} holds the {merged['rows']} finished episodes of {len(expected)}, marked "
            "incomplete"
            if merged
            else f"no shard finished an episode, so {out} was not written"
        )
        raise NotebookError(
            f"{len(failed)} of {len(jobs)} shard(s) failed: {named}. The finished shards are "
            f"kept in {jobs[0].out.parent}; {kept}; rerun the same command "
            "with --resume to run only the missing episodes"
        )
    if not merged["complete"]:  # every shard said done: its file must be complete
        raise NotebookError(
            f"every shard finished but {out} misses {merged['missing'][:5]}; rerun the same "
            "command with --resume"
        )
    rows = [r | {"source": str(out), "complete": True} for r in read_rows(out)]
    return pd.DataFrame(episodes_frame(rows))
