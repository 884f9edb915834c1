"""Batches of notebook runs from a grid file, on local worker processes (one kernel per GPU
when GPUs are given) or on SLURM through submitit; resumable, one table at the end.

A grid file (YAML)::

    runs:
      - notebook: notebooks/01_overfit_diagnosis.ipynb
        params: {steps: 500}                              # fixed for every run (optional)
        grid: {head: [flow, regression], demos: [1, 5]}   # cartesian product (optional)
        zip: {lr: [1.0e-3, 3.0e-4], warmup_steps: [50, 100]}  # zipped lists (optional)
        seeds: [0, 1, 2]                                  # sets the notebook's `seed` (optional)

Every combination is one papermill run (:func:`nblib.run.runner.run_notebook`) in its own
folder ``OUT/<notebook stem>__<name=value>_...`` with its own metrics.json. Everything is
checked before anything runs: the file's layout, every notebook, every parameter against
the notebook's parameters cell (unknown names and wrong types are errors naming the entry).

Resuming: a finished run leaves ``batch.json`` (its parameters and the code version: the
git commit, or the notebook's hash when there is no repository) beside its metrics.json,
written after the run; a rerun skips a combination whose batch.json and metrics.json
match and redoes failed, interrupted (no batch.json) or changed ones. One failing notebook
never stops the others: its executed copy is kept and the batch lists it with its error.
A kernel that fails to start is retried. Two batches writing to one folder: the second is
refused (a lock file).

On SLURM (:mod:`nblib.run.slurm`) a job signalled before its time limit or at
preemption is requeued by submitit and runs the same notebook into the same folder again:
a notebook with ``checkpoint_every`` / ``resume`` continues from its latest checkpoint in
``<run folder>/checkpoints/``. Nothing here deletes that folder, so a run interrupted
locally (a killed batch) resumes from it on the rerun too.

At the end every run's metrics.json goes into ``OUT/batch.csv`` and ``OUT/batch.parquet``
(one row per run: name, notebook, status, verdict, seconds, error, requeues, ``param.*``,
``metric.*``) and the index pages ``OUT/index.md`` / ``index.html`` that ``nblib
run-all`` writes too.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nblib.errors import NblibError, NotebookError, ParameterError
from nblib.paths import atomic_path, held_alone, write_text_atomic
from nblib.run.params import seed_overrides

ENTRY_KEYS = ("notebook", "params", "grid", "zip", "seeds")
BATCH_RECORD = "batch.json"
LOCK_FILE = ".batch.lock"
KERNEL_START_RETRIES = 2
# what jupyter_client / papermill say when a kernel never came up (retried, not a cell error)
_KERNEL_START = re.compile(
    r"kernel died before replying|kernel didn't respond|no such kernel|"
    r"failed to start the kernel|kernel_info",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Run:
    """One combination: a notebook, its parameter overrides, its folder name."""

    notebook: Path
    params: dict[str, Any] = field(hash=False)
    name: str

    def folder(self, out: Path) -> Path:
        return out / self.name


def _error(path: Path, where: str, message: str) -> ParameterError:
    return ParameterError(f"{path}: {where}: {message}")


def _value_slug(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, (list, tuple)):
        text = "-".join(_value_slug(v) for v in value)
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "x"


def run_name(notebook: Path, varied: dict[str, Any]) -> str:
    """``<stem>`` or ``<stem>__name=value_name=value`` (long names end in a hash)."""
    if not varied:
        return notebook.stem
    parts = "_".join(f"{k}={_value_slug(v)}" for k, v in varied.items())
    name = f"{notebook.stem}__{parts}"
    if len(name) > 120:
        digest = hashlib.sha1(json.dumps(varied, sort_keys=True, default=str).encode())
        name = f"{name[:100]}__{digest.hexdigest()[:8]}"
    return name


def _combinations(path: Path, index: int, entry: dict, parameters=()) -> list[tuple[dict, dict]]:
    """(all overrides, the varied ones) per combination of one entry; ``seeds`` set the
    notebook's seed parameter (``parameters``: its names, see
    :func:`nblib.run.params.seed_overrides`)."""
    where = f"runs[{index}]"
    fixed = entry.get("params") or {}
    grid = entry.get("grid") or {}
    zipped = entry.get("zip") or {}
    seeds = entry.get("seeds")
    for key, value in (("params", fixed), ("grid", grid), ("zip", zipped)):
        if not isinstance(value, dict):
            raise _error(path, f"{where}.{key}", f"expected a mapping, got {value!r}")
    for key, values in {**grid, **zipped}.items():
        if not isinstance(values, list) or not values:
            raise _error(path, f"{where}: {key}", f"expected a non-empty list, got {values!r}")
    lengths = {len(v) for v in zipped.values()}
    if len(lengths) > 1:
        sizes = {k: len(v) for k, v in zipped.items()}
        raise _error(path, f"{where}.zip", f"lists of different lengths {sizes}")
    overlap = set(fixed) & set(grid) | set(fixed) & set(zipped) | set(grid) & set(zipped)
    seed_items = [{}]
    if seeds is not None:
        ok = isinstance(seeds, list) and seeds and all(type(s) is int for s in seeds)
        if not ok:
            raise _error(path, f"{where}.seeds", f"expected a list of ints, got {seeds!r}")
        try:
            seed_items = [seed_overrides(parameters, s) for s in seeds]
        except ParameterError as error:
            raise _error(path, f"{where}.seeds", str(error)) from error
        overlap |= set(seed_items[0]) & {*fixed, *grid, *zipped}
    if overlap:
        raise _error(path, where, f"parameters set twice: {sorted(overlap)}")
    grid_items = [
        dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())
    ]
    zip_items = [
        dict(zip(zipped, values, strict=True)) for values in zip(*zipped.values(), strict=True)
    ]
    out = []
    for g, z, s in itertools.product(grid_items or [{}], zip_items or [{}], seed_items):
        varied = {**g, **z, **s}
        out.append(({**fixed, **varied}, varied))
    return out


def load_grid(path: str | os.PathLike[str]) -> list[Run]:
    """Every run of a grid file, checked (layout, notebooks, parameters); nothing runs.
    Notebook paths are relative to the grid file's folder, else to the current folder;
    paths among the parameters (:data:`nblib.run.params.PATH_PARAMETERS`) are relative to
    the current folder and made absolute here."""
    from nblib.run.params import check_parameters, notebook_parameters

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ParameterError(f"{path}: cannot read the grid file ({error})") from error
    except yaml.YAMLError as error:
        raise ParameterError(f"{path}: not valid YAML ({error})") from error
    entries = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ParameterError(f"{path}: expected a top-level 'runs:' list of notebook entries")
    extra = sorted(set(data) - {"runs", "slurm"})
    if extra:
        raise ParameterError(f"{path}: unknown top-level key(s) {extra}; expected runs, slurm")
    slurm_options(path, data)  # checked now too
    runs: list[Run] = []
    for index, entry in enumerate(entries):
        where = f"runs[{index}]"
        if not isinstance(entry, dict) or "notebook" not in entry:
            raise _error(path, where, "expected a mapping with a 'notebook' key")
        unknown = sorted(set(entry) - set(ENTRY_KEYS))
        if unknown:
            raise _error(path, where, f"unknown key(s) {unknown}; expected {list(ENTRY_KEYS)}")
        notebook = Path(str(entry["notebook"]))
        candidates = [notebook] if notebook.is_absolute() else [path.parent / notebook, notebook]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise _error(path, where, f"notebook {entry['notebook']!r} not found")
        parameters = notebook_parameters(found)
        for overrides, varied in _combinations(path, index, entry, parameters):
            try:
                checked = check_parameters(found, overrides)
            except ParameterError as error:
                raise _error(path, where, str(error)) from error
            # paths made absolute here, where the user is; the folder keeps the given names
            params = {name: checked[name] for name in overrides}
            runs.append(Run(found.resolve(), params, run_name(found, varied)))
    names = [r.name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ParameterError(f"{path}: two runs would share the folder(s) {duplicates}")
    return runs


SLURM_KEYS = (
    "partition",
    "time_min",
    "mem_gb",
    "gpus",
    "cpus",
    "parallel",
    "logs",
    "signal_delay_s",  # seconds before the time limit at which SLURM signals a requeue
    "max_timeouts",  # requeues after reaching the time limit (preemptions not counted)
)


def slurm_options(path: str | os.PathLike[str], data: dict | None = None) -> dict[str, Any]:
    """The grid file's optional ``slurm:`` mapping (keys :data:`SLURM_KEYS`), checked."""
    path = Path(path)
    if data is None:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    options = data.get("slurm") or {}
    if not isinstance(options, dict):
        raise ParameterError(f"{path}: slurm: expected a mapping of {list(SLURM_KEYS)}")
    unknown = sorted(set(options) - set(SLURM_KEYS))
    if unknown:
        raise ParameterError(
            f"{path}: slurm: unknown key(s) {unknown}; expected {list(SLURM_KEYS)}"
        )
    for key in ("time_min", "gpus", "cpus", "parallel", "signal_delay_s", "max_timeouts"):
        value = options.get(key)
        if value is not None and (type(value) is not int or value < 0):
            raise ParameterError(f"{path}: slurm.{key}: expected an int >= 0, got {value!r}")
    return dict(options)


