"""Notebook hygiene: notebooks are committed clean.

Only the small text outputs of cells marked ``# NBVAL_CHECK_OUTPUT`` are stored (nbval
compares them on every test run); no images, HTML, widget state or execution counts.
:func:`refresh_notebook` re-executes a notebook with its defaults and stores exactly
those outputs; :func:`hygiene_problems` is what the tests enforce.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

import nbformat

from nblib.run.params import notebook_parameters

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
MAX_CHECKED_CHARS = 4000  # a checked output is a small summary, not a data dump
_RICH = ("image/", "text/html", "application/vnd.plotly", "application/vnd.jupyter.widget")


def _checked(cell) -> bool:
    return cell.cell_type == "code" and CHECK_MARK in cell.source


def _text_only(outputs: list) -> list:
    """Keep stdout streams and plain-text results; drop rich data and stderr."""
    kept = []
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            kept.append(out)
        elif out.get("output_type") in ("execute_result", "display_data"):
            text = out.get("data", {}).get("text/plain")
            if text is not None:
                out = nbformat.v4.new_output(out["output_type"], data={"text/plain": text})
                if out["output_type"] == "execute_result":
                    out["execution_count"] = None
                kept.append(out)
    return kept


def clean(nb) -> None:
    """Strip a notebook in place: outputs only in checked cells, no widget state.

    Checked cells keep an execution count (1, 2, ... in order): nbval refuses stored
    outputs of a cell that looks unrun.
    """
    count = 0
    for cell in nb.cells:
        if "id" not in cell:  # cells added by hand-edited JSON; nbformat 5.1+ wants ids
            cell["id"] = uuid.uuid4().hex[:8]
        if cell.cell_type != "code":
            continue
        cell.outputs = _text_only(cell.outputs) if _checked(cell) else []
        if cell.outputs:
            count += 1
        cell.execution_count = count if cell.outputs else None
        for key in ("execution", "papermill", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)
    for key in ("widgets", "papermill"):
        nb.metadata.pop(key, None)


def refresh_notebook(path: str | Path, kernel_name: str = "python3") -> Path:
    """Execute ``path`` with its defaults and store the checked cells' outputs in it."""
    import papermill

    from nblib.run.runner import logged_kernel_manager

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / path.name
        started = time.perf_counter()
        papermill.execute_notebook(
            str(path),
            str(executed),
            kernel_name=kernel_name,
            cwd=str(path.parent),
            progress_bar=False,
            kernel_manager_class=logged_kernel_manager(Path(tmp) / "kernel.log"),
        )
        seconds = time.perf_counter() - started
        ran = nbformat.read(executed, as_version=4)
    source = nbformat.read(path, as_version=4)
    by_source = {c.source: c.outputs for c in ran.cells if c.cell_type == "code"}
    for cell in source.cells:
        if _checked(cell):
            cell.outputs = by_source.get(cell.source, [])
    clean(source)
    # How long a run takes, so `nblib run-all` can start the longest notebooks first.
    source.metadata.setdefault("nblib", {})["seconds"] = round(seconds)
    nbformat.write(source, path)
    return path


def hygiene_problems(path: str | Path) -> list[str]:
    """Everything that keeps a committed notebook from being clean and runnable headless."""
    import papermill

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    problems = []
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        problems.append(
            f"{path.name}: the first cell must be markdown saying what the notebook answers"
        )
    params = notebook_parameters(path)  # raises if there is no parameters cell
    if "interactive" not in params or params["interactive"]["default"] is not False:
        problems.append(f"{path.name}: needs a parameter `interactive = False`")
    undocumented = [n for n, p in params.items() if not p["help"]]
    if undocumented:
        problems.append(f"{path.name}: parameters without a comment: {undocumented}")
    if not nb.metadata.get("kernelspec", {}).get("name"):
        problems.append(f"{path.name}: no kernelspec in its metadata (papermill needs one)")
        seen_by_papermill = set(params)
    else:
        seen_by_papermill = set(papermill.inspect_notebook(str(path)))
    if seen_by_papermill != set(params):
        problems.append(
            f"{path.name}: papermill cannot parse parameters {sorted(set(params) - seen_by_papermill)}"
            " (avoid '=' and quotes in their comments)"
        )
    if "report.finish(" not in "".join(c.source for c in nb.cells if c.cell_type == "code"):
        problems.append(f"{path.name}: no cell calls report.finish(...), so no metrics.json")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.execution_count is not None and not (_checked(cell) and cell.outputs):
            problems.append(f"{path.name}: cell {i} has an execution count")
        if cell.outputs and not _checked(cell):
            problems.append(f"{path.name}: cell {i} stores outputs but is not marked {CHECK_MARK}")
        for out in cell.outputs:
            kinds = list(out.get("data", {}))
            if any(k.startswith(_RICH) for k in kinds):
                problems.append(f"{path.name}: cell {i} stores a rich output ({', '.join(kinds)})")
            text = out.get("text", "") or out.get("data", {}).get("text/plain", "")
            if len("".join(text)) > MAX_CHECKED_CHARS:
                problems.append(
                    f"{path.name}: cell {i} stores more than {MAX_CHECKED_CHARS} characters"
                )
        if _checked(cell) and not cell.outputs:
            problems.append(
                f"{path.name}: cell {i} is marked {CHECK_MARK} but stores no output (run `nblib clean --refresh`)"
            )
    if "widgets" in nb.metadata:
        problems.append(f"{path.name}: stores widget state in its metadata")
    return problems
