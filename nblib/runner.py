"""Execute suite notebooks with papermill and record each run in ``metrics.json``.

One run = one folder (default ``runs/<stem>/``) holding the executed notebook, the
figures the notebook saved, ``report.json`` (written by the notebook's final
:func:`nblib.report.finish` call) and ``metrics.json`` (written here, last). The
``metrics.json`` keys are fixed (:data:`nblib.report.METRICS_KEYS`)::

    {"notebook", "params", "verdict", "metrics": {...}, "figures": [...],
     "nblib_version", "git_commit", "started", "seconds"}

Parameters are checked against the notebook's ``parameters`` cell *before* a kernel
starts, because papermill only warns about unknown names and never checks types.
"""

from __future__ import annotations

import ast
import html
import io
import json
import os
import re
import shutil
import sys
import time
import tokenize
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nbformat
import papermill
import yaml
from papermill.exceptions import PapermillExecutionError

from nblib import __version__
from nblib.errors import NblibError, NotebookError, ParameterError
from nblib.report import (
    METRICS_KEYS,
    RUN_DIR_ENV,
    git_commit,
    to_jsonable,
    utc_now_iso,
    write_json_atomic,
    write_text_atomic,
)

__all__ = [
    "check_parameters",
    "load_param_file",
    "notebook_parameters",
    "parse_cli_value",
    "run_all",
    "run_notebook",
]

# Type name reported for a default that is not a Python literal (e.g. `Path("x")`);
# such parameters accept any override since their type cannot be known statically.
EXPRESSION = "expression"

_SIMPLE_TYPES = ("int", "float", "bool", "str", "list", "tuple", "dict")

# Key metrics shown per notebook in the index.
_INDEX_MAX_METRICS = 6


# --------------------------------------------------------------------------- params


