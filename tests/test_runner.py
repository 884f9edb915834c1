"""Tests for nblib.run.runner, nblib.run.params and nblib.run.report.

Kernel executions are expensive (~3-5 s each), so the suite runs exactly six: two
through one shared ``run_all`` (a passing and a raising notebook, side by side in two
worker processes), one through a ``run_all`` one notebook at a time, and three direct
``run_notebook`` calls. Everything else is checked without a kernel.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import nbformat
import numpy as np
import pytest

from nblib.errors import NotebookError, ParameterError
from nblib.run import params as run_params
from nblib.run import report, runner
from nblib.verdict import Verdict

REPO = Path(__file__).resolve().parents[1]

# metrics.json's keys, spelled out here so that a change to the contract fails a test.
CONTRACT_KEYS = set(
    "notebook params verdict metrics figures captions nblib_version git_commit started seconds".split()
)

PARAMS_SOURCE = """\
n = 3  # comment
lr = 1e-3  # learning rate
name = "x"
flag = False
tasks = ["a"]
"""

TINY_BODY = """\
import os
import sys

from nblib import plots
from nblib.run import report
from nblib.verdict import Verdict

fig, ax = plots.new_figure()
ax.plot([0, 1], [0, n])
report.save(fig, "line", "tiny", caption="A line of slope n.")
"""

TINY_FINISH = """\
report.finish(
    "tiny",
    Verdict("PASS" if n > 2 else "FAIL", ["n > 2" if n > 2 else "n <= 2"], {"n": n}),
    metrics={
        "n": n,
        "lr": lr,
        "lr_type": type(lr).__name__,
        "prefix": sys.prefix,
        "cwd": os.getcwd(),
        "tasks": tasks,
    },
    params=None,
)
"""


def _write_notebook(
    path: Path, params_source: str | None, *cells: str, kernelspec: bool = True
) -> Path:
    """Write a small notebook: optional tagged parameters cell, then code cells."""
    nb = nbformat.v4.new_notebook()
    if kernelspec:
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
    if params_source is not None:
        nb.cells.append(nbformat.v4.new_code_cell(params_source, metadata={"tags": ["parameters"]}))
    nb.cells.extend(nbformat.v4.new_code_cell(src) for src in cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _tiny(folder: Path) -> Path:
    return _write_notebook(folder / "tiny.ipynb", PARAMS_SOURCE, TINY_BODY, TINY_FINISH)


def _boom(folder: Path) -> Path:
    return _write_notebook(
        folder / "boom.ipynb",
        "n = 1\n",
        'raise ValueError(f"boom {n}")',
        "from nblib.run import report\nfrom nblib.verdict import Verdict\n"
        'report.finish("boom", Verdict("PASS"), metrics={})',
    )


@pytest.fixture(scope="module")
def kernel_env() -> Iterator[None]:
    """Make the uninstalled package importable in the kernel (it inherits os.environ)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(REPO))
        mp.delenv(report.RUN_DIR_ENV, raising=False)
        mp.setenv("MPLBACKEND", "Agg")  # no display in CI; the inline backend is not needed
        yield


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory, kernel_env: None) -> dict[str, Any]:
    """One run_all over a passing and a raising notebook, shared by several tests."""
    root = tmp_path_factory.mktemp("suite")
    notebooks = root / "notebooks"
    _tiny(notebooks)
    _boom(notebooks)
    # A checkpoint copy must be skipped.
    _boom(notebooks / ".ipynb_checkpoints")
    runs = root / "runs"
    with pytest.raises(NotebookError) as excinfo:
        runner.run_all(notebooks, runs, progress=False, workers=2)
    return {"root": root, "notebooks": notebooks, "runs": runs, "error": excinfo.value}


# ----------------------------------------------------------------- executed runs