# ----------------------------------------------------------------------------- resuming


def code_version(notebook: Path) -> str:
    """The git commit of the notebook's checkout (with ``+dirty-<hash of the uncommitted
    changes>`` when tracked files changed, so other edits are another version), else the
    notebook file's hash."""
    from nblib.run.report import git_commit

    commit = git_commit(notebook.parent)
    if commit:
        changes = _uncommitted(notebook.parent)
        return commit + (f"+dirty-{hashlib.sha1(changes).hexdigest()[:10]}" if changes else "")
    return "notebook:" + hashlib.sha256(notebook.read_bytes()).hexdigest()[:16]


def _uncommitted(folder: Path) -> bytes:
    """``git diff HEAD`` of the checkout (tracked files), empty when clean or unknown."""
    import subprocess

    try:
        result = subprocess.run(
            ["git", "diff", "HEAD"], cwd=folder, capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return b""
    return result.stdout if result.returncode == 0 else b""


def _record(run: Run, version: str) -> dict:
    from nblib.run.runner import _params_record

    return {"notebook": run.notebook.name, "params": _params_record(run.params), "code": version}


def is_done(run: Run, out: Path, version: str) -> bool:
    """A finished run of the same parameters and code: batch.json and metrics.json agree."""
    folder = run.folder(out)
    try:
        record = json.loads((folder / BATCH_RECORD).read_text(encoding="utf-8"))
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return record == _record(run, version) and metrics.get("verdict") not in (None, "ERROR")


# ----------------------------------------------------------------------------- one run


def execute(run: Run, out: Path, version: str, gpu: str | None = None) -> dict:
    """Run one combination (in this process): ``{"name", "status", "error"}``. The kernel
    sees ``CUDA_VISIBLE_DEVICES=gpu`` when a GPU is given; a kernel that does not start is
    retried."""
    from nblib.run.runner import run_notebook

    folder = run.folder(out)
    # also the restart of an interrupted or requeued run: the folder's checkpoints/ and
    # whatever else the notebook resumes from stay (run_notebook clears only its own
    # records: metrics.json, figures/, the kernel log)
    (folder / BATCH_RECORD).unlink(missing_ok=True)  # not done until it is rewritten
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # the kernel inherits it at launch
    error = None
    for attempt in range(KERNEL_START_RETRIES + 1):
        try:
            run_notebook(run.notebook, run.params, out_dir=folder, progress=False)
            error = None
            break
        except NblibError as exc:
            error = str(exc).splitlines()[0]
            if not _KERNEL_START.search(str(exc)) or attempt == KERNEL_START_RETRIES:
                break
    if error is None:
        write_text_atomic(folder / BATCH_RECORD, json.dumps(_record(run, version), indent=1))
    return {"name": run.name, "status": "failed" if error else "done", "error": error,
            "resumed_from_step": _resumed_from_step(folder)}  # fmt: skip


def _resumed_from_step(folder: Path) -> int | None:
    """The step the run's last execution continued from (its metrics.json), None when it
    started afresh or its notebook does not checkpoint."""
    try:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))["metrics"]
        return metrics.get("resumed_from_step")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _execute_versioned(run: Run, out: Path, versions: dict, gpu: str | None = None) -> dict:
    return execute(run, out, versions[run.notebook], gpu=gpu)


