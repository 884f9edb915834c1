"""Notebook 02's figures at paper size, from their plot functions with small inputs built
here (no policy, no training): each fits a paper (nblib.plots.layout_problems), each number
it shows is the one metrics.json gets from the same inputs, and the collapse figure shows
what the verdict judges (the spread against its threshold), with a known answer for
seed 001's confusion: a mean cosine of 0.97 with one direction of variation is
low-dimensional, not collapsed."""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from nblib import plots
from nblib.metrics.embedding import pca_embedding
from nblib.run import report
from nblib.studies import probes
from nblib.studies.probes import plots as pp
from nblib.studies.probes.wiring import _gradient_rows, _lora_numbers
from nblib.train import History
from nblib.verdict import Estimate

matplotlib.use("Agg")

TASKS = ("reach", "push", "pick-place")
N = 24  # probe samples, 8 per task


def _representations(projector_variation: float = 1.0, seed: int = 0) -> dict:
    """Stages shaped like the tiny policy's: alike images and VLM states (a shared offset,
    task-dependent variation), a projector whose variation lies along one direction, a
    diverse proprio and condition."""
    rng = np.random.default_rng(seed)
    task = np.repeat(np.arange(len(TASKS)), N // len(TASKS))
    t = np.tile(np.arange(N // len(TASKS)), len(TASKS))

    def stage(dim: int, offset: float, spread: float, directions: int) -> np.ndarray:
        base = np.full(dim, offset)
        basis = rng.normal(size=(directions, dim))
        code = rng.normal(size=(N, directions)) + task[:, None] * 0.8 + t[:, None] * 0.05
        return base + spread * code @ basis / np.sqrt(dim)

    return (
        {
            "images": stage(96, 1.0, 0.55, 6),
            "vlm_last": stage(32, 1.0, 0.5, 3),
            "projector": stage(48, 1.0, projector_variation, 1),
            "proprio": stage(48, 0.0, 1.0, 4),
            "condition": stage(48, 0.1, 1.0, 3),
        },
        task,
        t,
    )


def _study(config: probes.ProbesConfig, task: np.ndarray, t: np.ndarray):
    """What summaries() and the plots read of a study: its config and sample labels."""
    info = pd.DataFrame({"task": [TASKS[k] for k in task], "t": t})
    return SimpleNamespace(config=config, info=info, source="built in the test", plugin=None)


def _language(stages: list[str]) -> probes.LanguageReliance:
    cos = {"vlm_last": 0.996, "projector": 0.998, "proprio": 1.0, "condition": 0.99999}
    rows, change = {}, {}
    for k, (variant, sim, moved) in enumerate(
        [("other task", 0.48, 0.0022), ("shuffled", 0.90, 0.0008), ("empty", 0.16, 0.0014)]
    ):
        rows[variant] = {"text_similarity": sim} | {
            s: cos[s] - 1e-4 * k * (cos[s] < 1) for s in stages if s in cos
        }
        rows[variant]["action_change_std"] = moved
        change[variant] = Estimate(moved, moved * 0.6, moved * 1.6, "95 % bootstrap")
    return probes.LanguageReliance(pd.DataFrame(rows).T.astype(float), change)


def _checks(head_gets_gradient: bool = True) -> pd.DataFrame:
    """The checks table as pipeline_checks builds it, from gradient_check-shaped rows."""
    lora = {"adapters": 16, "output_change": 0.48, "with_gradient": 16}
    grads = [
        dict(module="backbone (VLM)", trainable=0, frozen=388928, grad_norm=0.0, ok=True),
        dict(module="projector", trainable=49536, frozen=0, grad_norm=0.0144, ok=True),
        dict(module="proprio encoder", trainable=17408, frozen=0, grad_norm=1.07, ok=True),
        dict(
            module="head (flow)",
            trainable=238656,
            frozen=0,
            grad_norm=2.39 if head_gets_gradient else 0.0,
            ok=head_gets_gradient,
        ),
    ]
    for g in grads:
        g |= {"frozen_with_grad": 0, "trainable_without_grad": 0 if g["ok"] else 4}
    lora_row = {"check": "LoRA adapters in the forward path", "ok": True, "detail": "16"}
    return pd.DataFrame([lora_row | _lora_numbers(lora), *_gradient_rows(grads)])


def _isolation() -> dict:
    out = {}
    for kind, start, rate in (("flow", 2.0, 0.004), ("regression", 0.9, 0.04)):
        loss = start * np.exp(-rate * np.arange(60))
        history = History({"step": i, "loss": float(v)} for i, v in enumerate(loss))
        out[kind] = {
            "history": history,
            "first_loss": float(np.mean(loss[:20])),
            "final_loss": history.final("loss", 20),
            "mae": 0.53 if kind == "flow" else 0.0015,
        }
    return out


def _run(projector_variation: float = 1.0, head_gets_gradient: bool = True):
    """Every figure of the notebook with its caption, and the metrics the run would write
    (verdict numbers first, as report.finish merges them)."""
    config = probes.ProbesConfig(samples=N, collapse_spread=0.01)
    reps, task, t = _representations(projector_variation)
    study = _study(config, task, t)
    table = probes.summaries(study, reps)
    found = probes.collapse(table, config)
    language = _language(list(reps))
    checks = _checks(head_gets_gradient)
    isolation = _isolation()
    variance = probes.pca_variance(reps)
    points = {"pca": {k: pca_embedding(x)[0] for k, x in reps.items()}}
    figures = {
        "cosine_heatmaps": (
            probes.cosine_heatmaps(study, reps, table)[0],
            pp.caption_cosine_heatmaps(table, config.collapse_spread),
        ),
        "collapse_by_stage": (
            probes.collapse_bars(table, config)[0],
            pp.caption_collapse(table, config.collapse_spread, found),
        ),
        "language_reliance": (
            pp.plot_language(language.table, probes.LANGUAGE_TOL, language.action_change, table)[0],
            pp.caption_language(language.table, language.action_change),
        ),
        "head_isolation": (pp.plot_isolation(isolation)[0], pp.caption_isolation(isolation)),
        "wiring_checks": (probes.plot_wiring(checks)[0], pp.caption_wiring(checks)),
    }
    for name, ((fig, _), caption) in probes.embedding_figures(study, points, variance).items():
        figures[name] = (fig, caption)
    evidence = probes.ProbesEvidence(
        study.source, N, table, False, found, language, checks, isolation, None, None, variance
    )
    verdict = probes.verdict(evidence, config)
    metrics = report.to_jsonable(verdict.numbers | probes.metrics(evidence))
    return figures, metrics, verdict, table


@pytest.fixture(scope="module")
def run():
    out = _run()
    yield out
    plt.close("all")


def _at(metrics: dict, path: tuple[str, ...]):
    node = metrics
    for part in path:
        assert isinstance(node, dict) and part in node, f"metrics lack {path}"
        node = node[part]
    return node


def test_every_figure_fits_a_paper_and_has_a_caption(run):
    figures, *_ = run
    assert set(figures) == {
        "cosine_heatmaps",
        "collapse_by_stage",
        "pca_by_task",
        "pca_by_timestep",
        "language_reliance",
        "head_isolation",
        "wiring_checks",
    }
    for name, (fig, caption) in figures.items():
        assert plots.layout_problems(fig) == [], name
        assert isinstance(caption, str) and 40 < len(caption) < 700, name


def test_every_shown_number_is_the_metric_at_its_path(run):
    figures, metrics, *_ = run
    for name, (fig, _) in figures.items():
        shown = plots.shown_numbers(fig)
        assert shown, f"{name} shows no reported number"
        for path, value in shown.items():
            assert math.isclose(_at(metrics, path), value, rel_tol=1e-9, abs_tol=1e-12), (
                name,
                path,
            )


def test_the_collapse_figure_shows_what_the_verdict_judges(run):
    figures, metrics, verdict, table = run
    shown = plots.shown_numbers(figures["collapse_by_stage"][0])
    assert shown[("collapse_spread",)] == 0.01
    for stage in ("vlm_last", "projector", "proprio", "condition"):  # learned: with their CI
        for key in ("spread", "spread_low", "spread_high"):
            assert shown[("stages", stage, key)] == pytest.approx(table.loc[stage, key])
    assert ("stages", "images", "spread_low") not in shown  # raw pixels are never judged
    assert verdict.numbers["least_spread_stage"] in figures["collapse_by_stage"][1]


def test_low_dimensional_projector_is_not_collapsed_and_the_figure_says_why(run):
    """Known answer, seed 001's confusion (notebook 02's projector: mean cosine 0.97,
    centred effective rank 1.2, verdict DIVERSE): a large shared offset with variation
    along one direction has a high cosine and a centred effective rank near 1, yet a
    spread ~3x the threshold: not collapsed. The figure shows the spread against the
    threshold, 1 - cosine beside it, and names the low rank as low-dimensional."""
    figures, metrics, verdict, table = run
    projector = table.loc["projector"]
    assert projector["cos_mean"] > 0.95  # looks collapsed by raw cosine ...
    assert projector["effective_rank_centered"] < 1.3  # ... and by the centred rank
    assert projector["spread_low"] > 0.01  # but its whole interval is above the threshold
    assert abs(projector["spread"] - (1 - projector["cos_mean"])) < 0.5 * projector["spread"]
    assert verdict.label == "DIVERSE"
    fig = figures["collapse_by_stage"][0]
    left, right = fig.axes[:2]
    assert "none collapsed" in left.get_title()
    texts = [t.get_text() for t in right.texts]
    assert any(t.startswith("projector: 1.") and "not collapsed" in t for t in texts), texts
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("collapsed below 0.01" in t for t in legend)
    assert any("1 − mean pairwise cosine" in t for t in legend)
    assert not any(t.startswith("collapsed (") for t in legend)  # no collapsed stage: no entry


def test_a_collapsed_projector_is_marked_as_the_verdict_names_it():
    figures, metrics, verdict, table = _run(projector_variation=0.05)
    assert table.loc["projector", "spread_high"] < 0.01
    assert verdict.label == "BOTTLENECK" and verdict.numbers["first_collapsed_stage"] == "projector"
    fig, caption = figures["collapse_by_stage"]
    assert "collapsed: projector" in fig.axes[0].get_title() and "projector" in caption
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "collapsed (whole CI below threshold)" in legend
    assert plots.layout_problems(fig) == []
    plt.close("all")


def test_language_figure_agrees_with_the_verdict_and_names_unreached_stages(run):
    figures, metrics, verdict, _ = run
    fig, caption = figures["language_reliance"]
    left, right = fig.axes[:2]
    assert right.get_title() == "the policy ignores its instruction"
    assert "ignores its instruction" in verdict.reasons[-1] and "ignores" in caption
    assert any("proprio\n(no text input)" == t.get_text() for t in left.get_xticklabels())
    assert any("ignored below 0.05 std" == t.get_text() for t in right.texts)
    # the whiskers are the verdict's intervals, reported in metrics
    assert metrics["language"]["empty"]["action_change_high"] == pytest.approx(0.0014 * 1.6)


def test_wiring_figure_marks_a_module_without_gradient():
    fig, _ = probes.plot_wiring(_checks(head_gets_gradient=False))
    assert fig.axes[0].get_title().startswith("4 of 5 checks pass (✗: failed)")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "head (flow) (trainable) ✗" in labels and "backbone (VLM) (frozen)" in labels
    assert "failed: head (flow)" in pp.caption_wiring(_checks(head_gets_gradient=False))
    plt.close(fig)


def test_no_isolation_figure_for_a_plugin():
    assert pp.plot_isolation(None) == (None, None) and pp.caption_isolation(None) is None


def test_figures_save_strictly_and_finish_accepts_their_numbers(tmp_path, monkeypatch):
    """The notebook's path end to end: report.save under NBLIB_STRICT_FIGURES=1, then
    report.finish checks every shown number against metrics.json."""
    monkeypatch.delenv(report.RUN_DIR_ENV, raising=False)
    monkeypatch.setenv(report.STRICT_FIGURES_ENV, "1")
    monkeypatch.chdir(tmp_path)
    figures, metrics, verdict, _ = _run()
    for name, (fig, caption) in figures.items():
        report.save(fig, name, "figs02", caption=caption)
    record = report.finish("figs02", verdict, metrics)
    assert set(record["captions"]) == set(figures)
    plt.close("all")
