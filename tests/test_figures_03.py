"""Notebook 03's figures at paper size, from their plot functions, on inputs built in
place (no training): they fit a paper (``layout_problems``), every number they show is
the number metrics.json records, and the known answers behind the fixed contradictions
(smoothing of sparse logs, where a divergence is marked, markers and legend entries only
when drawn, how too-short runs are counted)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from nblib import plots
from nblib.metrics.curves import range_test_suggestions
from nblib.run import report
from nblib.studies import lr
from nblib.studies.lr import plots as lr_plots

matplotlib.use("Agg")

LOGS = Path(__file__).parent / "fixtures" / "training_logs"
WANDB = LOGS / "wandb_chart_nanogpt.csv"  # a real W&B export, 8 runs
NANOGPT = LOGS / "nanogpt_train.log"  # a real nanoGPT stdout whose loss turns NaN


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def synthetic_sweep(seeds=(0, 1)):
    """A live-sweep study (default schedules and peak LRs, ``seeds``) with loss curves made
    up in place: each run decays towards 0.04 at a rate that grows with its peak LR (a
    little faster with the floor), with seeded multiplicative noise; and a range test whose
    loss falls around 3e-4 and blows up past 1e-2."""
    config = lr.LRConfig(steps=200, warmups=[20], seeds=list(seeds), plateau_window=50)
    study = lr.prepare(config)
    frames = []
    steps = np.arange(config.steps)
    for i, spec in enumerate(study.specs):
        rng = np.random.default_rng(i)
        rate = 0.004 * (spec["lr"] / 1e-4) ** 0.8 * (1.15 if spec["min_lr_rate"] else 1.0)
        loss = (0.04 + np.exp(-rate * steps)) * rng.lognormal(0.0, 0.08, len(steps))
        frames.append(
            pd.DataFrame(
                {
                    "run": spec["run"],
                    "step": steps,
                    "loss": loss,
                    "lr": spec["lr"],
                    "grad_norm": 1.0,
                }
            )  # fmt: skip
        )
    curves = pd.concat(frames, ignore_index=True)
    lrs = np.geomspace(1e-6, 0.05, 150)
    rng = np.random.default_rng(7)
    fall = 1.0 - 0.7 / (1.0 + np.exp(-3.0 * (np.log10(lrs) + 3.5)))
    ramp_loss = (fall + np.where(lrs > 1e-2, (lrs / 1e-2) ** 2 - 1, 0.0)) * rng.lognormal(
        0.0, 0.05, len(lrs)
    )
    ramp = {"lr": lrs, "loss": ramp_loss, **range_test_suggestions(lrs, ramp_loss, 10)}
    ramp["smoothing"] = 10
    return config, study, curves, ramp


def analysed(config, study, curves, ramp=None, baseline=None):
    runs = lr.analyse(study, curves, ramp)
    evidence = lr.evidence(study, runs, ramp, baseline)
    return runs, lr.verdict(evidence, config), lr.metrics(evidence)


def finish(tmp_path, monkeypatch, stem, figures, verdict, metrics) -> dict:
    """Save ``figures`` ({name: (fig, caption)}) the notebook's way (strict: a layout
    problem or a missing caption raises) and finish the run; metrics.json's record. finish
    refuses a figure that shows a number metrics.json lacks or has with another value."""
    monkeypatch.delenv(report.RUN_DIR_ENV, raising=False)  # interactive: runs/<stem> here
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(report.STRICT_FIGURES_ENV, "1")
    for name, (fig, caption) in figures.items():
        report.save(fig, name, stem, caption=caption)
    report.finish(stem, verdict, metrics)
    return json.loads((tmp_path / "runs" / stem / "metrics.json").read_text())


def assert_shows_metrics(fig, recorded: dict) -> None:
    """Every number the figure shows is metrics.json's number at that path."""
    shown = plots.shown_numbers(fig)
    assert shown, "the figure records no number it shows"
    for path, value in shown.items():
        node = recorded
        for part in path:
            assert part in node, (path, sorted(node))
            node = node[part]
        assert node == pytest.approx(value, rel=1e-9, abs=1e-12), path