def _parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """The first cell tagged ``parameters`` (papermill injects after that one)."""
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def notebook_parameters(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The parameters declared in a notebook's ``parameters`` cell.

    Returns:
        ``{name: {"type": str, "default": object, "help": str}}`` in cell order.
        ``default`` is the evaluated literal (``ast.literal_eval``); ``type`` is the
        default's Python type name (``"int"``, ``"float"``, ``"bool"``, ``"str"``,
        ``"list"``, ``"tuple"``, ``"dict"``, ``"None"``), or the annotation when the
        line has a simple one (``x: float = 1``). A default that is not a literal
        (``root = Path("data")``) gets type ``"expression"`` and its source text as
        ``default``. ``help`` is the trailing ``# comment``.

    Raises:
        NotebookError: the file does not exist or is not a notebook.
        ParameterError: the notebook has no cell tagged ``parameters``.
    """
    path = Path(path)
    if not path.is_file():
        raise NotebookError(f"notebook not found: {path}")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types on bad JSON
        raise NotebookError(f"{path} is not a readable notebook: {exc}") from exc
    cell = _parameters_cell(nb)
    if cell is None:
        raise ParameterError(
            f"{path} has no cell tagged 'parameters'; add the tag to the cell that "
            "defines the notebook's parameters (View > Cell Toolbar > Tags)"
        )

    return parse_parameters_source(cell.source, str(path))


def parse_parameters_source(
    source: str, where: str = "<parameters cell>"
) -> dict[str, dict[str, Any]]:
    """Parse a parameters cell with ``ast`` (papermill's own line parser silently skips
    lines it cannot read, e.g. a comment containing ``=``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(f"{where}: the parameters cell is not valid Python ({exc})") from exc
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    spec: dict[str, dict[str, Any]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, annotation = node.targets[0], None
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, annotation = node.target, ast.get_source_segment(source, node.annotation)
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        value_source = ast.get_source_segment(source, node.value) or ""
        help_text = comments.get(node.end_lineno, "")
        try:
            default = ast.literal_eval(node.value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            spec[target.id] = {"type": EXPRESSION, "default": value_source, "help": help_text}
            continue
        type_name = "None" if default is None else type(default).__name__
        if default is not None and annotation in _SIMPLE_TYPES:
            type_name = annotation
        spec[target.id] = {"type": type_name, "default": default, "help": help_text}
    return spec


def _accepts(type_name: str, value: Any) -> bool:
    """Whether ``value`` is acceptable for a parameter whose type is ``type_name``."""
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)  # bool is an int
    if type_name == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "str":
        return isinstance(value, str)
    if type_name in ("list", "tuple"):
        return isinstance(value, (list, tuple))
    if type_name == "dict":
        return isinstance(value, dict)
    # "None" defaults ("optional, unset") and expressions: no static type to check.
    return True


def check_parameters(path: str | os.PathLike[str], params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``params`` against the notebook's parameters cell; return merged params.

    Rules (type = the default's Python type): int accepts int but not bool; float
    accepts int or float (ints are converted to float); bool only bool; str only str;
    list/tuple accept list or tuple; dict only dict; a ``None`` or non-literal default
    accepts anything.

    Returns:
        ``{name: value}`` for every declared parameter in cell order: the default,
        overridden by ``params``.

    Raises:
        ParameterError: unknown name (lists the known ones) or wrong type (names the
            parameter, the expected type and the value given).
    """
    path = Path(path)
    spec = notebook_parameters(path)
    unknown = [name for name in params if name not in spec]
    if unknown:
        known = ", ".join(spec) or "(none)"
        raise ParameterError(
            f"{path.name}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
            f"known parameters: {known}"
        )
    merged = {name: info["default"] for name, info in spec.items()}
    for name, value in params.items():
        expected = spec[name]["type"]
        if not _accepts(expected, value):
            raise ParameterError(
                f"{path.name}: parameter {name!r} expects {expected}, "
                f"got {value!r} ({type(value).__name__})"
            )
        if expected == "float" and isinstance(value, int):
            value = float(value)  # so the injected cell reads `lr = 1.0`, as a float
        merged[name] = value
    return merged


# PyYAML implements YAML 1.1, whose implicit typing surprises on a command line:
# `3e-4` stays a string (floats need a dot), `no`/`on` become booleans, `010` is
# octal 8 and `2024-01-01` a date (not JSON-able). This loader uses YAML 1.2 core
# rules instead: true/false only, decimal/0o/0x ints, floats with a dot and/or an
# exponent, and no timestamps.
class _ParamLoader(yaml.SafeLoader):
    """Safe YAML loader with YAML 1.2 core-schema scalars (see comment above)."""


_REPLACED_TAGS = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
}
_ParamLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ParamLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
# Registered before floats: resolvers are tried in order, and ints must win for "3".
_ParamLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_ParamLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    # PyYAML's own constructor would read "010" as octal (YAML 1.1).
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


_ParamLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def parse_cli_value(text: str) -> Any:
    """Turn a command-line ``-p NAME VALUE`` string into a Python value via YAML.

    ``"3"`` -> 3, ``"3e-4"`` -> 0.0003, ``"true"`` -> True, ``"null"`` -> None,
    ``"[reach, push]"`` -> ``["reach", "push"]``, ``"{a: 1}"`` -> ``{"a": 1}``,
    ``"abc"`` -> ``"abc"``. Empty text and text that is not valid YAML (e.g.
    ``"a: b: c"``) are returned unchanged as strings. ``no``/``on`` and dates stay
    strings (YAML 1.2 rules, see ``_ParamLoader``).
    """
    if not text.strip():
        return text
    try:
        # yaml.load is safe here: _ParamLoader is a SafeLoader subclass.
        return yaml.load(text, Loader=_ParamLoader)
    except yaml.YAMLError:
        return text


def load_param_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML parameter file: a mapping ``{parameter name: value}``.

    Uses the same scalar rules as :func:`parse_cli_value` (``lr: 3e-4`` is a float).
    An empty file gives ``{}``.

    Raises:
        ParameterError: missing file, invalid YAML, not a mapping, or non-string keys
            (the message names the file).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParameterError(f"cannot read parameter file {path}: {exc}") from exc
    try:
        data = yaml.load(text, Loader=_ParamLoader)  # SafeLoader subclass: no code execution
    except yaml.YAMLError as exc:
        raise ParameterError(f"parameter file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(
            f"parameter file {path} must hold a mapping like 'lr: 0.001', "
            f"got a {type(data).__name__}"
        )
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ParameterError(f"parameter file {path}: names must be strings, got {bad!r}")
    return data


# --------------------------------------------------------------------------- running


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


def run_notebook(
    notebook: str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    kernel_name: str = "python3",
    progress: bool = True,
    cwd: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Execute one notebook with papermill and write its ``metrics.json``.

    Args:
        notebook: path to the ``.ipynb``.
        params: parameter overrides, checked by :func:`check_parameters` before any
            kernel starts.
        out_dir: run folder; default ``runs/<stem>`` (relative to the current
            directory). Receives the executed copy ``<name>.ipynb``, the notebook's
            figures, ``report.json`` and ``metrics.json``.
        kernel_name: Jupyter kernel to run (``python3`` = the current environment).
        progress: show papermill's progress bar and status lines (on stderr).
        cwd: working directory of the kernel; default the notebook's folder.

    Returns:
        the metrics.json dict (keys :data:`nblib.report.METRICS_KEYS`).

    Raises:
        ParameterError: unknown/mistyped parameter or no parameters cell (nothing runs).
        NotebookError: a cell raised (metrics.json has verdict ``"ERROR"`` and the
            executed copy keeps the error), the kernel failed, or the notebook did
            not end with ``nblib.report.finish(...)``.
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
    # A stale report/metrics from an earlier run must not be mistaken for this one's.
    for stale in ("report.json", "metrics.json"):
        (out / stale).unlink(missing_ok=True)
    # Figures of an earlier run with other parameters would otherwise be listed beside
    # this run's; the run folder's figures/ belongs to the runner.
    shutil.rmtree(out / "figures", ignore_errors=True)

    record: dict[str, Any] = {
        "notebook": nb_path.name,
        "params": _params_record(merged),
        "verdict": "ERROR",
        "metrics": {},
        "figures": [],
        "nblib_version": __version__,
        "git_commit": git_commit(nb_path.resolve().parent),
        "started": utc_now_iso(),
        "seconds": None,
    }
    _status(progress, f"running {nb_path.name} -> {executed}")

    previous = os.environ.get(RUN_DIR_ENV)
    # The kernel is a child process and inherits os.environ at launch; this is how the
    # notebook's nblib.report finds the run folder without a parameter.
    os.environ[RUN_DIR_ENV] = str(out)
    t0 = time.perf_counter()
    failure: Exception | None = None
    try:
        papermill.execute_notebook(
            str(nb_path),
            str(executed),
            parameters=overrides,
            kernel_name=kernel_name,
            progress_bar=progress,
            cwd=str(cwd if cwd is not None else nb_path.resolve().parent),
        )
    except PapermillExecutionError as exc:
        failure = exc
        record["metrics"] = {"error": f"{exc.ename}: {exc.evalue}"}
    except Exception as exc:  # kernel died, timeout, missing kernel, ...
        failure = exc
        record["metrics"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        record["seconds"] = round(time.perf_counter() - t0, 3)
        if previous is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = previous

    message: str | None = None
    if failure is not None:
        message = (
            f"{nb_path.name} failed: {record['metrics']['error']}\n"
            f"The executed copy with the error cell is {executed}"
        )
    else:
        report_path = out / "report.json"
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
            record["verdict"] = str(report["verdict"])
            record["metrics"] = report["metrics"]
            record["figures"] = list(report.get("figures", []))
        except FileNotFoundError:
            message = (
                f"{nb_path.name} ran but wrote no report: the notebook must end with "
                f"`nblib.report.finish(...)`. Executed copy: {executed}"
            )
            record["metrics"] = {"error": "notebook did not call nblib.report.finish(...)"}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            message = f"{nb_path.name}: unreadable {report_path}: {exc}"
            record["metrics"] = {"error": f"bad report.json: {exc}"}

    # metrics.json is written last, also on failure, so "metrics.json exists" means
    # "this run is over" and the index can always show a row.
    write_json_atomic(out / "metrics.json", {key: record[key] for key in METRICS_KEYS})
    _status(progress, f"{nb_path.name}: {record['verdict']} in {record['seconds']:.1f} s")
    if message is not None:
        raise NotebookError(message) from failure
    return record


def run_all(
    notebooks_dir: str | os.PathLike[str] = "notebooks",
    out_dir: str | os.PathLike[str] = "runs",
    kernel_name: str = "python3",
    progress: bool = True,
) -> Path:
    """Run every ``*.ipynb`` in ``notebooks_dir`` with defaults; write an index.

    Each notebook runs into ``out_dir/<stem>/`` (sorted by name; checkpoints
    skipped). A failing notebook does not stop the others. Afterwards
    ``out_dir/index.md`` and ``out_dir/index.html`` list every notebook with its
    verdict, wall time, key metrics, figure links and executed copy.

    Returns:
        path of ``index.md``.

    Raises:
        NotebookError: after the index is written, if any notebook failed (names them).
    """
    src = Path(notebooks_dir)
    out = Path(out_dir)
    if not src.is_dir():
        raise NotebookError(f"notebook folder not found: {src}")
    notebooks = sorted(
        p for p in src.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and p.is_file()
    )
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    for nb_path in notebooks:
        run_folder = out / nb_path.stem
        # run_notebook removes a stale metrics.json only once the parameters check
        # passed; the index must never show an old run's result for this one.
        (run_folder / "metrics.json").unlink(missing_ok=True)
        error: str | None = None
        try:
            run_notebook(nb_path, out_dir=run_folder, kernel_name=kernel_name, progress=progress)
        except NblibError as exc:
            failed.append(nb_path.name)
            error = str(exc).splitlines()[0]
            _status(progress, f"{nb_path.name}: FAILED ({error})")
        rows.append(_index_row(nb_path, run_folder, error))

    index_md = out / "index.md"
    write_text_atomic(index_md, _render_markdown(rows))
    write_text_atomic(out / "index.html", _render_html(rows))
    _status(progress, f"index: {index_md}")
    if failed:
        raise NotebookError(
            f"{len(failed)} of {len(notebooks)} notebook(s) failed: {', '.join(failed)}; "
            f"see {index_md}"
        )
    return index_md


# --------------------------------------------------------------------------- index


def _format_value(value: Any) -> str:
    """4 significant digits for floats; ints exact unless huge."""
    if isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, int):
        return str(value) if abs(value) < 10**6 else f"{value:.4g}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _index_row(nb_path: Path, run_folder: Path, error: str | None) -> dict[str, Any]:
    """One index row from the run's metrics.json (or the error if it never got written)."""
    row: dict[str, Any] = {
        "notebook": nb_path.name,
        "verdict": "ERROR",
        "seconds": None,
        "metrics": [],
        "figures": [],
        "executed": None,
    }
    metrics_path = run_folder / "metrics.json"
    try:
        data = json.loads(metrics_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict):
        row["verdict"] = str(data.get("verdict", "ERROR"))
        row["seconds"] = data.get("seconds")
        metrics = data.get("metrics") or {}
        scalars = [
            (k, v)
            for k, v in metrics.items()
            # Numbers, flags and short labels; long strings (paths, logs) would swamp
            # the table and are in metrics.json anyway.
            if isinstance(v, (int, float, bool)) or (isinstance(v, str) and len(v) <= 40)
        ]
        row["metrics"] = [(k, _format_value(v)) for k, v in scalars[:_INDEX_MAX_METRICS]]
        # Links are relative to the index (in out_dir), so the folder can be moved.
        row["figures"] = [
            f"{run_folder.name}/{f}" for f in data.get("figures", []) if str(f).endswith(".png")
        ]
    elif error is not None:
        row["metrics"] = [("error", error)]
    if (run_folder / nb_path.name).is_file():
        row["executed"] = f"{run_folder.name}/{nb_path.name}"
    return row


def _md_escape(text: str) -> str:
    # A pipe would end the table cell; newlines would end the row.
    return text.replace("|", "\\|").replace("\n", " ")


def _render_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# nblib run index",
        "",
        f"Generated {utc_now_iso()} by nblib {__version__}.",
        "",
        "| Notebook | Verdict | Seconds | Key metrics | Figures | Executed notebook |",
        "|---|---|---:|---|---|---|",
    ]
    for row in rows:
        seconds = f"{row['seconds']:.1f}" if isinstance(row["seconds"], (int, float)) else ""
        metrics = ", ".join(f"{k}={v}" for k, v in row["metrics"])
        figures = " ".join(f"[{Path(f).stem}]({quote(f)})" for f in row["figures"])
        executed = f"[{row['notebook']}]({quote(row['executed'])})" if row["executed"] else ""
        cells = [row["notebook"], row["verdict"], seconds, metrics, figures, executed]
        lines.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


_HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.PASS { color: #009E73; font-weight: bold; }
.FAIL, .ERROR { color: #D55E00; font-weight: bold; }
"""


def _render_html(rows: list[dict[str, Any]]) -> str:
    esc = html.escape
    body = []
    for row in rows:
        seconds = f"{row['seconds']:.1f}" if isinstance(row["seconds"], (int, float)) else ""
        metrics = "<br>".join(f"{esc(k)} = {esc(v)}" for k, v in row["metrics"])
        figures = "<br>".join(
            f'<a href="{esc(quote(f))}">{esc(Path(f).stem)}</a>' for f in row["figures"]
        )
        executed = (
            f'<a href="{esc(quote(row["executed"]))}">{esc(row["notebook"])}</a>'
            if row["executed"]
            else ""
        )
        # The verdict doubles as a CSS class; keep only safe characters for it.
        css = re.sub(r"[^A-Za-z0-9_-]", "", row["verdict"])
        body.append(
            f"<tr><td>{esc(row['notebook'])}</td>"
            f'<td class="{css}">{esc(row["verdict"])}</td>'
            f'<td class="num">{seconds}</td><td>{metrics}</td>'
            f"<td>{figures}</td><td>{executed}</td></tr>"
        )
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>nblib run index</title>\n<style>{_HTML_STYLE}</style>\n</head>\n<body>\n"
        "<h1>nblib run index</h1>\n"
        f"<p>Generated {esc(utc_now_iso())} by nblib {esc(__version__)}.</p>\n"
        "<table>\n<tr><th>Notebook</th><th>Verdict</th><th>Seconds</th>"
        "<th>Key metrics</th><th>Figures</th><th>Executed notebook</th></tr>\n"
        + "\n".join(body)
        + "\n</table>\n</body>\n</html>\n"
    )
