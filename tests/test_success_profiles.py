"""Performance profiles: the glue (score distributions, tau grid, stratified bands) on
hand-counted matrices, and the comparison study's plot of them."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from nblib.errors import ParameterError
from nblib.metrics.success import episode_outcomes, performance_profiles
from nblib.studies.comparison.plots import plot_performance_profiles

TAUS = [0.0, 0.25, 0.5, 0.75, 1.0]
# (runs, tasks): 2 runs of 3 tasks; task means 0.1, 0.55, 0.95
SCORES = np.array([[0.0, 0.5, 1.0], [0.2, 0.6, 0.9]])


def _method(table, method):
    return table[table["method"] == method].reset_index(drop=True)


def test_score_and_average_distributions_by_hand():
    table = performance_profiles({"a": SCORES}, taus=TAUS, n_boot=200)
    assert list(table.columns) == ["method", "tau", "profile", "ci_low", "ci_high"]
    # scores above tau, of 6: 0.0 is not above 0; 0.5 is not above 0.5; none above 1
    np.testing.assert_allclose(table["profile"], np.array([5, 4, 3, 2, 0]) / 6)
    np.testing.assert_array_equal(table["tau"], TAUS)
    average = performance_profiles({"a": SCORES}, taus=TAUS, average=True, n_boot=200)
    np.testing.assert_allclose(average["profile"], np.array([3, 2, 2, 1, 0]) / 3)


def test_bands_are_ordered_monotone_and_deterministic():
    rng = np.random.default_rng(0)
    scores = {"x": rng.uniform(0.2, 1.0, size=(5, 10)), "y": rng.uniform(0, 0.8, size=(4, 10))}
    table = performance_profiles(scores, n_boot=500, seed=3)
    assert len(table) == 2 * 101 and list(dict.fromkeys(table["method"])) == ["x", "y"]
    for method in ("x", "y"):
        part = _method(table, method)
        for column in ("profile", "ci_low", "ci_high"):
            # every replicate's profile falls with tau, so do its percentiles
            assert (np.diff(part[column]) <= 0).all(), column
        assert ((0 <= part["ci_low"]) & (part["ci_low"] <= part["ci_high"])).all()
        assert (part["ci_high"] <= 1).all()
        assert (part["ci_high"] - part["ci_low"]).max() > 0  # runs differ: a real band
    pd.testing.assert_frame_equal(table, performance_profiles(scores, n_boot=500, seed=3))
    # each method's band is drawn alone: dropping y leaves x's as it was
    alone = performance_profiles({"x": scores["x"]}, n_boot=500, seed=3)
    pd.testing.assert_frame_equal(alone, _method(table, "x"))


def test_bands_resample_runs_within_tasks_only():
    # runs identical within every task: a task-stratified bootstrap has nothing to vary
    # (resampling tasks, or pooling all scores, would give a band)
    same = np.tile([0.1, 0.4, 0.7, 0.9], (6, 1))
    table = performance_profiles({"a": same}, taus=TAUS, n_boot=300)
    np.testing.assert_array_equal(table["ci_low"], table["profile"])
    np.testing.assert_array_equal(table["ci_high"], table["profile"])
    # one run per task: nothing to redraw either
    one = performance_profiles({"a": same[:1]}, taus=TAUS, n_boot=300)
    np.testing.assert_array_equal(one["ci_high"] - one["ci_low"], 0.0)


def test_episode_outcomes_give_the_fraction_of_tasks_above_each_rate():
    outcomes = episode_outcomes([3, 0, 5, 4], [5, 5, 5, 5])
    assert outcomes.shape == (5, 4)
    np.testing.assert_array_equal(outcomes.sum(axis=0), [3, 0, 5, 4])
    assert set(np.unique(outcomes)) <= {0.0, 1.0}
    table = performance_profiles({"run": outcomes}, taus=TAUS, average=True, n_boot=400)
    # task rates 0.6, 0, 1, 0.8: above 0 three, above 0.25 and 0.5 three, above 0.75 two
    np.testing.assert_allclose(table["profile"], [0.75, 0.75, 0.75, 0.5, 0.0])
    # the 0 % and 100 % tasks never move; the others can, so the band is not flat
    assert (table["ci_high"] - table["ci_low"]).max() > 0
    # below tau = 1 the 100 % task is always above and the 0 % task never
    inner = table[table["tau"] < 1]
    assert (inner["ci_low"] >= 0.25).all() and (inner["ci_high"] <= 0.75).all()


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: performance_profiles({}), "non-empty mapping"),
        (lambda: performance_profiles([SCORES]), "mapping"),
        (lambda: performance_profiles({"a": SCORES[0]}), r"scores\['a'\] must be 2-D"),
        (lambda: performance_profiles({"a": SCORES}, taus=[0.5, 0.2]), "strictly increasing"),
        (lambda: performance_profiles({"a": SCORES}, taus=[]), "taus must be 1-D"),
        (lambda: performance_profiles({"a": SCORES}, average="yes"), "average"),
        (lambda: performance_profiles({"a": SCORES}, n_boot=0), "n_boot"),
        (lambda: episode_outcomes([1, 2], [5, 6]), r"trials\[1\]=6"),
    ],
)
def test_profile_validation(call, named):
    with pytest.raises(ParameterError, match=named):
        call()


def test_plot_performance_profiles():
    table = performance_profiles(
        {"a": SCORES, "b": SCORES * 0.5}, taus=np.linspace(0, 1, 21), n_boot=200
    )
    colours = {"a": "#1f77b4", "b": "#d62728"}
    fig, ax = plot_performance_profiles(table, colours)
    try:
        assert len(ax.lines) == 2 and len(ax.collections) == 2  # a line and a band each
        for line, method in zip(ax.lines, ["a", "b"], strict=True):
            assert line.get_label() == method and line.get_color() == colours[method]
            x, y = line.get_xdata(), line.get_ydata()
            assert x.shape == y.shape == (21,)
            assert (np.diff(y) <= 0).all()  # non-increasing in tau
            assert y[-1] == 0.0  # nothing is above the top score 1
        a, b = ax.lines[0].get_ydata(), ax.lines[1].get_ydata()
        assert a[0] == pytest.approx(5 / 6) and b[0] == pytest.approx(5 / 6)  # 0.0 is not > 0
        assert ax.get_xlim() == (0.0, 1.0)
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    finally:
        plt.close(fig)
