"""The intervals verdicts are decided from (nblib.metrics.estimates, nblib.verdict.Estimate):
known answers on data with a known spread, determinism, and bad input named."""

from __future__ import annotations

import numpy as np
import pytest

from nblib.errors import ParameterError
from nblib.metrics.estimates import (
    bootstrap_clusters,
    bootstrap_mean,
    bootstrap_ratio,
    bootstrap_rows,
    bootstrap_two,
)
from nblib.verdict import Estimate, straddle_note


def test_mean_interval_has_the_width_the_standard_error_gives():
    x = np.random.default_rng(0).normal(2.0, 1.0, 400)
    est = bootstrap_mean(x, "samples", seed=1)
    assert est.value == pytest.approx(x.mean())
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))  # ~0.098
    assert est.low < est.value < est.high
    assert (est.high - est.low) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap_mean(x, "samples", seed=1) == est  # seeded: the same on every call
    assert "bootstrap over 400 samples" in est.method


def test_ratio_is_the_pooled_ratio_and_identical_rows_give_a_point():
    num, den = np.array([1.0, 2.0, 3.0, 6.0]), np.array([1.0, 1.0, 2.0, 4.0])
    est = bootstrap_ratio(num, den, "samples")
    assert est.value == pytest.approx(12 / 8)
    same = bootstrap_ratio(np.full(5, 2.0), np.full(5, 4.0), "samples")
    assert (same.low, same.value, same.high) == (0.5, 0.5, 0.5)


def test_rows_statistic_vectorised_over_resamples():
    x = np.random.default_rng(2).normal(size=200)

    def var(idx):  # (N,) or (B, N) indices
        return x[idx].var(axis=-1)

    est = bootstrap_rows(len(x), var, "rows")
    assert est.value == pytest.approx(x.var())
    assert est.low < x.var() < est.high


def test_two_samples_resampled_on_their_own():
    a = np.random.default_rng(3).normal(10.0, 1.0, 50)
    b = np.random.default_rng(4).normal(8.0, 1.0, 50)

    def drop(u, v, axis=-1):
        return np.mean(u, axis=axis) - np.mean(v, axis=axis)

    est = bootstrap_two(a, b, drop, "ends")
    assert est.low > 1.0 and est.high < 3.0 and est.low < est.value < est.high


def test_cluster_bootstrap_is_wider_than_the_row_bootstrap_on_clustered_data():
    """20 demos of 30 frames each, the frames of a demo alike: resampling frames pretends
    600 independent values; resampling demos knows there are 20."""
    rng = np.random.default_rng(5)
    demo = np.repeat(np.arange(20), 30)
    x = rng.normal(size=20)[demo] + 0.1 * rng.normal(size=600)
    clustered = bootstrap_clusters(demo, lambda rows: x[rows].mean(), "demos")
    rows = bootstrap_mean(x, "frames")
    assert clustered.value == pytest.approx(rows.value)
    assert (clustered.high - clustered.low) > 3 * (rows.high - rows.low)
    assert "cluster bootstrap over 20 demos" in clustered.method
    one = bootstrap_clusters(np.zeros(5), lambda rows: 1.0, "demos")
    assert one.low == one.high == 1.0  # one cluster: nothing to resample


def test_bad_input_is_named():
    with pytest.raises(ParameterError, match="NaN or Inf"):
        bootstrap_mean([1.0, np.nan], "samples")
    with pytest.raises(ParameterError, match="1-D arrays of one length"):
        bootstrap_ratio([1.0, 2.0], [1.0], "samples")
    with pytest.raises(ParameterError, match="two 1-D samples"):
        bootstrap_two([1.0], [1.0, 2.0], lambda u, v, axis=-1: 0.0, "ends")
    with pytest.raises(ParameterError, match="low=2.0 > high=1.0"):
        Estimate(1.5, 2.0, 1.0)


def test_estimate_sides_and_the_straddle_note():
    est = Estimate(0.52, 0.44, 0.61, "95% cluster bootstrap over 50 demos")
    assert est.straddles(0.5) and not est.above(0.5) and not est.below(0.5)
    assert est.above(0.2) and est.below(0.7)
    assert est.numbers("r") == {"r": 0.52, "r_low": 0.44, "r_high": 0.61}
    note = straddle_note("the concentration", est, (0.5, 0.2))
    assert "straddles the threshold 0.5" in note and "cluster bootstrap" in note
    assert straddle_note("x", Estimate(0.8, 0.7, 0.9), (0.5,)) is None
