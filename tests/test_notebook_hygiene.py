"""Committed notebooks are clean, parameterised, and parseable by papermill."""

import json
from pathlib import Path

import nbformat
import pytest

from nblib.run.hygiene import CHECK_MARK, clean, hygiene_problems

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    assert hygiene_problems(path) == []


def _dirty_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# what it answers"),
        nbformat.v4.new_code_cell(
            "interactive = False  # widgets in JupyterLab", metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell(f"{CHECK_MARK}\nprint(1)"),
        nbformat.v4.new_code_cell("plot()\nreport.finish('x', 'PASS', {})"),
    ]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[3].outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": "AAAA", "text/plain": "<Figure>"})
    ]
    nb.cells[3].execution_count = 3
    nb.metadata["widgets"] = {"state": {}}
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    path = tmp_path / "dirty.ipynb"
    nbformat.write(nb, path)
    return path


def test_hygiene_catches_images_counts_and_widget_state(tmp_path):
    problems = "\n".join(hygiene_problems(_dirty_notebook(tmp_path)))
    assert "rich output (image/png" in problems
    assert "execution count" in problems
    assert "not marked" in problems
    assert "widget state" in problems


def test_clean_keeps_only_checked_text_outputs(tmp_path):
    path = _dirty_notebook(tmp_path)
    nb = nbformat.read(path, as_version=4)
    clean(nb)
    nbformat.write(nb, path)
    assert hygiene_problems(path) == []
    cells = json.loads(path.read_text())["cells"]
    assert "".join(cells[2]["outputs"][0]["text"]) == "1\n"
    assert cells[2]["execution_count"] == 1  # nbval ignores outputs of "unrun" cells
    assert cells[3]["outputs"] == [] and cells[3]["execution_count"] is None


def test_hygiene_catches_a_parameter_papermill_cannot_parse(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# q"),
        nbformat.v4.new_code_cell(
            "interactive = False  # widgets\ncamera = None  # None = the first camera",
            metadata={"tags": ["parameters"]},
        ),
        nbformat.v4.new_code_cell("report.finish('x', 'PASS', {})"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    path = tmp_path / "p.ipynb"
    nbformat.write(nb, path)
    assert any("papermill cannot parse parameters ['camera']" in p for p in hygiene_problems(path))
