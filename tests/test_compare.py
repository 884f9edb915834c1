"""nblib compare: two runs or two batches side by side, exit 1 when a verdict changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nblib.cli import main
from nblib.errors import DataError
from nblib.run.compare import compare, load_runs


def _run(folder: Path, verdict: str, **metrics) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"notebook": "x.ipynb", "params": {}, "verdict": verdict, "metrics": metrics}
    (folder / "metrics.json").write_text(json.dumps(record))
    return folder


def test_two_batches_pair_runs_by_name_and_flag_changes(tmp_path):
    for side, (verdict, loss) in {"a": ("PASS", 0.100), "b": ("PASS", 0.103)}.items():
        _run(tmp_path / side / "r1", verdict, loss=loss, head="flow", curve=[1, 2])
    _run(tmp_path / "a" / "r2", "PASS", loss=0.2, rate=50.0)
    _run(tmp_path / "b" / "r2", "FAIL", loss=0.4, rate=50.0, new=1)
    _run(tmp_path / "a" / "gone", "PASS")
    _run(tmp_path / "b" / "added", "PASS")
    result = compare(tmp_path / "a", tmp_path / "b", rtol=0.05)
    assert [(v["run"], v["changed"]) for v in result.verdicts] == [("r1", False), ("r2", True)]
    beyond = {(m["run"], m["metric"]) for m in result.metrics if m["beyond"]}
    assert beyond == {("r2", "loss"), ("r2", "new")}  # 3 % on r1 is inside 5 %; lists skipped
    loss = next(m for m in result.metrics if (m["run"], m["metric"]) == ("r2", "loss"))
    assert loss["change"] == pytest.approx(1.0)
    assert result.only_a == ["gone"] and result.only_b == ["added"]
    assert result.verdict_changed
    tight = compare(tmp_path / "a", tmp_path / "b", rtol=0.01)
    assert ("r1", "loss") in {(m["run"], m["metric"]) for m in tight.metrics if m["beyond"]}


def test_cli_exit_status_follows_the_verdicts(tmp_path, capsys):
    a = _run(tmp_path / "today" / "01_overfit_diagnosis", "PASS", mae=0.17)
    b = _run(tmp_path / "yesterday" / "01_overfit_diagnosis", "PASS", mae=0.30)
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "metrics beyond rtol=0.05: 1 of 1" in out and "mae" in out
    _run(b, "FAIL", mae=0.9)
    assert main(["compare", str(a), str(b)]) == 1
    assert "verdict changed: 01_overfit_diagnosis" in capsys.readouterr().out


def test_bad_folders_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="not a run or batch folder"):
        load_runs(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no metrics.json"):
        load_runs(tmp_path / "empty")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "metrics.json").write_text("{}")
    with pytest.raises(DataError, match="no verdict"):
        load_runs(tmp_path / "odd")
