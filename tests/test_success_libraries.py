"""The success statistics against the libraries they are built on, and against independent
implementations of the same definitions: where nblib keeps a convention of its own
(R's continuity rule, the far tail of a two-sided power, SciPy's chi2 tail, binomial
count resampling), the tests show what the library alone would give and that the
definitions agree."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import StratifiedTable
from statsmodels.stats.proportion import power_proportions_2indep

from nblib.errors import ParameterError
from nblib.metrics.success import (
    adjust_pvalues,
    bootstrap_probability_of_improvement,
    clopper_pearson_interval,
    cochran_mantel_haenszel,
    compare_overall,
    detection_power,
    iqm_interval,
    stratified_bootstrap,
    wilson_interval,
)

COUNTS = [(0, 10), (1, 7), (3, 5), (5, 5), (13, 20), (42, 50), (48, 50), (491, 500)]


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_intervals_match_scipy_binomtest(confidence):
    # SciPy's binomtest is a second, independent implementation of both intervals
    for k, n in COUNTS:
        ci = stats.binomtest(k, n).proportion_ci(confidence, method="wilson")
        assert wilson_interval(k, n, confidence) == pytest.approx((ci.low, ci.high), abs=1e-12)
        ci = stats.binomtest(k, n).proportion_ci(confidence, method="exact")
        assert clopper_pearson_interval(k, n, confidence) == pytest.approx(
            (ci.low, ci.high), abs=1e-11
        )


def test_benjamini_hochberg_matches_scipy():
    p = np.random.default_rng(0).uniform(0, 0.2, size=15)
    np.testing.assert_allclose(
        adjust_pvalues(p, "bh"), stats.false_discovery_control(p, method="bh"), atol=1e-15
    )


def _table(sa, na, sb, nb):
    sa, na, sb, nb = (np.asarray(v) for v in (sa, na, sb, nb))
    return StratifiedTable(np.array([[sa, na - sa], [sb, nb - sb]], dtype=float))


def test_cmh_is_statsmodels_with_r_continuity_and_scipy_tail():
    counts = ([40, 30, 45], [50, 50, 50], [30, 28, 35], [50, 50, 50])
    out = cochran_mantel_haenszel(*counts)
    reference = _table(*counts).test_null_odds(correction=True)
    assert out["statistic"] == pytest.approx(reference.statistic, rel=1e-12)
    assert out["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
    assert out["odds_ratio"] == pytest.approx(_table(*counts).oddsratio_pooled, rel=1e-12)
    # |sum(a - E)| = |0 - 1 * 1 / 5| = 0.2 < 0.5: R applies no correction; statsmodels'
    # (|0.2| - 0.5)^2 would make the statistic larger
    small = ([0], [1], [1], [4])
    out = cochran_mantel_haenszel(*small)
    plain = _table(*small).test_null_odds(correction=False).statistic
    assert out["statistic"] == pytest.approx(plain, rel=1e-12)
    assert _table(*small).test_null_odds(correction=True).statistic > out["statistic"]
    # a huge difference: statsmodels' 1 - cdf is 0, SciPy's upper tail is not
    huge = ([70, 70], [100, 100], [20, 20], [100, 100])
    out = cochran_mantel_haenszel(*huge)
    assert _table(*huge).test_null_odds(correction=True).pvalue == 0.0
    assert out["statistic"] == pytest.approx(
        98.505, rel=1e-12
    )  # (2 (70 - 45) - 0.5)^2 / (2 * 12.437)
    assert out["p_value"] == pytest.approx(3.24205e-23, rel=1e-5)


def test_two_sided_power_ignores_the_far_tail():
    # statsmodels' two-sided power counts both tails; R's power.prop.test and nblib one
    for p1, p2, n in [(0.5, 0.75, 50), (0.9, 0.95, 200), (0.3, 0.3, 100)]:
        ours = detection_power(p1, p2, n)
        both = power_proportions_2indep(p2 - p1, p1, n, return_results=False)
        far = both - ours
        assert 0.0 <= far <= 0.025 + 1e-12
    assert detection_power(0.3, 0.3, 100) == pytest.approx(0.025)
    assert power_proportions_2indep(0.0, 0.3, 100, return_results=False) == pytest.approx(0.05)


def _outcomes(successes, trials):
    return [np.r_[np.ones(k), np.zeros(n - k)] for k, n in zip(successes, trials, strict=True)]


def _task_mean(*tasks, axis=-1):
    return np.mean([t.mean(axis=axis) for t in tasks], axis=0)


@pytest.mark.parametrize(
    ("successes", "trials"),
    [
        (np.arange(20) + 25, np.full(20, 50)),
        ([42, 3, 30, 9, 45, 20], [50, 8, 50, 10, 50, 25]),  # uneven, as interrupted runs
    ],
)
def test_binomial_count_bootstrap_is_episode_resampling(successes, trials):
    # redrawing a task's episodes with replacement (SciPy's bootstrap, one sample per
    # task) and drawing Binomial(n, k / n) are the same distribution: the intervals agree
    # within Monte Carlo error (4000 draws each: ~0.001 on either bound)
    mean, low, high = stratified_bootstrap(successes, trials, n_boot=4000, seed=1)
    reference = stats.bootstrap(
        _outcomes(successes, trials),
        _task_mean,
        n_resamples=4000,
        method="percentile",
        rng=np.random.default_rng(2),
    ).confidence_interval
    assert low == pytest.approx(reference.low, abs=0.006)
    assert high == pytest.approx(reference.high, abs=0.006)
    assert mean == pytest.approx(_task_mean(*_outcomes(successes, trials)))


def test_paired_bootstrap_is_episode_resampling():
    sa, na, sb, nb = [45, 30, 20, 40], [50, 50, 40, 50], [40, 32, 10, 35], [50, 50, 40, 50]
    out = compare_overall(sa, na, sb, nb, n_boot=4000, seed=1)
    tasks = len(sa)

    def diff(*samples, axis=-1):
        return _task_mean(*samples[:tasks], axis=axis) - _task_mean(*samples[tasks:], axis=axis)

    reference = stats.bootstrap(
        _outcomes(sa, na) + _outcomes(sb, nb),
        diff,
        n_resamples=4000,
        method="percentile",
        rng=np.random.default_rng(2),
    ).confidence_interval
    assert out["low"] == pytest.approx(reference.low, abs=0.01)
    assert out["high"] == pytest.approx(reference.high, abs=0.01)


def test_run_bootstraps_are_stratified_by_task():
    # runs that agree within every task leave a task-stratified bootstrap nothing to vary;
    # pooling runs across tasks would give a wide interval
    rng = np.random.default_rng(4)
    same = np.tile(rng.uniform(0, 1, size=8), (5, 1))
    point, low, high = iqm_interval(same, n_boot=300)
    assert (low, high) == pytest.approx((point, point), abs=1e-12)  # summed in another order
    p, low, high = bootstrap_probability_of_improvement(same + 0.01, same, n_boot=300)
    assert p == low == high == 1.0
    # one policy with a single run: only the other one's runs are redrawn
    x = rng.uniform(0.5, 1.0, size=(1, 6))
    y = rng.uniform(0.3, 0.9, size=(5, 6))
    p, low, high = bootstrap_probability_of_improvement(x, y, n_boot=500, seed=1)
    assert low < high and low <= p <= high


def test_counts_and_seeds_accept_numpy_ints_not_bools():
    n_boot, seed = np.int64(200), np.int32(3)
    assert stratified_bootstrap([3, 4], [5, 5], n_boot=n_boot, seed=seed) == (
        stratified_bootstrap([3, 4], [5, 5], n_boot=200, seed=3)
    )
    with pytest.raises(ParameterError, match="seed must be an int >= 0, got True"):
        stratified_bootstrap([3, 4], [5, 5], seed=True)
    with pytest.raises(ParameterError, match="trials must be an int >= 1"):
        detection_power(0.5, 0.6, np.bool_(True))