def study_figures(config, study, curves, runs, ramp, baseline):
    fig, _ = lr.loss_figure(curves, runs, config, baseline, specs=study.specs)
    out = {"loss_curves": (fig, lr.caption_loss_curves(runs, config, baseline, study.specs))}
    fig, _, caption = lr.final_loss_figure(runs, study.specs, ramp)
    out["final_loss"] = (fig, caption)
    fig, _, caption = lr.range_figure(ramp, runs, study.specs)
    if fig is not None:
        out["lr_range_test"] = (fig, caption)
    return out


def legend_texts(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()] + [
        t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()
    ]


# ----------------------------------------------------------------------------- live sweep


def test_live_sweep_figures_fit_a_paper_and_show_the_metrics(tmp_path, monkeypatch):
    config, study, curves, ramp = synthetic_sweep()
    runs, verdict, metrics = analysed(config, study, curves, ramp, baseline=1.05)
    assert verdict.label == "FOUND"
    figures = study_figures(config, study, curves, runs, ramp, 1.05)
    assert set(figures) == {"loss_curves", "final_loss", "lr_range_test"}
    for name, (fig, caption) in figures.items():
        assert plots.layout_problems(fig) == [], name
        assert caption and caption.endswith("."), name
    record = finish(tmp_path, monkeypatch, "f03_live", figures, verdict, metrics)
    for fig, _ in figures.values():
        assert_shows_metrics(fig, record["metrics"])
    assert set(record["captions"]) == set(figures)
    # the verdict's numbers are on the figures that support them
    loss_shown = plots.shown_numbers(figures["loss_curves"][0])
    assert ("plateau_threshold",) in loss_shown and ("best_final_loss",) in loss_shown
    assert ("mean_action_loss",) in loss_shown
    best = verdict.numbers["best_run"]
    assert ("per_run", best, "gain_low") in loss_shown
    final_shown = plots.shown_numbers(figures["final_loss"][0])
    assert final_shown[("best_peak_lr",)] == record["metrics"]["best_peak_lr"]
    range_shown = plots.shown_numbers(figures["lr_range_test"][0])
    assert range_shown[("range_test", "steepest")] == pytest.approx(ramp["steepest"])
    assert ("best_peak_lr",) in range_shown


def test_final_loss_against_peak_lr_means_seeds_and_marks_the_best():
    config, study, curves, ramp = synthetic_sweep(seeds=(0, 1))
    runs, verdict, metrics = analysed(config, study, curves, ramp)
    response = lr.lr_response(study.specs, runs)
    # one row per schedule x peak LR, both seeds in it
    assert len(response) == 6 and (response["seeds"] == 2).all()
    row = response[(response["line"] == "cosine") & (response["lr"] == 1e-3)].iloc[0]
    pair = [
        runs.loc[r, "final_loss"] for r in ("cosine lr=0.001 wu=20", "cosine lr=0.001 wu=20 s=1")
    ]
    assert row["mean"] == pytest.approx(np.mean(pair)) and row["min"] == min(pair)
    assert metrics["final_loss_by_peak_lr"]["cosine"]["0.001"]["seeds"] == 2
    # the faster decay at higher LR makes 1e-3 best: the grid's edge, which the caption says
    best = verdict.numbers["best_run"]
    spec = next(s for s in study.specs if s["run"] == best)
    assert spec["lr"] == 1e-3 and metrics["best_peak_lr"] == 1e-3
    fig, ax, caption = lr.final_loss_figure(runs, study.specs, ramp)
    assert "largest peak LR tried" in caption and "1e-3" in caption
    assert f"{runs.loc[best, 'final_loss']:.3g}" in caption
    texts = legend_texts(fig)
    assert any(t.startswith("verdict's best:") for t in texts)
    assert not any("diverged" in t for t in texts)  # no diverged point, no legend entry
    # the x axis labels every swept peak LR
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels == ["1e-4", "3e-4", "1e-3"]