# ----------------------------------------------------------------------------- executors


class LocalExecutor:
    """Worker processes (spawned); with ``gpus``, one item per GPU at a time (``gpu=``)."""

    def __init__(self, workers: int = 1, gpus: list[str] | None = None):
        if workers < 1:
            raise ParameterError(f"workers={workers}: expected >= 1")
        self.gpus = list(gpus or [])
        if self.gpus and workers > len(self.gpus):
            raise ParameterError(
                f"workers={workers} with {len(self.gpus)} GPU(s) {self.gpus}: a GPU is never "
                "shared by two runs; use at most one worker per GPU"
            )
        self.workers = workers

    def map(self, function, items: list, on_result) -> None:
        """``on_result(function(item))`` for each item (picklable, with a ``.name``: a Run, an
        eval shard) as it ends; a result is a dict with name, status (done, failed), error."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if self.workers == 1 and not self.gpus:
            for item in items:
                on_result(function(item))
            return
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager:
            free = manager.Queue() if self.gpus else None
            for gpu in self.gpus:
                free.put(gpu)
            with ProcessPoolExecutor(self.workers, mp_context=context) as pool:
                futures = {
                    pool.submit(_call_with_gpu, function, item, free): item for item in items
                }
                for future in as_completed(futures):
                    item = futures[future]
                    try:
                        on_result(future.result())
                    except Exception as exc:  # a worker died: that item failed, not the rest
                        on_result({"name": item.name, "status": "failed", "error": repr(exc)})


def _call_with_gpu(function, item, free) -> dict:
    if free is None:
        return function(item)
    gpu = free.get()  # blocks until a GPU is free: never two runs on one GPU
    try:
        return function(item, gpu=gpu)
    finally:
        free.put(gpu)


# ----------------------------------------------------------------------------- the batch


@dataclass
class BatchResult:
    out: Path
    results: list[dict]  # per run: name, status (done, skipped, failed), error, requeues
    table: Any  # pandas DataFrame, one row per run

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.results if r["status"] == "failed"]

    @property
    def requeued(self) -> list[dict]:
        """The runs SLURM requeued (preempted, or signalled before their time limit)."""
        return [r for r in self.results if r.get("requeues")]


def resumption(result: dict) -> str:
    """How a requeued run continued, from its metrics.json's ``resumed_from_step``: one
    step, or run -> step for a notebook that trains several runs (03's sweep)."""
    if result["status"] != "done":
        return result["status"]
    step = result.get("resumed_from_step")
    if isinstance(step, dict):  # runs that started afresh are left out
        step = {run: s for run, s in step.items() if s is not None}
    if step is None or step == {}:  # signalled before its first checkpoint, or none kept
        return "restarted from the beginning (no checkpoint to resume from)"
    if isinstance(step, dict):
        at = ", ".join(f"{run} at step {s}" for run, s in step.items())
        return f"resumed from its checkpoints: {at}"
    return f"resumed from its checkpoint at step {step}"


def requeue_line(result: dict) -> str:
    """What the batch says of a run SLURM requeued."""
    return f"run {result['name']}: requeued {result['requeues']}x by SLURM, {resumption(result)}"


def run_batch(
    grid: str | os.PathLike[str],
    out: str | os.PathLike[str],
    executor=None,
    progress: bool = True,
) -> BatchResult:
    """Run every combination of ``grid`` not already done in ``out``; collect the table
    and index. Raises :class:`NotebookError` after collecting when some runs failed."""
    from tqdm.auto import tqdm

    runs = load_grid(grid)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    busy = (
        f"another batch is writing to {out} (lock {out / LOCK_FILE}); wait for it or choose "
        "another --out"
    )
    with held_alone(out / LOCK_FILE, busy):
        executor = executor or LocalExecutor()
        versions = {run.notebook: code_version(run.notebook) for run in runs}
        results = []
        todo = []
        for run in runs:
            if is_done(run, out, versions[run.notebook]):
                results.append({"name": run.name, "status": "skipped", "error": None})
            else:
                todo.append(run)
        bar = tqdm(total=len(todo), desc="batch runs", disable=not progress)

        def on_result(result: dict) -> None:
            results.append(result)
            bar.update(1)
            if result.get("requeues"):
                bar.write(requeue_line(result))
            if result["error"]:
                bar.write(f"{result['name']}: FAILED: {result['error']}")

        try:
            if todo:
                job = functools.partial(_execute_versioned, out=out, versions=versions)
                executor.map(job, todo, on_result)
        finally:
            bar.close()
        order = {run.name: i for i, run in enumerate(runs)}
        results.sort(key=lambda r: order[r["name"]])
        table = collect(out, runs, results)
    result = BatchResult(out, results, table)
    if result.failed:
        names = ", ".join(r["name"] for r in result.failed)
        raise NotebookError(
            f"{len(result.failed)} of {len(runs)} run(s) failed: {names}; their executed "
            f"notebooks are kept; see {out / 'index.md'}"
        )
    return result


# ----------------------------------------------------------------------------- collecting


def collect(out: Path, runs: list[Run], results: list[dict]):
    """``batch.csv``, ``batch.parquet`` and the index pages from every run's metrics.json."""
    import pandas as pd

    from nblib.run.index import index_row, render_html, render_markdown

    status = {r["name"]: r for r in results}
    rows, index_rows = [], []
    for run in runs:
        folder = run.folder(out)
        try:
            data = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        result = status.get(run.name, {"status": "not run", "error": None})
        row = {
            "run": run.name,
            "notebook": run.notebook.name,
            "status": result["status"],
            "verdict": data.get("verdict"),
            "seconds": data.get("seconds"),
            "error": result["error"],
            # times SLURM requeued it in this batch (0: not requeued, skipped, local)
            "requeues": result.get("requeues") or 0,
        }
        for key, value in (data.get("params") or run.params).items():
            row[f"param.{key}"] = json.dumps(value) if isinstance(value, (list, dict)) else value
        for key, value in (data.get("metrics") or {}).items():
            if isinstance(value, (int, float, str, bool)) or value is None:
                row[f"metric.{key}"] = value
        rows.append(row)
        index = index_row(run.notebook, folder, result["error"])
        index["notebook"] = run.name
        if index["executed"]:
            index["executed"] = f"{run.name}/{run.notebook.name}"
        index_rows.append(index)
    table = pd.DataFrame(rows)
    write_text_atomic(out / "batch.csv", table.to_csv(index=False))
    # Parquet wants one type per column: a parameter that is a number in one run and a
    # string in another is stored as text (missing values stay missing)
    typed = table.copy()
    for column in typed.columns:
        kinds = {type(v) for v in typed[column] if v is not None and v == v}
        if len(kinds) > 1:
            typed[column] = typed[column].map(lambda v: v if v is None or v != v else str(v))
    with atomic_path(out / "batch.parquet") as tmp:
        typed.to_parquet(tmp, index=False)
    write_text_atomic(out / "index.md", render_markdown(index_rows))
    write_text_atomic(out / "index.html", render_html(index_rows))
    return table
