"""Notebook 04's figures at paper size from their plot functions (no model, no notebook):
each fits a paper (``layout_problems`` is empty), every number it shows is the number the
run's metrics carry at that path, and the compass draws the quantity the verdict judges."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from nblib.metrics.tokens import angular_histograms, consistency_score  # noqa: E402
from nblib.plots import layout_problems, shown_numbers  # noqa: E402
from nblib.run.report import _with_verdict, to_jsonable  # noqa: E402
from nblib.studies.tokens import compass, plots  # noqa: E402
from nblib.studies.tokens.evidence import TokensEvidence, metrics  # noqa: E402
from nblib.studies.tokens.study import HISTOGRAM_BINS, Views  # noqa: E402
from nblib.studies.tokens.table import TokenTable  # noqa: E402
from nblib.train import History  # noqa: E402

N_CODES = 8
# token -> (pairs in the corner camera, in the wrist camera, direction in deg, up is 90)
TOKENS = {
    0: (120, 100, 0.0),  # shared, "right" in both
    1: (80, 90, 90.0),  # shared, "up" in both
    2: (0, 150, 200.0),  # wrist camera only
    3: (200, 0, 270.0),  # corner camera only
    5: (0, 3, 45.0),  # too few pairs to draw
}


def token_table(seed: int = 0) -> TokenTable:
    rng = np.random.default_rng(seed)
    rows = []
    for token, (corner, wrist, angle) in TOKENS.items():
        for camera, n in (("corner", corner), ("behindGripper", wrist)):
            a = np.radians(angle + rng.normal(0, 20, n))
            length = rng.uniform(1, 4, n)
            for i in range(n):  # image axes: y down
                rows.append((camera, token, length[i] * np.cos(a[i]), -length[i] * np.sin(a[i])))
    df = pd.DataFrame(rows, columns=["dataset", "token_0", "flow_dx", "flow_dy"])
    df = df.assign(task="t", instruction="x", demo=[f"d{i % 12}" for i in range(len(df))])
    return TokenTable(df, df["token_0"].to_numpy(), N_CODES)


@pytest.fixture(scope="module")
def run():
    """The numbers a run computes from one token table: summary, intervals, cells, and the
    metrics.json it would write (verdict numbers first, as report.finish merges them)."""
    table = token_table()
    summary = compass.analyse(table, n_permutations=10)
    estimates = compass.verdict_estimates(table, summary, n_resamples=40)
    views = Views({"across datasets": summary}, estimates, None, compass.compass_cells(table))
    strides = pd.DataFrame(
        {
            "k": [1, 1, 4, 4],
            "camera": ["corner", "behindGripper"] * 2,
            "median_error_deg": [14.7, np.nan, 10.5, np.nan],
            "median_commanded_deg": [16.0, np.nan, 16.7, np.nan],
            "pairs": [110, 0, 196, 0],
        }
    )
    training = {"recon": 0.0015, "copy": 0.0026, "perplexity": 11.9, "active": 15.0}
    evidence = TokensEvidence(len(table), views, strides, None, None, training)
    verdict = compass.verdict(summary, estimates)
    record = _with_verdict(verdict, to_jsonable(metrics(evidence)))
    return {"table": table, "views": views, "strides": strides, "metrics": record}


def lookup(record: dict, path: tuple[str, ...]):
    node = record
    for part in path:
        assert isinstance(node, dict) and part in node, f"metrics lack {path}"
        node = node[part]
    return node


def check(fig, record: dict, expect_shown: bool = True) -> dict:
    """The figure fits a paper and every number it shows is in the metrics at its path."""
    assert layout_problems(fig) == []
    shown = shown_numbers(fig)
    assert bool(shown) == expect_shown
    for path, value in shown.items():
        assert math.isclose(lookup(record, path), value, rel_tol=1e-9, abs_tol=1e-12), path
    plt.close(fig)
    return shown


def test_compass_shows_the_verdicts_concentration_and_each_tokens_n_and_r(run):
    views, record = run["views"], run["metrics"]
    summary = views.summaries["across datasets"]
    per_token = record["per_token"]
    fig, axes = plots.plot_compass(
        views.cells, per_token, summary, N_CODES, views.estimates["concentration"]
    )
    shown = check(fig, record)
    assert ("direction_resultant_length_adjusted",) in shown
    assert ("per_token", "0", "angle_between_deg") in shown  # shared tokens: their gap
    assert ("per_token", "5", "pairs", "behindGripper") not in shown  # 3 pairs: not drawn
    drawn = [ax for ax in axes.ravel() if ax.axison]
    assert len(drawn) == 4  # tokens 0, 1 (shared), 2, 3; not 5 (3 pairs), not the dead ones
    assert plots.caption_compass(summary, per_token).count("°") == 2


def test_relative_compass_shows_the_verdicts_agreement_and_its_coverage(run):
    views, record = run["views"], run["metrics"]
    summary = views.summaries["across datasets"]
    fig, _ = plots.plot_compass_relative(
        views.cells, record["per_token"], summary, views.estimates["agreement"]
    )
    shown = check(fig, record)
    for key in ("agreement_adjusted", "agreement_adjusted_low", "agreement_adjusted_high"):
        assert (key,) in shown
    assert ("across_datasets", "rows_compared") in shown
    assert ("per_token", "1", "agreement") in shown
    caption = plots.caption_compass_relative(summary, views.estimates["agreement"])
    assert f"{summary['rows_compared'] / summary['rows_with_direction']:.0%}" in caption


def test_the_other_figures_fit_a_paper_and_show_the_metrics_numbers(run):
    table, record, strides = run["table"], run["metrics"], run["strides"]
    summary = run["views"].summaries["across datasets"]
    check(plots.plot_flow_scatter(table)[0], record, expect_shown=False)
    moving = table.moving("flow", 0.5)
    vec = table.motion("flow")[moving]
    angles = np.degrees(np.arctan2(-vec[:, 1], vec[:, 0]))
    hist = angular_histograms(table.ids[moving], angles, HISTOGRAM_BINS, N_CODES)
    check(plots.plot_polar_histograms(hist)[0], record, expect_shown=False)
    counts = pd.crosstab(table.ids, table.df["dataset"]).reindex(range(N_CODES), fill_value=0)
    shown = check(plots.plot_codebook_usage(counts, summary)[0], record)
    assert ("codebook_perplexity",) in shown
    codebook = np.random.default_rng(0).normal(size=(N_CODES, 6))
    check(plots.plot_codebook_similarity(codebook, counts.sum(axis=1).to_numpy())[0], record, False)
    shown = check(plots.plot_stride_effect(strides)[0], record)
    assert ("flow_vs_reference", "corner", "4", "median_error_deg") in shown
    history = History(
        {"step": float(s), "recon": 0.003 / (1 + s / 50), "copy": 0.0026, "perplexity": 6 + s / 60,
         "active": 12.0, "loss": 1.0, "lr": 1e-3}
        for s in range(300)
    )  # fmt: skip
    check(plots.plot_latent_training(history, N_CODES)[0], record, expect_shown=False)
    frame = np.zeros((32, 32, 3), np.uint8)
    pair = {"first": frame, "second": frame, "caption": "corner t=12", "k": 4, "flow": [1, -2]}
    check(plots.plot_gallery([(0, [pair] * 3), (3, [pair] * 2)])[0], record, expect_shown=False)
    points = np.random.default_rng(1).normal(size=(300, 2))
    check(plots.plot_embedding(points, table.ids[:300], "latents", N_CODES)[0], record, False)


def test_per_token_agreement_is_the_verdicts_and_angles_have_a_known_answer(run):
    """The contradiction's check: per token, the angle between the cameras and the
    agreement come from the verdict's own rows, y flip and centring."""
    table, record = run["table"], run["metrics"]
    score = consistency_score(
        table.ids, table.motion("flow"), table.df["dataset"], 5, 0.5, center=True
    )
    for token, entry in record["per_token"].items():
        if entry["compared"]:
            assert entry["agreement"] == pytest.approx(score["per_code"]["agreement"][int(token)])
            # two datasets: agreement = cos(half the angle between their centred directions)
            half = np.radians(entry["centred_angle_between_deg"]) / 2
            assert entry["agreement"] == pytest.approx(np.cos(half))
    # known answer: one token moves exactly right in one camera and exactly up (dy < 0 in
    # image axes) in the other; each camera's other token moves the opposite way, so the
    # cameras' mean motion is 0 and the centred directions are the plain ones
    right, up = (3.0, 0.0), (0.0, -3.0)
    opposite = {right: (-3.0, 0.0), up: (0.0, 3.0)}
    rows = []
    for camera, motion in (("a", right), ("b", up)):
        rows += [(camera, 0, *motion)] * 10 + [(camera, 1, *opposite[motion])] * 10
    df = pd.DataFrame(rows, columns=["dataset", "token_0", "flow_dx", "flow_dy"])
    cells = compass.compass_cells(TokenTable(df, df["token_0"].to_numpy(), 2))
    token0 = compass.per_token(cells)["0"]
    assert token0["angle_deg"] == pytest.approx({"a": 0.0, "b": 90.0})
    assert token0["angle_between_deg"] == pytest.approx(90.0)
    assert token0["centred_angle_between_deg"] == pytest.approx(90.0)
    assert token0["agreement"] == pytest.approx(np.cos(np.radians(45)))