def test_run_all_index_lists_pass_and_failure(suite: dict[str, Any]) -> None:
    runs: Path = suite["runs"]
    message = str(suite["error"])
    assert "boom.ipynb" in message and "tiny.ipynb" not in message
    assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == ["boom", "tiny"]

    md = (runs / "index.md").read_text()
    tiny_row = next(line for line in md.splitlines() if line.startswith("| tiny.ipynb"))
    boom_row = next(line for line in md.splitlines() if line.startswith("| boom.ipynb"))
    assert "| PASS |" in tiny_row and "n=3" in tiny_row and "lr=0.001" in tiny_row
    assert "(tiny/figures/line.png)" in tiny_row and "(tiny/tiny.ipynb)" in tiny_row
    assert "| ERROR |" in boom_row and "ValueError: boom 1" in boom_row
    assert "(boom/boom.ipynb)" in boom_row

    page = (runs / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert 'href="tiny/figures/line.png"' in page and 'href="boom/boom.ipynb"' in page
    assert "ValueError: boom 1" in page
    assert "http" not in page  # self-contained: no external assets


def test_metrics_json_contract(suite: dict[str, Any]) -> None:
    run = suite["runs"] / "tiny"
    data = json.loads((run / "metrics.json").read_text())
    assert set(data) == CONTRACT_KEYS
    assert data["notebook"] == "tiny.ipynb"
    assert data["verdict"] == "PASS"
    assert data["params"] == {"n": 3, "lr": 0.001, "name": "x", "flag": False, "tasks": ["a"]}
    assert data["metrics"]["n"] == 3 and data["metrics"]["tasks"] == ["a"]
    assert list(data["metrics"])[0] == "n"  # the verdict's numbers come first
    assert data["metrics"]["reasons"] == ["n > 2"]
    # The "python3" kernel is this venv's interpreter, not some system Python.
    assert data["metrics"]["prefix"] == sys.prefix
    # Default kernel cwd is the notebook's folder.
    assert Path(data["metrics"]["cwd"]).resolve() == suite["notebooks"].resolve()
    assert data["figures"] == ["figures/line.pdf", "figures/line.png"]
    assert all((run / f).is_file() for f in data["figures"])
    assert data["nblib_version"] == __import__("nblib").__version__
    assert data["git_commit"] is None or len(data["git_commit"]) == 40
    started = dt.datetime.fromisoformat(data["started"])
    assert started.utcoffset() == dt.timedelta(0)
    assert isinstance(data["seconds"], float) and data["seconds"] > 0
    assert (run / "tiny.ipynb").is_file()
    # The runner's hand-over file and the kernel's log are gone after a good run.
    assert sorted(p.name for p in run.iterdir()) == [
        "figures",
        "figures.md",
        "figures.tex",
        "metrics.json",
        "tiny.ipynb",
    ]
    assert data["captions"] == {"line": "A line of slope n."}


def test_failed_notebook_in_run_all_keeps_error(suite: dict[str, Any]) -> None:
    run = suite["runs"] / "boom"
    data = json.loads((run / "metrics.json").read_text())
    assert set(data) == CONTRACT_KEYS
    assert data["verdict"] == "ERROR"
    assert data["metrics"] == {"error": "ValueError: boom 1"}
    assert data["params"] == {"n": 1} and data["notebook"] == "boom.ipynb"
    # The kernel's own messages are kept for a failed run, out of the terminal.
    assert (run / runner.KERNEL_LOG).is_file()


def test_run_all_one_at_a_time_writes_the_same_index(tmp_path: Path, kernel_env: None) -> None:
    notebooks = tmp_path / "notebooks"
    _tiny(notebooks)
    index = runner.run_all(notebooks, tmp_path / "runs", progress=False, workers=1)
    row = next(line for line in index.read_text().splitlines() if line.startswith("| tiny"))
    assert "| PASS |" in row and "n=3" in row


def test_params_override_changes_verdict(tmp_path: Path, kernel_env: None) -> None:
    nb = _tiny(tmp_path / "nb")
    out = tmp_path / "out"
    result = runner.run_notebook(nb, {"n": 1, "lr": 1}, out_dir=out, progress=False, cwd=tmp_path)
    assert result["verdict"] == "FAIL"
    assert result["params"]["n"] == 1 and result["params"]["lr"] == 1.0
    assert result["metrics"]["lr_type"] == "float"  # int given for a float parameter
    assert Path(result["metrics"]["cwd"]).resolve() == tmp_path.resolve()
    assert json.loads((out / "metrics.json").read_text()) == result
    executed = nbformat.read(out / "tiny.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "n = 1" in injected[0].source


def test_run_output_is_progress_and_verdict_without_kernel_noise(
    tmp_path: Path, kernel_env: None, capfd: pytest.CaptureFixture[str]
) -> None:
    """The kernel's own log (transport warnings, shutdown messages) goes to a file that is
    kept only when the run fails; the terminal shows the run, its verdict and time."""
    out = tmp_path / "out"
    runner.run_notebook(_tiny(tmp_path / "nb"), out_dir=out, progress=True, cwd=tmp_path)
    err = capfd.readouterr().err
    assert "IPKernelApp" not in err and "WARNING" not in err
    assert f"[nblib] running tiny.ipynb -> {out}" in err
    assert "[nblib] tiny.ipynb: PASS in " in err
    assert not (out / runner.KERNEL_LOG).exists()


def test_cli_run_prints_verdict_and_reasons(
    tmp_path: Path, kernel_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from nblib.cli import main

    nb = _tiny(tmp_path / "nb")
    out = tmp_path / "out"
    assert main(["run", str(nb), "-p", "n", "1", "--out", str(out), "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tiny.ipynb: FAIL (") and lines[0].endswith(f"{out}/metrics.json")
    assert lines[1:] == ["- n <= 2"]


def test_raising_notebook_gives_notebook_error(
    tmp_path: Path, kernel_env: None, capfd: pytest.CaptureFixture[str]
) -> None:
    nb = _boom(tmp_path / "nb")
    out = tmp_path / "out"
    with pytest.raises(NotebookError) as excinfo:
        runner.run_notebook(nb, out_dir=out, progress=True, cwd=tmp_path)
    message = str(excinfo.value)
    assert "boom.ipynb" in message and str(out / "boom.ipynb") in message
    assert "ValueError: boom 1" in message
    # The user sees the failing cell's traceback, before any kernel transport warning.
    err = capfd.readouterr().err
    shown = err[err.index("boom.ipynb: ERROR after") :]
    assert "traceback, last lines:" in shown and "\x1b[" not in shown
    assert shown.index("ValueError: boom 1", shown.index("traceback")) < (
        shown.find("kernel log") if "kernel log" in shown else len(shown)
    )

    executed = nbformat.read(out / "boom.ipynb", as_version=4)
    errors = [
        o
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors and errors[0].ename == "ValueError" and errors[0].evalue == "boom 1"
    data = json.loads((out / "metrics.json").read_text())
    assert set(data) == CONTRACT_KEYS and data["verdict"] == "ERROR"
    assert data["metrics"] == {"error": "ValueError: boom 1"}


def test_notebook_without_finish_raises_and_stale_metrics_ignored(
    tmp_path: Path, kernel_env: None
) -> None:
    nb = _write_notebook(tmp_path / "nb" / "quiet.ipynb", "n = 1\n", "x = n + 1")
    out = tmp_path / "out"
    out.mkdir()
    # Leftovers from an earlier run in the same folder must not count as this run's.
    (out / "metrics.json").write_text("{}")
    with pytest.raises(NotebookError, match=r"nblib\.run\.report\.finish"):
        runner.run_notebook(nb, out_dir=out, progress=False, cwd=tmp_path)
    data = json.loads((out / "metrics.json").read_text())
    assert set(data) == CONTRACT_KEYS and data["verdict"] == "ERROR"
    assert not (out / report.RUN_CONTEXT).exists()


# ------------------------------------------------------------ no kernel needed


def test_run_all_starts_the_longest_expected_notebook_first(tmp_path: Path) -> None:
    nb = _tiny(tmp_path / "notebooks")
    folder = tmp_path / "runs" / "tiny"
    assert runner._expected_seconds(nb, folder) == 0.0  # never run, no hint
    doc = nbformat.read(nb, as_version=4)
    doc.metadata["nblib"] = {"seconds": 42}  # what `nblib clean --refresh` measured
    nbformat.write(doc, nb)
    assert runner._expected_seconds(nb, folder) == 42.0
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"seconds": 7.5}))
    assert runner._expected_seconds(nb, folder) == 7.5  # the last run here wins
    (folder / "metrics.json").write_text("{not json")
    assert runner._expected_seconds(nb, folder) == 42.0


def test_run_all_refuses_zero_workers(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="workers=0"):
        runner.run_all(tmp_path, tmp_path / "runs", workers=0)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"m": 1}, r"unknown parameter\(s\) 'm'.*known parameters: n, lr, name, flag, tasks"),
        ({"n": "3"}, r"'n' expects int, got '3' \(str\)"),
        ({"n": True}, r"'n' expects int, got True \(bool\)"),
        ({"flag": 1}, r"'flag' expects bool"),
        ({"name": 5}, r"'name' expects str"),
        ({"tasks": "a"}, r"'tasks' expects list"),
    ],
)
def test_bad_parameters_fail_before_execution(
    tmp_path: Path, params: dict[str, Any], match: str
) -> None:
    nb = _tiny(tmp_path / "nb")
    out = tmp_path / "out"
    with pytest.raises(ParameterError, match=match):
        runner.run_notebook(nb, params, out_dir=out, progress=False)
    assert not out.exists()  # nothing was created, so no kernel ran