def test_one_colour_per_schedule_in_every_figure():
    config, study, curves, ramp = synthetic_sweep(seeds=(0,))
    runs, _, _ = analysed(config, study, curves, ramp)
    figures = study_figures(config, study, curves, runs, ramp, None)
    colours = lr_plots.SCHEDULE_COLOURS
    assert colours["cosine"] != colours["cosine_with_min_lr"]
    assert set(colours.values()) <= set(plots.PALETTES["run"])
    ax = figures["loss_curves"][0].axes[0]
    for line in ax.get_lines():
        gid = line.get_gid() or ""
        if gid.startswith("smoothed:"):
            schedule = gid.split(":", 1)[1].split()[0]
            assert line.get_color() == colours[schedule]
    final_ax = figures["final_loss"][0].axes[0]
    by_label = {line.get_label(): line.get_color() for line in final_ax.get_lines()}
    assert by_label["cosine"] == colours["cosine"]
    assert by_label["cosine_with_min_lr"] == colours["cosine_with_min_lr"]
    best_line = [
        line
        for line in figures["lr_range_test"][0].axes[0].get_lines()
        if line.get_label().startswith("sweep's best peak LR")
    ]
    assert len(best_line) == 1 and best_line[0].get_color() == colours["cosine_with_min_lr"]


def test_markers_and_their_legend_entries_only_when_a_run_has_one():
    config, study, curves, ramp = synthetic_sweep(seeds=(0,))
    runs, _, _ = analysed(config, study, curves, ramp)
    assert not runs["diverged"].any() and runs["plateau_step"].isna().all()
    fig, _ = lr.loss_figure(curves, runs, config, specs=study.specs)
    texts = legend_texts(fig)
    assert not any("plateau begins" in t or t == "diverged" for t in texts)
    assert not any((line.get_gid() or "").startswith(("plateau:", "diverged:"))
                   for line in fig.axes[0].get_lines())  # fmt: skip
    # one run flattens at step 60: a plateau, its marker and its legend entry appear
    flat = curves.copy()
    name = study.specs[0]["run"]
    sel = (flat["run"] == name) & (flat["step"] >= 60)
    flat.loc[sel, "loss"] = flat.loc[(flat["run"] == name) & (flat["step"] == 60), "loss"].iloc[0]
    runs2, _, metrics = analysed(config, study, flat, ramp)
    assert runs2.loc[name, "plateau_step"] is not None
    fig, _ = lr.loss_figure(flat, runs2, config, specs=study.specs)
    assert "plateau begins" in legend_texts(fig)
    shown = plots.shown_numbers(fig)
    assert shown[("per_run", name, "plateau_step")] == metrics["per_run"][name]["plateau_step"]


# ---------------------------------------------------------------- contradictions, known answers


def _write_log(path: Path, losses) -> Path:
    path.write_text(
        "".join(json.dumps({"step": 10 * i, "loss": float(v)}) + "\n" for i, v in enumerate(losses))
    )
    return path


def test_sparse_log_curve_ends_at_the_final_loss_the_verdict_reports(tmp_path):
    # 30 logged losses: the analysis smooths over 3 points (a tenth of the run), so the
    # plotted curve must too; over the configured 20 its end was 0.6x higher than the
    # final loss in the table and the verdict.
    losses = np.geomspace(2.0, 0.2, 30)
    config = lr.LRConfig(log_files=[str(_write_log(tmp_path / "run.jsonl", losses))],
                         plateau_window=50)  # fmt: skip
    study = lr.prepare(config)
    curves = lr.loss_curves(study)
    runs, _, _ = analysed(config, study, curves)
    expected = float(np.mean(losses[-3:]))  # run_smoothing(20, 30) == 3
    assert runs.iloc[0]["final_loss"] == pytest.approx(expected)
    fig, axes = lr.loss_figure(curves, runs, config)
    (line,) = [ln for ln in axes[0].get_lines() if ln.get_gid() == "smoothed:run"]
    assert line.get_ydata()[-1] == pytest.approx(expected, rel=1e-12)
    assert float(np.mean(losses[-20:])) > 1.5 * expected  # what the old figure drew