def test_consistent_needs_the_agreement_to_cover_half_the_moving_pairs():
    """The verdict's blind spot behind the contradiction: an agreement over the few tokens
    the cameras share said CONSISTENT while most motion was coded by tokens one camera
    uses alone."""
    summary = {
        "direction_resultant_length": 0.8,
        "direction_resultant_length_pooled": 0.2,
        "direction_resultant_length_adjusted": 0.75,
        "agreement_chance": 0.63,
        "agreement_adjusted": 0.9,
        "codes_compared": 4,
        "rows_with_direction": 5387,
    }
    few = compass.verdict(summary | {"rows_compared": 2182})  # 41 %
    assert few.label == "PARTIAL"
    assert any("41%" in r and "do not share" in r for r in few.reasons), few.reasons
    assert compass.verdict(summary | {"rows_compared": 4000}).label == "CONSISTENT"  # 74 %
    assert compass.verdict(summary).label == "CONSISTENT"  # coverage unknown: not judged


def test_codebook_usage_marks_dead_codes_and_ticks_every_code(run):
    table, summary = run["table"], run["views"].summaries["across datasets"]
    counts = pd.crosstab(table.ids, table.df["dataset"]).reindex(range(N_CODES), fill_value=0)
    fig, ax = plots.plot_codebook_usage(counts, summary)
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(c) for c in range(N_CODES)]
    dead = [line for line in ax.get_lines() if line.get_label() == "dead code"][0]
    assert list(dead.get_xdata()) == [4, 6, 7]
    plt.close(fig)