def test_notebook_parameters_spec(tmp_path: Path) -> None:
    spec = run_params.notebook_parameters(_tiny(tmp_path))
    assert spec == {
        "n": {"type": "int", "default": 3, "help": "comment"},
        "lr": {"type": "float", "default": 0.001, "help": "learning rate"},
        "name": {"type": "str", "default": "x", "help": ""},
        "flag": {"type": "bool", "default": False, "help": ""},
        "tasks": {"type": "list", "default": ["a"], "help": ""},
    }


def test_notebook_parameters_special_cases(tmp_path: Path) -> None:
    source = 'root = Path("data")  # not a literal\nlimit = None\nscale: float = 1\n'
    # No kernelspec in the metadata: papermill cannot inspect it, nblib still can.
    nb = _write_notebook(tmp_path / "odd.ipynb", source, kernelspec=False)
    spec = run_params.notebook_parameters(nb)
    assert spec["root"] == {
        "type": "expression",
        "default": 'Path("data")',
        "help": "not a literal",
    }
    assert spec["limit"]["type"] == "None"
    assert spec["scale"]["type"] == "float"  # the annotation wins over the int default
    merged = run_params.check_parameters(nb, {"root": "/tmp", "limit": [1, 2], "scale": 2})
    assert merged == {"root": "/tmp", "limit": [1, 2], "scale": 2.0}


