"""Notebook 01's figures at paper size from hand-made inputs (no training): each fits a
page, shows only numbers that metrics.json has with the same value, and says the verdict
the verdict says (its label, bars and interval), so the figure and the verdict agree."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from nblib import plots
from nblib.data.normalization import NormStats, Stats
from nblib.models.vla import Samples
from nblib.run import report
from nblib.studies import overfit
from nblib.studies.overfit import plots as op
from nblib.train import History
from nblib.verdict import Estimate

matplotlib.use("Agg")

NAMES = ["dx", "dy", "dz", "gripper"]
STD = np.array([0.3, 0.5, 0.6, 0.8])
H = 8


def _samples(n: int, rng, short: int = 0) -> Samples:
    """``n`` samples with chunks of H steps (normalised actions); the last ``short`` of
    them run past their episode's end after 2 steps (mask)."""
    mask = np.ones((n, H), dtype=bool)
    mask[n - short :, 2:] = False
    return Samples(
        images=[[] for _ in range(n)],
        instructions=[""] * n,
        proprio=np.zeros((n, 3), dtype=np.float32),
        actions=rng.normal(0, 1, (n, H, len(NAMES))).astype(np.float32),
        mask=mask,
        demo=[f"demo_{i // 10}" for i in range(n)],
        t=np.arange(n) % 10,
    )


def _stats(mean: np.ndarray, std: np.ndarray) -> Stats:
    ones = np.ones_like(mean)
    return Stats(
        mean.tolist(),
        std.tolist(),
        (-ones).tolist(),
        ones.tolist(),
        (-ones).tolist(),
        ones.tolist(),
        100,
    )


@pytest.fixture(scope="module")
def study():
    """A stand-in for an OverfitStudy (what the figure functions read): 40 training and
    30 validation samples; predictions off by 0.1 std on train and 0.5 std on val."""
    rng = np.random.default_rng(0)
    stats = NormStats(
        actions=_stats(np.zeros(4), STD), proprio=_stats(np.zeros(3), np.ones(3)), demos=["demo_0"]
    )
    train, val = _samples(40, rng, short=5), _samples(30, rng, short=3)
    config = overfit.OverfitConfig(horizon=H)
    return SimpleNamespace(
        config=config, stats=stats, train=train, val=val, action_names=list(NAMES)
    )


def _predicted(study, samples: Samples, noise: float, seed: int) -> overfit.OpenLoop:
    true = study.stats.actions.unnormalize(samples.actions, "mean_std")
    rng = np.random.default_rng(seed)
    pred = np.clip(true + rng.normal(0, noise, true.shape) * STD, -0.99, 0.99)
    if samples is study.train:
        pred[0, 3, 3] = 1.4  # the one prediction beyond the ±1 action range
    return overfit.open_loop(pred.astype(np.float32), samples, study.stats)


@pytest.fixture(scope="module")
def assessment(study):
    return overfit.Assessment(
        _predicted(study, study.train, 0.1, 1), _predicted(study, study.val, 0.5, 2)
    )


@pytest.fixture(scope="module")
def history(assessment):
    """200 steps; the action error measured every 20 steps, the last point the final
    assessment (as :func:`overfit.fit` records it)."""
    records = []
    for step in range(200):
        record = {"step": step, "loss": 2.0 * 0.99**step + 0.2, "lr": 1e-3, "seconds": 0.02}
        if step == 0 or (step + 1) % 20 == 0:
            frac = (step + 1) / 200
            record["eval_train_relative"] = 1.1 - frac * (1.1 - assessment.train.relative.value)
            record["eval_val_relative"] = 1.1 - frac * (1.1 - assessment.val.relative.value)
            record["eval_seconds"] = 0.01
        records.append(record)
    return History(records)


@pytest.fixture(scope="module")
def run(study, assessment, history):
    """The three figures with their captions, and the run's metrics (the verdict's numbers
    merged in, as report.finish writes them)."""
    config = study.config
    names = tuple(study.action_names)
    evidence = overfit.OverfitEvidence(
        config.head, config.control, assessment, history, 200, None, names
    )
    verdict = overfit.verdict(evidence, config)
    rows = overfit.example_rows(study, assessment, 4)
    figures = {
        "training_curves": (
            overfit.plot_training(history, assessment, config)[0],
            overfit.caption_training(history, assessment, config),
        ),
        "dimension_errors": (
            overfit.plot_dim_errors(study, assessment)[0],
            overfit.caption_dim_errors(study, assessment),
        ),
        "predicted_chunks": (
            overfit.plot_predicted_chunks(study, rows)[0],
            overfit.caption_predicted_chunks(study, rows),
        ),
    }
    metrics = report._with_verdict(verdict, report.to_jsonable(overfit.metrics(evidence)))
    yield SimpleNamespace(figures=figures, metrics=metrics, verdict=verdict, rows=rows)
    plt.close("all")


def _at(metrics: dict, path: tuple[str, ...]):
    node = metrics
    for part in path:
        node = node[part]
    return node


def test_each_figure_fits_a_paper_page(run):
    for name, (fig, caption) in run.figures.items():
        assert plots.layout_problems(fig) == [], name
        assert caption.strip() and caption.endswith("."), name


