"""Notebook-side API for run outputs: where files go, saving figures, the final verdict.

A notebook calls :func:`save` for each figure and ends with :func:`finish`. The same
calls work in two settings:

* under :mod:`nblib.runner` (papermill), which sets ``NBLIB_RUN_DIR``: outputs go
  there and :func:`finish` writes ``report.json``, which the runner merges with the
  run's parameters, timing and provenance into ``metrics.json``;
* interactively in JupyterLab (no ``NBLIB_RUN_DIR``): outputs go to
  ``<repo>/runs/<notebook>/`` and :func:`finish` writes ``metrics.json`` itself.

This module deliberately does not import papermill, so notebooks start fast.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nblib import __version__
from nblib.errors import ParameterError
from nblib.paths import find_repo_root

__all__ = [
    "METRICS_KEYS",
    "RUN_DIR_ENV",
    "figure_dir",
    "finish",
    "git_commit",
    "run_dir",
    "save",
    "to_jsonable",
    "utc_now_iso",
    "write_json_atomic",
    "write_text_atomic",
]

#: Environment variable through which the runner tells the kernel its output folder.
RUN_DIR_ENV = "NBLIB_RUN_DIR"

#: The keys of metrics.json, in the order they are written. This is the contract the
#: index, the CLI and any downstream tooling rely on: change it only on purpose.
METRICS_KEYS: tuple[str, ...] = (
    "notebook",
    "params",
    "verdict",
    "metrics",
    "figures",
    "nblib_version",
    "git_commit",
    "started",
    "seconds",
)

# Figure paths saved per notebook in this process, so finish() can list them without
# the notebook having to collect them. Keyed by notebook because one kernel may (in
# interactive use) work on more than one.
_SAVED: dict[str, list[Path]] = {}


def run_dir(notebook: str) -> Path:
    """The folder (absolute Path) where this run's outputs go; created if missing.

    ``$NBLIB_RUN_DIR`` when the runner set it, else ``<repo root>/runs/<notebook>``,
    else ``./runs/<notebook>`` when no repository root is found above the cwd.
    ``notebook`` is the notebook's stem (file name without ``.ipynb``).
    """
    env = os.environ.get(RUN_DIR_ENV)
    if env:
        folder = Path(env)
    else:
        root = find_repo_root()
        folder = (root if root is not None else Path.cwd()) / "runs" / _stem(notebook)
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def figure_dir(notebook: str) -> Path:
    """Where figures go (created if missing): ``<run folder>/figures`` under the runner,
    else the repository's ``figures/<notebook>/`` (publication figures of interactive
    sessions), else ``./figures/<notebook>``."""
    if os.environ.get(RUN_DIR_ENV):
        folder = run_dir(notebook) / "figures"
    else:
        root = find_repo_root()
        folder = (root if root is not None else Path.cwd()) / "figures" / _stem(notebook)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save(fig: Any, name: str, notebook: str) -> list[Path]:
    """Save ``fig`` as ``figures/<name>.pdf`` and ``.png`` in the run folder.

    Goes through :func:`nblib.plots.save_figure` (atomic, suite style) and remembers
    the paths so :func:`finish` lists them. Returns the written paths. The figure is not
    closed, so it still shows inline in the notebook.
    """
    # Imported here so that notebooks which never plot do not pay for matplotlib.
    from nblib.plots import save_figure

    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ParameterError(f"figure name must be a plain file stem like 'loss', got {name!r}")
    paths = save_figure(fig, figure_dir(notebook) / name)
    remembered = _SAVED.setdefault(_stem(notebook), [])
    for path in paths:
        if path not in remembered:  # re-running a cell must not list a figure twice
            remembered.append(path)
    return paths


def to_jsonable(value: Any, key: str = "value") -> Any:
    """Convert ``value`` to plain JSON types (dict/list/str/int/float/bool/None).

    numpy scalars become Python scalars, numpy arrays (and anything with ``tolist``,
    e.g. torch tensors) become nested lists, tuples/sets become lists, Paths become
    strings. ``key`` names the value in error messages (nested keys are appended,
    e.g. ``metrics['loss'][3]``).

    Raises:
        ParameterError: on NaN or +/-Inf (a diverged metric must be seen, not hidden
            as null), on non-string dict keys, or on a type with no JSON form.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)  # plain str also for subclasses such as numpy.str_
    if isinstance(value, int):
        return int(value)  # also turns IntEnum etc. into a plain int
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ParameterError(
                f"{key} is {value!r}; metrics must be finite numbers "
                "(fix the computation or report the failure in the verdict)"
            )
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                # json.dumps would silently turn 1 and "1" into the same key.
                raise ParameterError(
                    f"{key} has a non-string key {k!r} ({type(k).__name__}); use str keys"
                )
            out[k] = to_jsonable(v, f"{key}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return [to_jsonable(v, f"{key}[{i}]") for i, v in enumerate(sorted(value, key=repr))]
    # numpy scalars/arrays and tensors, without importing numpy here: numpy scalars
    # have .item(); arrays and tensors have .tolist() (which also handles 0-d arrays).
    if hasattr(value, "tolist") and callable(value.tolist):
        return to_jsonable(value.tolist(), key)
    if hasattr(value, "item") and callable(value.item):
        return to_jsonable(value.item(), key)
    raise ParameterError(
        f"{key} has type {type(value).__name__}, which has no JSON form; "
        "convert it to a number, string, list or dict"
    )


def finish(
    notebook: str,
    verdict: str,
    metrics: Mapping[str, Any],
    figures: Iterable[str | os.PathLike[str]] | None = None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record the run's outcome; the last cell of every notebook calls this.

    Args:
        notebook: the notebook's stem, e.g. ``"tiny"`` for ``tiny.ipynb``.
        verdict: short non-empty outcome such as ``"PASS"``, ``"FAIL"``, ``"WARN"``.
        metrics: flat or nested mapping of JSON-able values (numpy values are
            converted); NaN/Inf are rejected.
        figures: figure files to list; default all saved via :func:`save` for this
            notebook in this kernel. Relative paths are relative to the run folder.
        params: only used interactively (the runner records the real parameters);
            written as the ``params`` of metrics.json.

    Under the runner writes ``report.json`` = ``{"verdict", "metrics", "figures"}``;
    interactively writes the full ``metrics.json``. Both atomically, into
    :func:`run_dir`. Figures are stored as paths relative to the run folder.

    Returns:
        the dict that was written.

    Raises:
        ParameterError: empty/non-str verdict, non-mapping or non-JSON-able metrics,
            NaN/Inf metric (the message names the key).
    """
    if not isinstance(verdict, str) or not verdict.strip():
        raise ParameterError(f"verdict must be a non-empty string, got {verdict!r}")
    if not isinstance(metrics, Mapping):
        raise ParameterError(f"metrics must be a dict, got {type(metrics).__name__}")
    clean_metrics = to_jsonable(metrics, "metrics")

    folder = run_dir(notebook)
    if figures is None:
        figures = _SAVED.get(_stem(notebook), [])
    figure_list = [_relative_to(folder, Path(f)) for f in figures]

    if os.environ.get(RUN_DIR_ENV):
        record: dict[str, Any] = {
            "verdict": verdict,
            "metrics": clean_metrics,
            "figures": figure_list,
        }
        write_json_atomic(folder / "report.json", record)
        return record

    record = {
        "notebook": f"{_stem(notebook)}.ipynb",
        "params": to_jsonable(dict(params or {}), "params"),
        "verdict": verdict,
        "metrics": clean_metrics,
        "figures": figure_list,
        "nblib_version": __version__,
        "git_commit": git_commit(Path.cwd()),
        "started": utc_now_iso(),
        # No wall time interactively: cells may have run over hours with pauses.
        "seconds": None,
    }
    write_json_atomic(folder / "metrics.json", record)
    return record


def git_commit(path: str | os.PathLike[str]) -> str | None:
    """``git rev-parse HEAD`` of the repository holding ``path``, or None.

    None when ``path`` is not in a git checkout, the repository has no commits yet, or
    git is not installed: provenance is best effort and must never fail a run.
    """
    folder = Path(path)
    if not folder.is_dir():
        folder = folder.parent
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def utc_now_iso() -> str:
    """Current time as ISO-8601 UTC with offset, e.g. ``2025-01-31T12:00:00.123+00:00``."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented UTF-8 JSON to ``path`` atomically (see below).

    ``allow_nan=False`` makes a NaN that slipped through fail loudly instead of
    writing invalid JSON.
    """
    text = json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    return write_text_atomic(path, text)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a temp file in the same folder + ``os.replace``.

    A reader (or a crash) never sees a half-written file: it sees the old file or the
    new one. Parent folders are created. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp_name, 0o644)  # mkstemp uses 0600; results are meant to be shared
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _stem(notebook: str) -> str:
    """``"tiny"`` for ``"tiny"``, ``"tiny.ipynb"`` or ``"notebooks/tiny.ipynb"``."""
    name = Path(str(notebook)).name
    return name[: -len(".ipynb")] if name.endswith(".ipynb") else name


def _relative_to(folder: Path, path: Path) -> str:
    """``path`` as a POSIX string relative to ``folder`` (``../`` allowed, so interactive
    runs can list figures kept in the repository's ``figures/``)."""
    absolute = (path if path.is_absolute() else folder / path).resolve()
    return Path(os.path.relpath(absolute, folder.resolve())).as_posix()