def test_missing_parameters_cell_names_file(tmp_path: Path) -> None:
    nb = _write_notebook(tmp_path / "plain.ipynb", None, "x = 1")
    with pytest.raises(ParameterError, match=r"plain\.ipynb"):
        run_params.notebook_parameters(nb)


def test_check_parameters_merges_and_accepts_compatible_types(tmp_path: Path) -> None:
    nb = _tiny(tmp_path)
    merged = run_params.check_parameters(nb, {"lr": 2, "tasks": ("b", "c"), "flag": True})
    assert merged == {"n": 3, "lr": 2.0, "name": "x", "flag": True, "tasks": ("b", "c")}
    assert isinstance(merged["lr"], float)
    assert run_params.check_parameters(nb, {})["n"] == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3),
        ("-7", -7),
        ("010", 10),
        ("1.5", 1.5),
        ("3e-4", 3e-4),
        ("-1E3", -1000.0),
        ("1.e-2", 0.01),
        ("true", True),
        ("False", False),
        ("null", None),
        ("abc", "abc"),
        ("no", "no"),
        ("on", "on"),
        ("2024-01-01", "2024-01-01"),
        ("[reach, push]", ["reach", "push"]),
        ("[1e-3, 2, x]", [0.001, 2, "x"]),
        ("{a: 1, b: [2e5]}", {"a": 1, "b": [200000.0]}),
        ('"3"', "3"),
        ("", ""),
        ("a: b: c", "a: b: c"),
    ],
)
def test_parse_cli_value(text: str, expected: Any) -> None:
    value = run_params.parse_cli_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_parse_cli_value_inf() -> None:
    assert run_params.parse_cli_value(".inf") == math.inf


def test_load_param_file(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("lr: 3e-4\ntasks: [reach, push]\nname: abc\n")
    assert run_params.load_param_file(good) == {
        "lr": 3e-4,
        "tasks": ["reach", "push"],
        "name": "abc",
    }
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert run_params.load_param_file(empty) == {}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ParameterError, match=r"bad\.yaml"):
        run_params.load_param_file(bad)
    with pytest.raises(ParameterError, match=r"missing\.yaml"):
        run_params.load_param_file(tmp_path / "missing.yaml")


# ------------------------------------------------------------------ report.py


