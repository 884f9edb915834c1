"""The paper standards every saved figure is held to (nblib.plots.layout_problems,
show_number, the per-kind palettes) and how report.save / finish enforce them: captions in
metrics.json and the figure exports, a figure that disagrees with metrics.json refused."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest

from nblib import plots
from nblib.errors import NotebookError, ParameterError
from nblib.run import report
from nblib.verdict import Verdict

matplotlib.use("Agg")


def _clean_figure():
    fig, ax = plots.new_figure()
    ax.plot([0, 1, 2], [0, 1, 4])
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    return fig, ax


def test_a_clean_figure_has_no_layout_problems() -> None:
    fig, _ = _clean_figure()
    assert plots.layout_problems(fig) == []
    fig2, _ = plots.new_figure(ncols=2, width=plots.DOUBLE_COLUMN_IN, height=2.0)
    assert plots.layout_problems(fig2) == []
    plt.close("all")


def test_layout_problems_names_each_fault() -> None:
    fig, ax = _clean_figure()
    fig.text(0.9, 0.5, "this annotation runs far past the right edge")
    ax.set_title("tiny title", fontsize=5)
    problems = plots.layout_problems(fig)
    assert any("'tiny title' is 5.0 pt, under 6 pt" in p for p in problems), problems
    assert any("'this annotation runs far past" in p and "outside" in p for p in problems)
    assert not any("step" in p or "loss" in p for p in problems)  # fine labels not named

    odd, _ = plots.new_figure(width=5.0, height=9.5)
    problems = plots.layout_problems(odd)
    assert any("width 5.00 in" in p for p in problems)
    assert any("height 9.50 in is over 9.0 in" in p for p in problems)
    plt.close("all")


def test_tick_labels_outside_the_view_are_not_checked() -> None:
    # Tick Text objects beyond the view limits exist but are never drawn; only drawn
    # text may count as outside the canvas.
    fig, ax = _clean_figure()
    ax.set_xticks(range(-50, 50))
    ax.set_xlim(0, 2)
    assert plots.layout_problems(fig) == []
    plt.close(fig)


def test_palettes_are_separate_per_kind_and_fixed_names_keep_colours() -> None:
    assert plots.color_for("push", "task") == plots.color_for("push")
    assert plots.color_for("corner") == plots.color_for("corner", "camera")
    for kind, palette in plots.PALETTES.items():
        assert len(set(palette)) == len(palette), kind
    # a camera and a task never share a colour, nor an action dimension and a run
    assert not set(plots.PALETTES["camera"][:2]) & set(plots.PALETTES["task"])
    assert not set(plots.PALETTES["dim"]) & set(plots.PALETTES["run"])
    runs = plots.colors_for(["baseline", "ours", "ours+aug", "flow"], kind="run")
    assert set(runs.values()) <= set(plots.PALETTES["run"]) and len(set(runs.values())) == 4
    assert runs["flow"] == plots.color_for("flow", "run")
    dims = plots.colors_for(["x", "y", "z", "gripper"], kind="dim")
    assert len(set(dims.values())) == 4 and set(dims.values()) <= set(plots.PALETTES["dim"])
    with pytest.raises(ValueError, match="colour kind"):
        plots.color_for("x", "colour")


def _interactive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(report.RUN_DIR_ENV, raising=False)
    monkeypatch.delenv(report.STRICT_FIGURES_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def test_captions_reach_metrics_and_the_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _interactive(tmp_path, monkeypatch)
    fig, ax = _clean_figure()
    plots.show_number(ax, ("per_dim", "x"), 0.25)
    report.save(fig, "errors_by_dim", "capnb", caption="MAE/std per dimension; 0.1 & 50% marked.")
    record = report.finish("capnb", Verdict("PASS", ["ok"], {"mae": 0.1}), {"per_dim": {"x": 0.25}})
    assert record["captions"] == {"errors_by_dim": "MAE/std per dimension; 0.1 & 50% marked."}
    run = tmp_path / "runs" / "capnb"
    assert json.loads((run / "metrics.json").read_text())["captions"] == record["captions"]
    md = (run / "figures.md").read_text()
    assert "errors_by_dim.png" in md and "*MAE/std per dimension; 0.1 & 50% marked.*" in md
    tex = (run / "figures.tex").read_text()
    assert "errors_by_dim.pdf" in tex
    assert r"\caption{MAE/std per dimension; 0.1 \& 50\% marked.}" in tex
    plt.close("all")


def test_finish_refuses_a_figure_that_disagrees_with_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _interactive(tmp_path, monkeypatch)
    fig, ax = _clean_figure()
    plots.show_number(ax, ("totals", "run A", "weighted"), 81.0)
    report.save(fig, "perturbations", "disagree", caption="Totals per run.")
    with pytest.raises(ParameterError, match=r"'perturbations'.*81\.0.*'totals'.*'run A'.*85\.7"):
        report.finish("disagree", Verdict("X"), {"totals": {"run A": {"weighted": 85.7}}})
    with pytest.raises(ParameterError, match="does not have"):
        report.finish("disagree", Verdict("X"), {"totals": {}})
    report.finish("disagree", Verdict("X"), {"totals": {"run A": {"weighted": 81.0}}})
    plt.close("all")


def test_save_warns_without_caption_and_strict_mode_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _interactive(tmp_path, monkeypatch)
    fig, ax = _clean_figure()
    with pytest.warns(report.FigureWarning, match="no caption"):
        report.save(fig, "plain", "strictnb")
    ax.set_title("small", fontsize=4)
    monkeypatch.setenv(report.STRICT_FIGURES_ENV, "1")
    with pytest.raises(NotebookError, match=r"'plain' of strictnb: text 'small' is 4\.0 pt"):
        report.save(fig, "plain", "strictnb", caption="A caption.")
    plt.close("all")
