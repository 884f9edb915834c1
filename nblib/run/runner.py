"""Execute suite notebooks with papermill; one run = one folder.

A run folder (default ``runs/<stem>/``) holds the executed notebook, the figures the
notebook saved and ``metrics.json`` (keys :data:`nblib.run.report.METRICS_KEYS`)::

    {"notebook", "params", "verdict", "metrics": {...}, "figures": [...],
     "nblib_version", "git_commit", "started", "seconds"}

The notebook's last cell writes ``metrics.json`` (:func:`nblib.run.report.finish`); when a
notebook fails before that, the runner writes it with verdict ``ERROR`` through the same
function. Parameters are checked against the notebook's ``parameters`` cell before a kernel
starts. The kernel's own log (IPKernelApp warnings and shutdown messages) goes to
``kernel.log`` in the run folder, kept and shown only when the run fails.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import papermill
from jupyter_client import AsyncKernelManager
from papermill.exceptions import PapermillExecutionError

from nblib import __version__
from nblib.errors import NblibError, NotebookError, ParameterError
from nblib.paths import write_text_atomic
from nblib.run.index import index_row, render_html, render_markdown
from nblib.run.params import check_parameters
from nblib.run.report import (
    RUN_CONTEXT,
    RUN_DIR_ENV,
    git_commit,
    to_jsonable,
    utc_now_iso,
    write_metrics,
    write_runner_context,
)

__all__ = [
    "KERNEL_LOG",
    "failure_details",
    "logged_kernel_manager",
    "run_all",
    "run_notebook",
]

#: The kernel process's stdout and stderr, in the run folder.
KERNEL_LOG = "kernel.log"
# Lines of the kernel log shown when a run fails.
_LOG_TAIL = 20


class _LoggedKernelManager(AsyncKernelManager):
    """Starts the kernel with its stdout/stderr in a log file instead of the terminal, where
    jupyter_client's transport warning and shutdown messages would bury the run's status.
    Subclassed per run with ``log_path`` set (papermill takes a class, not an instance)."""

    log_path: Path

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        with open(self.log_path, "ab") as log:  # the kernel process keeps its own copy
            kw.setdefault("stdout", log)
            kw.setdefault("stderr", log)
            await super()._async_launch_kernel(kernel_cmd, **kw)


def logged_kernel_manager(log_path: Path) -> type:
    """A kernel-manager class for papermill whose kernels log to ``log_path``."""
    return type("RunKernelManager", (_LoggedKernelManager,), {"log_path": Path(log_path)})


def _for_papermill(value: Any) -> Any:
    """Tuples -> lists, recursively: papermill's translator would quote a tuple as a str."""
    if isinstance(value, (list, tuple)):
        return [_for_papermill(v) for v in value]
    if isinstance(value, dict):
        return {k: _for_papermill(v) for k, v in value.items()}
    return value


def _params_record(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as JSON for metrics.json; odd literals (complex, bytes) as repr."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        try:
            out[name] = to_jsonable(value, name)
        except NblibError:
            out[name] = repr(value)
    return out


def _status(progress: bool, message: str) -> None:
    # Status goes to stderr (like papermill's progress bar) so stdout stays clean for
    # callers that pipe the CLI's output.
    if progress:
        print(f"[nblib] {message}", file=sys.stderr, flush=True)


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_LOG_TAIL:])


def failure_details(failure: Exception | None, log_path: Path) -> list[str]:
    """What a failed run shows, the error first: the failing cell's traceback (its last
    lines, colour codes stripped by papermill) or the exception papermill raised, then the
    last lines of the kernel's log (often only a transport warning, so never alone)."""
    details = []
    if isinstance(failure, PapermillExecutionError):
        lines = [line for line in str(failure).splitlines() if line.strip()][1:]
        details.append("traceback, last lines:\n" + "\n".join(lines[-_LOG_TAIL:]))
    elif failure is not None:
        details.append(f"error: {type(failure).__name__}: {failure}")
    tail = _log_tail(log_path)
    if tail:
        details.append(f"kernel log ({log_path}), last lines:\n{tail}")
    return details