def test_divergence_cross_sits_where_the_run_broke_not_at_its_end(tmp_path):
    # falls to 0.1 by step 1000, jumps to 5 at step 1500 and stays: the cross belongs on
    # the curve at the divergence step (near 0.1-0.5), not at the last loss (5)
    losses = np.concatenate([np.geomspace(1.0, 0.1, 100), np.full(50, 0.1), np.full(50, 5.0)])
    config = lr.LRConfig(log_files=[str(_write_log(tmp_path / "run.jsonl", losses))])
    study = lr.prepare(config)
    curves = lr.loss_curves(study)
    runs, verdict, metrics = analysed(config, study, curves)
    row = runs.iloc[0]
    assert row["diverged"] and row["divergence_reason"] == "blow_up"
    step = int(row["divergence_step"])
    assert 1500 <= step <= 1520
    fig, axes = lr.loss_figure(curves, runs, config)
    (cross,) = [ln for ln in axes[0].get_lines() if ln.get_gid() == "diverged:run"]
    (level,) = [ln for ln in axes[0].get_lines() if ln.get_gid() == "smoothed:run"]
    x, y = cross.get_xdata()[0], cross.get_ydata()[0]
    at = np.flatnonzero(level.get_xdata() <= step)[-1]
    assert x == step and y == pytest.approx(level.get_ydata()[at])
    assert y < 1.0 < losses[-1]
    assert "diverged" in legend_texts(fig) and verdict.label == "DIVERGED"
    assert plots.shown_numbers(fig)[("per_run", "run", "divergence_step")] == step
    assert metrics["per_run"]["run"]["divergence_step"] == step


def test_imported_logs_figures_and_too_short_runs_counted_as_the_verdict_counts(
    tmp_path, monkeypatch
):
    config = lr.LRConfig(log_files=[str(WANDB), str(NANOGPT)], plateau_window=20)
    study = lr.prepare(config)
    curves = lr.loss_curves(study)
    runs, verdict, metrics = analysed(config, study, curves)
    figures = study_figures(config, study, curves, runs, None, None)
    assert set(figures) == {"loss_curves", "final_loss"}  # no range test for logs
    for name, (fig, _) in figures.items():
        assert plots.layout_problems(fig) == [], name
    record = finish(tmp_path, monkeypatch, "f03_logs", figures, verdict, metrics)
    for fig, _ in figures.values():
        assert_shows_metrics(fig, record["metrics"])
    # runs too short for an interval count as learning in the verdict: the figure says so
    status = lr.learning_status(runs, config.plateau_threshold)
    short = [r for r, s in status.items() if s == "learning" and pd.isna(runs.loc[r, "gain"])]
    assert short
    gains_ax = figures["loss_curves"][0].axes[1]
    notes = [t.get_text() for t in gains_ax.texts]
    assert notes.count("too short for an interval: counted as learning") == len(short)
    assert "diverged at step 425" in notes
    caption = figures["loss_curves"][1]
    learning = verdict.numbers["learning_after_warmup"]
    assert f"{learning} of 9 runs count as learning past warmup ({len(short)} too short" in caption
    assert "1 diverged (crosses)" in caption


# ----------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("lo", "hi"), [(0.3, 1.5), (0.039, 0.19), (3.3, 25.0), (0.02, 1.2), (1e-6, 0.05)]
)
def test_log_axes_label_at_least_three_ticks(lo, hi):
    fig, ax = plots.new_figure()
    ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    lr_plots.label_log_axis(ax.yaxis, lo, hi)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert 3 <= len(labels) <= 8, labels


def test_numbers_print_short():
    assert [lr_plots.fmt_number(v) for v in (1e-4, 3e-4, 2.8e-4, 0.05, 1.0, 0.0028)] == [
        "1e-4",
        "3e-4",
        "2.8e-4",
        "0.05",
        "1",
        "2.8e-3",
    ]