def test_shown_numbers_are_the_metrics(run):
    for name, (fig, _) in run.figures.items():
        for path, value in plots.shown_numbers(fig).items():
            assert _at(run.metrics, path) == pytest.approx(value, rel=1e-9, abs=1e-12), (name, path)
    dims = plots.shown_numbers(run.figures["dimension_errors"][0])
    for d in NAMES:
        for split in ("train", "val"):
            assert ("per_dimension", d, f"{split}_mae_over_std") in dims
    for key in (
        "pass_threshold",
        "partial_threshold",
        "train_relative_mean_low",
        "val_relative_mean_high",
    ):
        assert (key,) in dims
    shown = plots.shown_numbers(run.figures["training_curves"][0])
    assert shown[("train_relative_mean",)] == run.verdict.numbers["train_relative_mean"]
    assert shown[("pass_threshold",)] == 0.25 and shown[("partial_threshold",)] == 0.45  # flow


def test_report_accepts_the_figures_in_strict_mode(run, tmp_path, monkeypatch):
    monkeypatch.delenv(report.RUN_DIR_ENV, raising=False)
    monkeypatch.setenv(report.STRICT_FIGURES_ENV, "1")
    monkeypatch.chdir(tmp_path)
    # the files themselves are save_figure's business (tested with the standards): skip
    # the seconds of PDF and PNG rendering, keep save's checks and finish's comparison
    monkeypatch.setattr(plots, "save_figure", lambda fig, stem: [Path(f"{stem}.png")])
    for name, (fig, caption) in run.figures.items():
        report.save(fig, name, "fig01test", caption=caption)
    metrics = {k: v for k, v in run.metrics.items() if k not in run.verdict.numbers}
    metrics.pop("reasons")
    record = report.finish("fig01test", run.verdict, metrics)
    assert set(record["captions"]) == set(run.figures)


def test_the_figures_say_the_verdicts_label(run, study, assessment):
    label = run.verdict.label
    assert label == "PASS"  # train predictions off by 0.1 std: ~0.08 MAE/std
    assert f"verdict {label}" in run.figures["dimension_errors"][0].axes[0].get_title()
    assert f": {label};" in run.figures["training_curves"][1]
    assert f": {label}." in run.figures["dimension_errors"][1]


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0.10, 0.20, "PASS"), (0.20, 0.30, "PARTIAL"), (0.40, 0.50, "PARTIAL"), (0.46, 0.60, "FAIL")],
)
def test_judge_is_the_verdicts_rule(low, high, expected, study, assessment, history):
    """The figures' label (judge) and the verdict's are one rule: flow bars 0.25 / 0.45."""
    rel = Estimate((low + high) / 2, low, high, "test")
    train = overfit.OpenLoop(assessment.train.errors, assessment.train.pred, rel)
    evidence = overfit.OverfitEvidence(
        "flow", "none", overfit.Assessment(train, None), history, 200, None, tuple(NAMES)
    )
    limits = study.config.thresholds()
    assert overfit.judge(rel, limits) == expected
    assert overfit.verdict(evidence, study.config).label == expected
    fig, ax = overfit.plot_dim_errors(study, overfit.Assessment(train, None))
    assert ax.get_title().startswith(f"verdict {expected}")
    plt.close(fig)


def test_a_negative_control_is_named_on_the_figure(study, assessment):
    control = SimpleNamespace(
        **{**vars(study), "config": overfit.OverfitConfig(horizon=H, control="zero_inputs")}
    )
    fig, ax = overfit.plot_dim_errors(control, assessment)
    assert "negative control 'zero_inputs' (must FAIL)" in ax.get_title()
    plt.close(fig)


def test_learning_curve_counts_updates_and_ends_at_the_assessment(history, assessment, run):
    curve = overfit.learning_curve(history)
    assert curve["step"] == [1, *range(20, 201, 20)]  # updates done when measured
    assert curve["train_relative_mean"][-1] == pytest.approx(assessment.train.relative.value)
    assert curve["seconds"] == pytest.approx(0.11)
    assert run.metrics["learning_curve"]["step"] == curve["step"]
    assert overfit.learning_curve(History([{"step": 0, "loss": 1.0}])) is None
    assert overfit.eval_every(2000) == 200 and overfit.eval_every(5) == 1


def test_near_empty_chunks_are_not_drawn_and_rows_split_train_and_val(run, study):
    mask = np.zeros((4, 8), dtype=bool)
    for i, valid in enumerate((8, 4, 3, 0)):
        mask[i, :valid] = True
    assert op.drawable(mask).tolist() == [0, 1]  # at least half the horizon inside
    assert [r.split for r in run.rows] == ["train", "train", "val", "val"]
    assert all(r.mask.sum() >= H / 2 for r in run.rows)  # the short samples (2 steps) never


def test_chunks_share_y_limits_per_dimension_and_mark_out_of_range(study, assessment):
    row = overfit._row(study, "train", study.train, assessment.train, 0)  # holds the 1.4
    other = overfit._row(study, "val", study.val, assessment.val, 1)
    fig, axes = op.plot_chunks([row, other], NAMES)
    for d in range(len(NAMES)):
        assert axes[0][d].get_ylim() == axes[1][d].get_ylim()
    texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert "predicted outside ±1 (1)" in texts and "val sample" in texts
    assert "1 of 64 drawn predicted values lie outside ±1" in op.caption_chunks(
        [row, other], NAMES, H
    )
    plt.close(fig)

    inside = overfit._row(study, "val", study.val, assessment.val, 2)
    fig, _ = op.plot_chunks([inside], NAMES)  # no prediction beyond ±1: no such legend entry
    texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert not any("outside" in t for t in texts) and "train sample" not in texts
    assert "outside" not in op.caption_chunks([inside], NAMES, H)
    plt.close(fig)
