"""Notebook-side API for run outputs: where files go, saving figures, the final verdict.

A notebook calls :func:`save` for each figure and ends with :func:`finish`, which writes
``metrics.json`` through :func:`write_metrics`, the one writer of that file. Outputs go to
``$NBLIB_RUN_DIR`` when :mod:`nblib.run.runner` started the kernel (it also leaves the
run's checked parameters and start time there, in ``run.json``), else to
``<repo>/runs/<notebook>/`` with figures in ``<repo>/figures/<notebook>/``.

This module deliberately does not import papermill, so notebooks start fast.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nblib import __version__
from nblib.errors import NotebookError, ParameterError
from nblib.paths import find_repo_root, write_json_atomic
from nblib.verdict import Verdict

__all__ = [
    "METRICS_KEYS",
    "RUN_CONTEXT",
    "RUN_DIR_ENV",
    "figure_dir",
    "finish",
    "git_commit",
    "run_dir",
    "save",
    "to_jsonable",
    "utc_now_iso",
    "write_metrics",
    "write_runner_context",
]

#: Environment variable through which the runner tells the kernel its output folder.
RUN_DIR_ENV = "NBLIB_RUN_DIR"
#: File in the run folder where the runner leaves the run's parameters and start time.
RUN_CONTEXT = "run.json"

#: The keys of metrics.json, in the order they are written. This is the contract the
#: index, the CLI and any downstream tooling rely on: change it only on purpose.
METRICS_KEYS: tuple[str, ...] = (
    "notebook",
    "params",
    "verdict",
    "metrics",
    "figures",
    "captions",
    "nblib_version",
    "git_commit",
    "started",
    "seconds",
)

#: Set to 1 (the tests do) to make a figure that is not fit for a paper an error instead
#: of a warning: no caption, text outside the canvas or too small, a size off the page.
STRICT_FIGURES_ENV = "NBLIB_STRICT_FIGURES"

# Figure paths saved per notebook in this process, so finish() can list them without
# the notebook having to collect them. Keyed by notebook because one kernel may (in
# interactive use) work on more than one.
_SAVED: dict[str, list[Path]] = {}
# Per notebook, figure name → its caption and the metrics numbers it shows.
_CAPTIONS: dict[str, dict[str, str]] = {}
_SHOWN: dict[str, dict[str, dict[tuple[str, ...], float]]] = {}


class FigureWarning(UserWarning):
    """A saved figure is not fit for a paper as it is (see :func:`save`)."""


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


def save(fig: Any, name: str, notebook: str, caption: str | None = None) -> list[Path]:
    """Save ``fig`` as ``figures/<name>.pdf`` and ``.png`` in the run folder.

    Goes through :func:`nblib.plots.save_figure` (atomic, suite style) and remembers
    the paths, the ``caption`` and the metrics numbers the figure shows
    (:func:`nblib.plots.show_number`) so :func:`finish` lists the files, records the
    captions and checks the numbers against ``metrics.json``. ``caption``: one or two
    sentences saying what the figure shows, how to read it and the number that matters;
    in a notebook it is shown under the figure. A figure without a caption or that
    fails :func:`nblib.plots.layout_problems` gets a :class:`FigureWarning` (an error
    when ``$NBLIB_STRICT_FIGURES`` is 1). Returns the written paths. ``fig`` None (a
    figure the study had nothing to draw for, e.g. no perturbed episodes) writes
    nothing and returns [].
    """
    # Imported here so that notebooks which never plot do not pay for matplotlib.
    from nblib.plots import layout_problems, save_figure, shown_numbers

    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ParameterError(f"figure name must be a plain file stem like 'loss', got {name!r}")
    if fig is None:
        return []
    problems = layout_problems(fig)
    if not (isinstance(caption, str) and caption.strip()):
        problems.insert(0, "it has no caption (pass caption='what it shows, how to read it')")
    if problems:
        message = f"figure {name!r} of {_stem(notebook)}: " + "; ".join(problems)
        if os.environ.get(STRICT_FIGURES_ENV) == "1":
            raise NotebookError(message)
        import warnings

        warnings.warn(message, FigureWarning, stacklevel=2)
    paths = save_figure(fig, figure_dir(notebook) / name)
    stem = _stem(notebook)
    remembered = _SAVED.setdefault(stem, [])
    for path in paths:
        if path not in remembered:  # re-running a cell must not list a figure twice
            remembered.append(path)
    _SHOWN.setdefault(stem, {})[name] = shown_numbers(fig)
    if caption:
        _CAPTIONS.setdefault(stem, {})[name] = " ".join(caption.split())
        _show_caption(fig, _CAPTIONS[stem][name])
    return paths


def _show_caption(fig: Any, caption: str) -> None:
    """In a notebook, show ``fig`` now with its caption under it (the inline backend would
    otherwise draw it after any text printed by the cell) and close it."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    display(fig)
    display(Markdown(f"*{caption}*"))
    plt.close(fig)


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
    verdict: Verdict,
    metrics: Mapping[str, Any],
    figures: Iterable[str | os.PathLike[str]] | None = None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record the run's outcome in ``metrics.json``; the last cell of every notebook calls this.

    Args:
        notebook: the notebook's stem, e.g. ``"tiny"`` for ``tiny.ipynb``.
        verdict: the study's :class:`nblib.verdict.Verdict`. Its label becomes
            ``metrics.json``'s ``verdict``; its numbers come first in ``metrics`` (the run
            index shows the first scalars) and its reasons are ``metrics["reasons"]``.
        metrics: flat or nested mapping of JSON-able values (numpy values are
            converted); NaN/Inf are rejected.
        figures: figure files to list; default all saved via :func:`save` for this
            notebook in this kernel. Relative paths are relative to the run folder.
        params: the parameters to record when no runner started this kernel (under
            ``nblib run`` the runner's checked parameters are recorded instead).

    Writes ``metrics.json`` into :func:`run_dir` through :func:`write_metrics`, the one
    writer of that file. Under the runner (``$NBLIB_RUN_DIR`` set) the parameters, start
    time and commit come from the runner's ``run.json`` and ``seconds`` is the time since
    the runner started the notebook; interactively ``seconds`` is None (cells may have run
    over hours with pauses).

    Returns:
        the dict that was written.

    Raises:
        ParameterError: a verdict that is not a Verdict, non-mapping or non-JSON-able
            metrics, a NaN/Inf metric (the message names the key), or a metric that
            contradicts a number of the verdict.
    """
    if not isinstance(verdict, Verdict):
        raise ParameterError(
            f"verdict must be an nblib.verdict.Verdict (label, reasons, numbers), "
            f"got {type(verdict).__name__} {verdict!r}"
        )
    if not isinstance(metrics, Mapping):
        raise ParameterError(f"metrics must be a dict, got {type(metrics).__name__}")
    merged = _with_verdict(verdict, to_jsonable(metrics, "metrics"))

    folder = run_dir(notebook)
    stem = _stem(notebook)
    if figures is None:
        figures = _SAVED.get(stem, [])
    figures = [_relative_to(folder, Path(f)) for f in figures]
    names = {Path(f).stem for f in figures}
    captions = {k: v for k, v in _CAPTIONS.get(stem, {}).items() if k in names}
    _check_shown({k: v for k, v in _SHOWN.get(stem, {}).items() if k in names}, merged, stem)
    context = _runner_context(folder)
    if context is None:  # interactive: no wall time, cells may have run over hours
        context = {
            "notebook": f"{_stem(notebook)}.ipynb",
            "params": to_jsonable(dict(params or {}), "params"),
            "git_commit": git_commit(Path.cwd()),
            "started": utc_now_iso(),
        }
    started = context.get("started_epoch")
    record = {
        **{k: context[k] for k in ("notebook", "params", "git_commit", "started")},
        "verdict": verdict.label,
        "metrics": merged,
        "figures": figures,
        "captions": captions,
        "nblib_version": __version__,
        "seconds": None if started is None else round(time.time() - started, 3),
    }
    write_figure_exports(folder, figures, captions)
    return write_metrics(folder, record)


def _check_shown(
    shown: Mapping[str, Mapping[tuple[str, ...], float]], metrics: Mapping[str, Any], stem: str
) -> None:
    """Refuse a run whose figure shows a number that ``metrics.json`` does not have or
    has with another value (the figure and the metrics would disagree)."""
    for figure, numbers in shown.items():
        for path, value in numbers.items():
            node: Any = metrics
            for part in path:
                if not isinstance(node, Mapping) or part not in node:
                    raise ParameterError(
                        f"figure {figure!r} of {stem} shows metrics"
                        + "".join(f"[{p!r}]" for p in path)
                        + f" = {value!r}, which metrics.json does not have"
                    )
                node = node[part]
            if not isinstance(node, (int, float)) or not math.isclose(
                float(node), value, rel_tol=1e-9, abs_tol=1e-12
            ):
                raise ParameterError(
                    f"figure {figure!r} of {stem} shows {value!r} for metrics"
                    + "".join(f"[{p!r}]" for p in path)
                    + f", but metrics.json has {node!r}"
                )


def write_figure_exports(
    folder: Path, figures: list[str], captions: Mapping[str, str]
) -> list[Path]:
    """``figures.md`` and ``figures.tex`` in the run folder: each figure with its caption,
    as Markdown (the PNG) and as LaTeX ``figure`` environments (the PDF), ready to paste
    into a report or paper. Nothing is written for a run without figures."""
    from nblib.paths import write_text_atomic

    pdfs = [f for f in figures if f.endswith(".pdf")]
    pngs = {Path(f).stem: f for f in figures if f.endswith(".png")}
    if not pdfs and not pngs:
        return []
    stems = list(dict.fromkeys([Path(f).stem for f in pdfs] + list(pngs)))
    md, tex = [], []
    for name in stems:
        caption = captions.get(name, "")
        if name in pngs:
            md.append(f"![{name}]({pngs[name]})\n\n*{caption}*\n")
        pdf = next((f for f in pdfs if Path(f).stem == name), None)
        if pdf:
            tex.append(
                "\\begin{figure}[t]\n  \\centering\n"
                f"  \\includegraphics[width=\\linewidth]{{{pdf}}}\n"
                f"  \\caption{{{_latex_escape(caption)}}}\n"
                f"  \\label{{fig:{name.replace('_', '-')}}}\n\\end{{figure}}\n"
            )
    return [
        write_text_atomic(folder / "figures.md", "\n".join(md)),
        write_text_atomic(folder / "figures.tex", "\n".join(tex)),
    ]


def _latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (captions are plain prose)."""
    special = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(special.get(ch, ch) for ch in text)


def write_metrics(folder: str | os.PathLike[str], record: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``folder/metrics.json`` with exactly :data:`METRICS_KEYS`, atomically and last:
    its presence means the run is over. The only writer of that file (:func:`finish` on
    success, the runner when a notebook failed before finishing)."""
    missing = [k for k in METRICS_KEYS if k not in record]
    if missing:
        raise ParameterError(f"metrics.json record lacks {missing}")
    out = {key: record[key] for key in METRICS_KEYS}
    write_json_atomic(Path(folder) / "metrics.json", out)
    return out


def _with_verdict(verdict: Verdict, metrics: dict[str, Any]) -> dict[str, Any]:
    """The verdict's numbers first, then the other metrics, then the verdict's reasons."""
    out = to_jsonable(verdict.numbers, "verdict.numbers")
    for key, value in metrics.items():
        if key == "reasons":
            raise ParameterError("metrics key 'reasons' is reserved for the verdict's reasons")
        if key in out and out[key] != value:
            raise ParameterError(
                f"metrics[{key!r}]={value!r} contradicts the verdict's number {out[key]!r}"
            )
        out[key] = value
    out["reasons"] = list(verdict.reasons)
    return out


def write_runner_context(folder: Path, context: Mapping[str, Any]) -> Path:
    """What the runner tells the kernel it starts (see :func:`finish`): ``notebook``,
    ``params``, ``git_commit``, ``started`` (ISO time), ``started_epoch`` (seconds)."""
    return write_json_atomic(folder / RUN_CONTEXT, dict(context))


def _runner_context(folder: Path) -> dict[str, Any] | None:
    """The runner's context when this kernel was started by ``nblib run``, else None."""
    if not os.environ.get(RUN_DIR_ENV):
        return None
    path = folder / RUN_CONTEXT
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NotebookError(f"{RUN_DIR_ENV} is set but {path} is unreadable: {exc}") from exc


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


def _stem(notebook: str) -> str:
    """``"tiny"`` for ``"tiny"``, ``"tiny.ipynb"`` or ``"notebooks/tiny.ipynb"``."""
    name = Path(str(notebook)).name
    return name[: -len(".ipynb")] if name.endswith(".ipynb") else name


def _relative_to(folder: Path, path: Path) -> str:
    """``path`` as a POSIX string relative to ``folder`` (``../`` allowed, so interactive
    runs can list figures kept in the repository's ``figures/``)."""
    absolute = (path if path.is_absolute() else folder / path).resolve()
    return Path(os.path.relpath(absolute, folder.resolve())).as_posix()