def run_notebook(
    notebook: str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    kernel_name: str = "python3",
    progress: bool = True,
    cwd: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Execute one notebook with papermill; its ``metrics.json`` records the run.

    Args:
        notebook: path to the ``.ipynb``.
        params: parameter overrides, checked by :func:`nblib.run.params.check_parameters`
            before any kernel starts.
        out_dir: run folder; default ``runs/<stem>`` (relative to the current
            directory). Receives the executed copy ``<name>.ipynb``, the notebook's
            figures and ``metrics.json``.
        kernel_name: Jupyter kernel to run (``python3`` = the current environment).
        progress: show papermill's progress bar and status lines (on stderr).
        cwd: working directory of the kernel; default the notebook's folder.

    Returns:
        the metrics.json dict (keys :data:`nblib.run.report.METRICS_KEYS`).

    Raises:
        ParameterError: unknown/mistyped parameter or no parameters cell (nothing runs).
        NotebookError: a cell raised (metrics.json has verdict ``"ERROR"``, the executed
            copy keeps the error and ``kernel.log`` the kernel's messages), the kernel
            failed, or the notebook did not end with ``nblib.run.report.finish(...)``.
    """
    nb_path = Path(notebook)
    given = dict(params or {})
    merged = check_parameters(nb_path, given)
    # Only the overrides are injected: defaults stay as written in the parameters cell
    # (including non-literal ones papermill could not re-create).
    overrides = {name: _for_papermill(merged[name]) for name in given}

    out = Path(out_dir) if out_dir is not None else Path("runs") / nb_path.stem
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    executed = out / nb_path.name
    if executed == nb_path.resolve():
        raise ParameterError(
            f"out_dir {out} is the notebook's own folder; the executed copy would "
            f"overwrite {nb_path}"
        )
    # A stale metrics.json from an earlier run must not be mistaken for this one's, and
    # figures of a run with other parameters would be listed beside this run's.
    for stale in ("metrics.json", RUN_CONTEXT, KERNEL_LOG):
        (out / stale).unlink(missing_ok=True)
    shutil.rmtree(out / "figures", ignore_errors=True)

    context = {
        "notebook": nb_path.name,
        "params": _params_record(merged),
        "git_commit": git_commit(nb_path.resolve().parent),
        "started": utc_now_iso(),
        "started_epoch": time.time(),
    }
    write_runner_context(out, context)
    log_path = out / KERNEL_LOG
    manager = logged_kernel_manager(log_path)
    _status(progress, f"running {nb_path.name} -> {out}")

    previous = os.environ.get(RUN_DIR_ENV)
    # The kernel is a child process and inherits os.environ at launch; this is how the
    # notebook's nblib.run.report finds the run folder without a parameter.
    os.environ[RUN_DIR_ENV] = str(out)
    t0 = time.perf_counter()
    error: str | None = None
    failure: Exception | None = None
    try:
        papermill.execute_notebook(
            str(nb_path),
            str(executed),
            parameters=overrides,
            kernel_name=kernel_name,
            progress_bar=progress,
            cwd=str(cwd if cwd is not None else nb_path.resolve().parent),
            kernel_manager_class=manager,
        )
    except PapermillExecutionError as exc:
        failure, error = exc, f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel died, timeout, missing kernel, ...
        failure, error = exc, f"{type(exc).__name__}: {exc}"
    finally:
        seconds = round(time.perf_counter() - t0, 3)
        if previous is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = previous
        (out / RUN_CONTEXT).unlink(missing_ok=True)

    record: dict[str, Any] | None = None
    if error is None:
        try:
            record = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            error = "the notebook did not call nblib.run.report.finish(...)"
        except (OSError, ValueError) as exc:
            error = f"unreadable metrics.json: {exc}"
    if error is not None:
        record = write_metrics(
            out,
            {
                **{k: context[k] for k in ("notebook", "params", "git_commit", "started")},
                "verdict": "ERROR",
                "metrics": {"error": error},
                "figures": [],
                "captions": {},
                "nblib_version": __version__,
                "seconds": seconds,
            },
        )
        _status(progress, f"{nb_path.name}: ERROR after {seconds:.1f} s: {error}")
        details = failure_details(failure, log_path)
        for detail in details:
            _status(progress, detail)
        raise NotebookError(
            f"{nb_path.name} failed: {error}\nThe executed copy is {executed}"
            # the log's tail, when it had one, is the last detail: no second read of the file
            + (
                f"; the kernel's log is {log_path}"
                if details[-1:] and details[-1].startswith("kernel log")
                else ""
            )
        ) from failure
    log_path.unlink(missing_ok=True)  # only transport warnings when all went well
    _status(progress, f"{nb_path.name}: {record['verdict']} in {record['seconds']:.1f} s -> {out}")
    return record


def _expected_seconds(nb_path: Path, run_folder: Path) -> float:
    """How long ``nb_path`` is likely to take: its last run in ``run_folder``, else the time
    ``nblib clean --refresh`` measured (notebook metadata ``nblib.seconds``), else 0."""
    try:
        return float(json.loads((run_folder / "metrics.json").read_text("utf-8"))["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        meta = json.loads(nb_path.read_text("utf-8")).get("metadata", {})
        return float(meta.get("nblib", {}).get("seconds", 0.0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0.0


def _run_quietly(nb_path: Path, run_folder: Path, kernel_name: str, progress: bool) -> str | None:
    """One notebook of a parallel :func:`run_all`, in a worker process (``run_notebook``
    sets the run folder in ``os.environ``, so runs cannot share a process): a status line
    when it starts, no progress bar (two would garble each other); returns the first line
    of its error, or None."""
    _status(progress, f"{nb_path.name}: started")
    try:
        run_notebook(nb_path, out_dir=run_folder, kernel_name=kernel_name, progress=False)
    except NblibError as exc:
        return str(exc).splitlines()[0]
    return None


def default_workers() -> int:
    """Notebooks :func:`run_all` runs at once: 2 on a machine with 2 or more cores. Most of
    a notebook's time is one core's work (kernel start, imports, rendering, optical flow,
    small models), so two notebooks side by side nearly halve the suite; each torch job
    then takes the threads its core leaves free (:mod:`nblib.threads`)."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def run_all(
    notebooks_dir: str | os.PathLike[str] = "notebooks",
    out_dir: str | os.PathLike[str] = "runs",
    kernel_name: str = "python3",
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Run every ``*.ipynb`` in ``notebooks_dir`` with defaults; write an index.

    Each notebook runs into ``out_dir/<stem>/`` (checkpoints skipped), ``workers`` at a
    time (default :func:`default_workers`), the longest expected first so the last one to
    finish is a short one. A failing notebook does not stop the others. Afterwards
    ``out_dir/index.md`` and ``out_dir/index.html`` list every notebook (sorted by name)
    with its verdict, wall time, key metrics, figure links and executed copy.

    Returns:
        path of ``index.md``.

    Raises:
        ParameterError: ``workers`` below 1.
        NotebookError: the folder is missing or holds no notebook (nothing is written), or
            after the index is written, if any notebook failed (names them).
    """
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ParameterError(f"workers={workers}: expected a whole number >= 1")
    src = Path(notebooks_dir)
    out = Path(out_dir)
    if not src.is_dir():
        raise NotebookError(f"notebook folder not found: {src}")
    notebooks = sorted(
        p for p in src.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and p.is_file()
    )
    if not notebooks:
        raise NotebookError(f"no notebooks (*.ipynb) in {src}; pass the folder that holds them")
    folders = {p: out / p.stem for p in notebooks}
    expected = {p: _expected_seconds(p, folders[p]) for p in notebooks}
    for folder in folders.values():
        # run_notebook removes a stale metrics.json only once the parameters check
        # passed; the index must never show an old run's result for this one.
        (folder / "metrics.json").unlink(missing_ok=True)
    errors: dict[Path, str | None] = {}
    if workers == 1:
        for nb_path in notebooks:
            errors[nb_path] = None
            try:
                run_notebook(
                    nb_path, out_dir=folders[nb_path], kernel_name=kernel_name, progress=progress
                )
            except NblibError as exc:
                errors[nb_path] = str(exc).splitlines()[0]
                if not isinstance(exc, NotebookError):  # a failed run has said so already
                    _status(progress, f"{nb_path.name}: not run ({errors[nb_path]})")
    else:
        order = sorted(notebooks, key=lambda p: -expected[p])
        _status(progress, f"running {len(order)} notebooks, {workers} at a time -> {out}")
        context = multiprocessing.get_context("spawn")  # no forked copy of the parent's state
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            started = time.perf_counter()
            futures = {
                pool.submit(_run_quietly, p, folders[p], kernel_name, progress): p for p in order
            }
            for future in as_completed(futures):
                nb_path = futures[future]
                errors[nb_path] = future.result()
                row = index_row(nb_path, folders[nb_path], errors[nb_path])
                outcome = errors[nb_path] or f"{row['seconds']:.0f} s"
                _status(
                    progress,
                    f"[{time.perf_counter() - started:4.0f} s] {nb_path.name}: "
                    f"{row['verdict']} ({outcome})",
                )
    rows = [index_row(p, folders[p], errors[p]) for p in notebooks]
    failed = [p.name for p in notebooks if errors[p] is not None]

    index_md = out / "index.md"
    write_text_atomic(index_md, render_markdown(rows))
    write_text_atomic(out / "index.html", render_html(rows))
    _status(progress, f"index: {index_md}")
    if failed:
        raise NotebookError(
            f"{len(failed)} of {len(notebooks)} notebook(s) failed: {', '.join(failed)}; "
            f"see {index_md}"
        )
    return index_md