def test_finish_interactive_writes_full_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(report.RUN_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # no repository root above tmp: runs/ under cwd
    from nblib import plots

    fig, ax = plots.new_figure()
    ax.plot([0, 1])
    saved = report.save(fig, "curve", "demo", caption="A curve.")
    matplotlib.pyplot.close(fig)
    # Interactively, figures go to figures/<notebook>/ (publication figures), metrics to runs/.
    assert saved[0] == tmp_path.resolve() / "figures" / "demo" / "curve.pdf"

    record = report.finish(
        "demo",
        Verdict("PASS", ["fine"], {"acc": np.float32(0.5)}),
        {"hist": np.arange(3), "k": np.int64(4)},
        params={"n": 3},
    )
    written = json.loads((tmp_path / "runs" / "demo" / "metrics.json").read_text())
    assert written == record
    assert set(written) == CONTRACT_KEYS
    assert written["notebook"] == "demo.ipynb" and written["seconds"] is None
    assert written["params"] == {"n": 3} and written["verdict"] == "PASS"
    assert written["metrics"] == {"acc": 0.5, "hist": [0, 1, 2], "k": 4, "reasons": ["fine"]}
    assert list(written["metrics"]) == ["acc", "hist", "k", "reasons"]
    assert written["figures"] == ["../../figures/demo/curve.pdf", "../../figures/demo/curve.png"]
    assert dt.datetime.fromisoformat(written["started"]).utcoffset() == dt.timedelta(0)


def test_finish_under_runner_records_the_runners_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    monkeypatch.setenv(report.RUN_DIR_ENV, str(run))
    assert report.run_dir("whatever") == run.resolve()
    with pytest.raises(NotebookError, match=r"run\.json"):  # the runner always leaves one
        report.finish("whatever", Verdict("WARN"), {})
    started = time.time() - 5.0
    context = {
        "notebook": "whatever.ipynb",
        "params": {"n": 7},
        "git_commit": None,
        "started": "2026-01-01T00:00:00.000+00:00",
        "started_epoch": started,
    }
    report.write_runner_context(run, context)
    figure = report.figure_dir("whatever") / "f.png"
    record = report.finish(
        "whatever", Verdict("WARN", ["why"]), {"x": 1}, figures=[figure], params={"n": 1}
    )
    assert json.loads((run / "metrics.json").read_text()) == record
    assert record["params"] == {"n": 7}  # the runner's checked parameters win
    assert record["started"] == context["started"] and 5.0 <= record["seconds"] < 60
    assert record["metrics"] == {"x": 1, "reasons": ["why"]}
    assert record["figures"] == ["figures/f.png"]


@pytest.mark.parametrize(
    ("metrics", "key"),
    [
        ({"loss": float("nan")}, "metrics['loss']"),
        ({"per_task": {"push": np.float64("inf")}}, "metrics['per_task']['push']"),
        ({"curve": np.array([0.1, np.nan])}, "metrics['curve'][1]"),
    ],
)
def test_finish_rejects_non_finite_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metrics: dict[str, Any], key: str
) -> None:
    monkeypatch.delenv(report.RUN_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParameterError) as excinfo:
        report.finish("nan", Verdict("PASS"), metrics)
    assert key in str(excinfo.value)
    assert not list(tmp_path.rglob("metrics.json"))


def test_finish_rejects_bad_verdict_and_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(report.RUN_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParameterError, match="Verdict"):
        report.finish("x", "PASS", {})  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="Verdict"):
        report.finish("x", None, {})  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="metrics"):
        report.finish("x", Verdict("PASS"), [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match=r"metrics\['obj'\].*object"):
        report.finish("x", Verdict("PASS"), {"obj": object()})
    with pytest.raises(ParameterError, match="contradicts"):
        report.finish("x", Verdict("PASS", [], {"acc": 0.9}), {"acc": 0.5})
    with pytest.raises(ParameterError, match="reserved"):
        report.finish("x", Verdict("PASS"), {"reasons": []})
    assert not list(tmp_path.rglob("metrics.json"))


def test_verdict_checks_its_parts_and_prints_its_reasons() -> None:
    verdict = Verdict("PARTIAL", ["one", "two"], {"r": 0.4})
    assert str(verdict) == "PARTIAL\n- one\n- two" and verdict.reasons == ("one", "two")
    assert str(Verdict("PASS")) == "PASS"
    for bad in (
        {"label": ""},
        {"label": "X", "reasons": "a sentence, not a list"},
        {"label": "X", "reasons": [1]},
        {"label": "X", "numbers": {1: 2}},
    ):
        with pytest.raises(ParameterError, match="Verdict"):
            Verdict(**bad)


def test_run_dir_default_is_repo_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(report.RUN_DIR_ENV, raising=False)
    repo = tmp_path / "repo"
    (repo / "nblib").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (repo / "notebooks").mkdir()
    monkeypatch.chdir(repo / "notebooks")
    assert report.run_dir("nb") == repo.resolve() / "runs" / "nb"
    assert (repo / "runs" / "nb").is_dir()
