"""Success-rate statistics against published values and independent calculations.

Known answers used here: R's documented examples of ``power.prop.test`` (power 0.740,
n = 76.7, p2 = 0.8026, n >= 74 for 0.9 vs 1) and ``mantelhaen.test`` (penicillin and
rabbits, Agresti 1990: p = 0.047; UC Berkeley admissions: X^2 = 1.4269, p = 0.2323, common
odds ratio 0.9047), JMP's two-proportion sample-size example (0.08 vs 0.06: 2554 per
group), closed forms (Clopper-Pearson at 0 / n, Wilson's formula, Fisher's test as a
hypergeometric sum) and exact enumeration of a z-test's power.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nblib.errors import ParameterError
from nblib.metrics.success import (
    adjust_pvalues,
    bootstrap_probability_of_improvement,
    clopper_pearson_interval,
    cochran_mantel_haenszel,
    compare_overall,
    compare_tasks,
    detection_power,
    iqm,
    iqm_interval,
    minimum_detectable_difference,
    probability_of_improvement,
    stratified_bootstrap,
    suite_interval,
    trials_needed,
    wilson_interval,
)
from nblib.metrics.success.aggregates import improvement

# Agresti (1990) pp. 231-237, R's mantelhaen.test example: penicillin given at once (A) or
# 1.5 h later (B), cured rabbits per penicillin level (5 strata).
RABBITS = ([0, 3, 6, 5, 2], [6, 6, 6, 6, 2], [0, 0, 2, 6, 5], [5, 6, 6, 6, 5])

# R's UCBAdmissions by department A-F: admitted / rejected, male (A) and female (B).
UCB_ADMIT_M = [512, 353, 120, 138, 53, 22]
UCB_REJECT_M = [313, 207, 205, 279, 138, 351]
UCB_ADMIT_F = [89, 17, 202, 131, 94, 24]
UCB_REJECT_F = [19, 8, 391, 244, 299, 317]


def _wilson_formula(k, n, confidence=0.95):
    """Wilson's score interval written out (independent of SciPy's implementation)."""
    z = stats.norm.isf((1 - confidence) / 2)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


def _exact_z_test_power(p1, p2, n, alpha=0.05):
    """Exact power of the two-sided pooled two-proportion z-test with n per arm: the
    probability of every (x1, x2) outcome that rejects, summed (no approximation)."""
    k = np.arange(n + 1)
    x1, x2 = k[:, None], k[None, :]
    pooled = (x1 + x2) / (2 * n)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x2 - x1) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    reject = np.abs(np.nan_to_num(z)) > stats.norm.isf(alpha / 2)  # 0/0: never rejects
    joint = stats.binom.pmf(k, n, p1)[:, None] * stats.binom.pmf(k, n, p2)[None, :]
    return float(joint[reject].sum())


# ---------------------------------------------------------------------------- intervals


def test_wilson_known_value_and_formula():
    low, high = wilson_interval(48, 50)
    assert (round(low, 3), round(high, 3)) == (0.865, 0.989)
    assert isinstance(low, float) and isinstance(high, float)
    for k, n in [(48, 50), (1, 7), (13, 20), (3, 3), (250, 500)]:
        for conf in (0.9, 0.95, 0.99):
            np.testing.assert_allclose(
                wilson_interval(k, n, conf), _wilson_formula(k, n, conf), rtol=0, atol=1e-12
            )


def test_wilson_edges_and_vectorised():
    z2 = stats.norm.isf(0.025) ** 2
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(z2 / (10 + z2), abs=1e-12)
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(10 / (10 + z2), abs=1e-12)
    low, high = wilson_interval([[0, 5, 10]], 10)  # broadcasts, keeps the shape
    assert low.shape == high.shape == (1, 3)
    np.testing.assert_allclose(high[0, 0], z2 / (10 + z2))
    assert low[0, 0] == 0.0 and high[0, 2] == 1.0
    assert low[0, 1] == pytest.approx(1 - high[0, 1])  # 5/10 is symmetric about 1/2
    # whole floats (counts read from a CSV) are counts too
    assert wilson_interval(48.0, 50.0) == wilson_interval(48, 50)


def test_clopper_pearson_known_values():
    low, high = clopper_pearson_interval(0, 10)
    assert low == 0.0 and round(high, 3) == 0.308
    assert high == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-12)  # closed form at 0/n
    low, high = clopper_pearson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.025 ** (1 / 10), abs=1e-12)
    # the defining property: each bound leaves alpha/2 of the binomial on the far side
    k, n = 7, 20
    low, high = clopper_pearson_interval(k, n)
    assert stats.binom.sf(k - 1, n, low) == pytest.approx(0.025, abs=1e-9)
    assert stats.binom.cdf(k, n, high) == pytest.approx(0.025, abs=1e-9)
    # exact coverage costs width: wider than Wilson for 48/50
    w_low, w_high = wilson_interval(48, 50)
    c_low, c_high = clopper_pearson_interval(48, 50)
    assert c_low < w_low and c_high > w_high
    lows, highs = clopper_pearson_interval([0, 10], [10, 10])
    np.testing.assert_allclose(lows, [0.0, 0.025 ** (1 / 10)])
    np.testing.assert_allclose(highs, [1 - 0.025 ** (1 / 10), 1.0])


@pytest.mark.parametrize("interval", [wilson_interval, clopper_pearson_interval])
@pytest.mark.parametrize(
    ("successes", "trials", "confidence", "named"),
    [
        (5, 0, 0.95, "trials"),  # no episodes: no rate
        (51, 50, 0.95, "successes"),
        ([1, 51], [50, 50], 0.95, r"successes\[1\]=51"),
        (-1, 50, 0.95, "successes"),
        (2.5, 50, 0.95, "successes"),
        (True, 50, 0.95, "successes"),
        ("3", 50, 0.95, "successes"),
        (3, float("nan"), 0.95, "trials"),
        ([1, 2, 3], [5, 5], 0.95, "same shape"),
        (3, 10, 0.0, "confidence"),
        (3, 10, 1.0, "confidence"),
        (3, 10, 95, "confidence"),
        (3, 10, float("nan"), "confidence"),
    ],
)
def test_interval_validation(interval, successes, trials, confidence, named):
    with pytest.raises(ParameterError, match=named):
        interval(successes, trials, confidence)


# ---------------------------------------------------------------------------- suite bootstrap


def test_stratified_bootstrap_matches_binomial_spread():
    # 20 tasks at 30/50: the suite mean's sd is sqrt(0.6 * 0.4 / 50 / 20) = 0.01549
    succ, trials = np.full(20, 30), np.full(20, 50)
    mean, low, high = stratified_bootstrap(succ, trials, n_boot=4000, seed=1)
    assert mean == pytest.approx(0.6)
    half = 1.959964 * math.sqrt(0.6 * 0.4 / 50 / 20)
    assert low == pytest.approx(0.6 - half, abs=0.004)
    assert high == pytest.approx(0.6 + half, abs=0.004)


def test_stratified_bootstrap_deterministic_and_saturated():
    succ, trials = np.arange(20) + 25, np.full(20, 50)
    assert stratified_bootstrap(succ, trials, seed=3) == stratified_bootstrap(succ, trials, seed=3)
    assert stratified_bootstrap(succ, trials, seed=3) != stratified_bootstrap(succ, trials, seed=4)
    succ, trials = [48, 30, 10], [50, 40, 20]
    mean, low, high = stratified_bootstrap(succ, trials, seed=3)
    assert mean == pytest.approx((0.96 + 0.75 + 0.5) / 3)  # tasks weigh equally
    assert low < mean < high
    # saturated tasks add no bootstrap variance: all at 0 % or 100 % -> width 0
    assert stratified_bootstrap([0, 50], [50, 50]) == (0.5, 0.5, 0.5)


def _wilson(p, n, z=1.959963984540054):
    """Wilson's score interval from its closed form (Wilson 1927), for any n > 0."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_suite_interval_never_narrower_than_the_episodes_allow():
    # 14 tasks of one episode, 12 successes: the bootstrap said [85.7, 85.7]
    assert stratified_bootstrap([1] * 12 + [0] * 2, [1] * 14)[1:] == (6 / 7, 6 / 7)
    mean, low, high, method = suite_interval([1] * 12 + [0] * 2, [1] * 14)
    assert method == "Wilson, effective n" and mean == pytest.approx(6 / 7)
    assert (low, high) == pytest.approx(_wilson(6 / 7, 14))  # the pooled 12/14
    assert high - low > 0.3
    # one episode, failed: the task's own Wilson interval, not [0, 0]
    assert suite_interval([0], [1])[1:3] == pytest.approx((0.0, 0.7934506856))
    assert suite_interval([0], [1])[1:3] == pytest.approx(wilson_interval(0, 1))
    # every task saturated, many episodes: still an interval (500/500 pooled)
    mean, low, high, method = suite_interval([50] * 10, [50] * 10)
    assert (mean, high) == (1.0, 1.0) and low == pytest.approx(_wilson(1.0, 500)[0])
    assert suite_interval([0, 50], [50, 50])[1:3] == pytest.approx(_wilson(0.5, 100))
    # unequal episodes: the mean's Wilson interval at n_eff = T^2 / sum(1 / n_t)
    mean, low, high, _ = suite_interval([3, 2], [4, 8])
    assert mean == pytest.approx(0.5)
    assert (low, high) == pytest.approx(_wilson(0.5, 4 / (1 / 4 + 1 / 8)))


def test_suite_interval_keeps_the_bootstrap_where_it_is_valid():
    succ, trials = [48, 30, 10], [50, 40, 20]
    mean, low, high, method = suite_interval(succ, trials, n_boot=500, seed=3)
    assert method == "stratified bootstrap"
    assert (mean, low, high) == stratified_bootstrap(succ, trials, n_boot=500, seed=3)
    with pytest.raises(ParameterError, match="successes must be <= trials"):
        suite_interval([2], [1])


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"successes": [[1, 2]], "trials": [[5, 5]]}, "successes must be 1-D"),
        ({"successes": [], "trials": []}, "successes must be 1-D"),
        ({"successes": [1, 2], "trials": [5, 5, 5]}, "same shape"),
        ({"successes": [1, 6], "trials": [5, 5]}, r"successes\[1\]=6"),
        ({"n_boot": 0}, "n_boot"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"confidence": 1.2}, "confidence"),
    ],
)
def test_stratified_bootstrap_validation(kwargs, named):
    args = {"successes": [1, 2], "trials": [5, 5]} | kwargs
    with pytest.raises(ParameterError, match=named):
        stratified_bootstrap(**args)


# ---------------------------------------------------------------------------- per-task tests


def _holm(p):
    return adjust_pvalues(p, "holm")


def test_holm_and_bh_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max
    np.testing.assert_allclose(_holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(_holm(np.array([0.5, 0.9])), [1.0, 1.0])  # capped at 1
    np.testing.assert_allclose(_holm(np.array([0.2])), [0.2])
    # BH: p_(i) * m / i = 0.02, 0.02, 0.04, 0.04 -> running minimum from the largest down
    np.testing.assert_allclose(adjust_pvalues(p, "bh"), [0.02, 0.04, 0.04, 0.02])
    # NaN (a test that could not be made) stays NaN and is not counted in the family
    with_nan = adjust_pvalues([0.01, float("nan"), 0.04], "holm")
    np.testing.assert_allclose(with_nan, [0.02, np.nan, 0.04])
    np.testing.assert_array_equal(adjust_pvalues(p, "none"), p)
    with pytest.raises(ParameterError, match="correction='sidak' is unknown"):
        adjust_pvalues(p, "sidak")


def test_compare_tasks_fisher_value_and_table():
    table = compare_tasks(
        [50, 45, 30],
        [50, 50, 50],
        [45, 45, 20],
        [50, 50, 50],
        test="fisher",
        tasks=["pick", "push", "door"],
    )
    assert list(table.columns) == [
        "successes_a",
        "trials_a",
        "successes_b",
        "trials_b",
        "rate_a",
        "rate_b",
        "diff",
        "p_value",
        "p_adjusted",
        "significant",
    ]
    assert table.index.name == "task" and list(table.index) == ["pick", "push", "door"]
    np.testing.assert_allclose(table["diff"], [0.1, 0.0, 0.2])  # A - B
    # 50/50 vs 45/50: all 5 failures in B; two-sided Fisher = both extreme tables
    fisher = 2 * math.comb(50, 5) / math.comb(100, 5)
    assert table.loc["pick", "p_value"] == pytest.approx(fisher, rel=1e-9)
    assert fisher == pytest.approx(0.05628, abs=1e-5)
    assert table.loc["push", "p_value"] == pytest.approx(1.0)  # same counts
    np.testing.assert_allclose(table["p_adjusted"], _holm(table["p_value"].to_numpy()))
    assert not table["significant"].any()


def test_compare_tasks_exact_unconditional_tests():
    succ_a, succ_b, n = [50, 40, 12, 25], [45, 30, 3, 25], [50, 50, 50, 50]
    fisher = compare_tasks(succ_a, n, succ_b, n, test="fisher", correction="none")
    boschloo = compare_tasks(succ_a, n, succ_b, n, test="boschloo", correction="none")
    barnard = compare_tasks(succ_a, n, succ_b, n, test="barnard", correction="none")
    # Boschloo uses Fisher's p as its statistic and is uniformly more powerful
    assert (boschloo["p_value"] <= fisher["p_value"] + 1e-12).all()
    assert boschloo.loc[0, "p_value"] == pytest.approx(0.0352, abs=2e-4)  # vs Fisher 0.0563
    # each column of SciPy's table is one run
    ref = stats.barnard_exact([[40, 30], [10, 20]]).pvalue
    assert barnard.loc[1, "p_value"] == pytest.approx(ref, rel=1e-9)
    assert barnard.loc[3, "p_value"] == pytest.approx(1.0)
    np.testing.assert_array_equal(boschloo["p_adjusted"], boschloo["p_value"])  # "none"


def test_compare_tasks_corrections():
    succ_a, succ_b, n = [50, 40, 12, 30], [45, 30, 3, 25], [50, 50, 50, 50]
    holm = compare_tasks(succ_a, n, succ_b, n, test="fisher", correction="holm", alpha=0.05)
    bh = compare_tasks(succ_a, n, succ_b, n, test="fisher", correction="bh", alpha=0.05)
    p = holm["p_value"].to_numpy()
    # Benjamini-Hochberg by hand: p_(i) * m / i, running minimum from the largest down
    order = np.argsort(p)
    scaled = p[order] * len(p) / np.arange(1, len(p) + 1)
    expected = np.empty_like(p)
    expected[order] = np.minimum.accumulate(scaled[::-1])[::-1]
    np.testing.assert_allclose(bh["p_adjusted"], np.minimum(expected, 1.0))
    np.testing.assert_allclose(holm["p_adjusted"], _holm(p))
    assert (holm["p_adjusted"] >= bh["p_adjusted"] - 1e-12).all()  # Holm is stricter
    assert holm["significant"].tolist() == (holm["p_adjusted"] <= 0.05).tolist()
    # two tasks pass p < 0.05 alone (0.049, 0.023); neither survives testing four at once
    plain = compare_tasks(succ_a, n, succ_b, n, test="fisher", correction="none")
    assert plain["significant"].tolist() == [False, True, True, False]
    assert not holm["significant"].any() and not bh["significant"].any()
    np.testing.assert_allclose(holm["p_adjusted"], [0.14574, 0.14574, 0.09042, 0.42155], atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"test": "chi2"}, "test='chi2' is unknown"),
        ({"correction": "bonferroni"}, "correction='bonferroni' is unknown"),
        ({"alpha": 0.0}, "alpha"),
        ({"succ_b": [1, 2, 3], "trials_b": [5, 5, 5]}, "same tasks"),
        ({"succ_a": [6, 2]}, r"succ_a\[0\]=6"),
        ({"trials_b": [5, 0]}, "trials_b"),
        ({"tasks": ["only one"]}, "tasks must be a sequence of 2"),
    ],
)
def test_compare_tasks_validation(kwargs, named):
    args = {"succ_a": [1, 2], "trials_a": [5, 5], "succ_b": [1, 2], "trials_b": [5, 5]}
    with pytest.raises(ParameterError, match=named):
        compare_tasks(**(args | kwargs))


# ---------------------------------------------------------------------------- suite tests


def test_cmh_penicillin_rabbits():
    out = cochran_mantel_haenszel(*RABBITS)
    # R: Mantel-Haenszel X-squared = 3.9286, df = 1, p-value = 0.04747. By hand:
    # sum(a - E) = 1.5 + 2 - 0.5 = 3, sum(V) = 0.6136 + 0.7273 + 0.25 -> (3 - 0.5)^2 / 1.5909
    assert out["statistic"] == pytest.approx(6.25 / (35 / 22), rel=1e-12)
    assert out["statistic"] == pytest.approx(3.9286, abs=1e-4)
    assert out["p_value"] == pytest.approx(0.04747, abs=1e-5)
    assert out["odds_ratio"] == pytest.approx(7.0)  # (1.5 + 2) / 0.5
    plain = cochran_mantel_haenszel(*RABBITS, continuity=False)
    assert plain["statistic"] == pytest.approx(9 / (35 / 22), rel=1e-12)


def test_cmh_ucb_admissions():
    out = cochran_mantel_haenszel(
        UCB_ADMIT_M,
        np.add(UCB_ADMIT_M, UCB_REJECT_M),
        UCB_ADMIT_F,
        np.add(UCB_ADMIT_F, UCB_REJECT_F),
    )
    assert out["statistic"] == pytest.approx(1.4269, abs=1e-4)
    assert out["p_value"] == pytest.approx(0.2323, abs=1e-4)
    assert out["odds_ratio"] == pytest.approx(0.9047, abs=1e-4)


def test_cmh_symmetry_and_degenerate_cases():
    sa, na, sb, nb = RABBITS
    swapped = cochran_mantel_haenszel(sb, nb, sa, na)
    assert swapped["statistic"] == pytest.approx(3.9286, abs=1e-4)
    assert swapped["odds_ratio"] == pytest.approx(1 / 7)
    # |sum(a - E)| < 0.5: no correction, statistic 0, p = 1
    out = cochran_mantel_haenszel([1], [2], [1], [2])
    assert out["statistic"] == 0.0 and out["p_value"] == pytest.approx(1.0)
    # every task saturated in both runs: nothing was tested
    out = cochran_mantel_haenszel([50, 0], [50, 50], [50, 0], [50, 50])
    assert math.isnan(out["statistic"]) and math.isnan(out["p_value"])


def test_compare_overall_rabbits_and_identity():
    out = compare_overall(*RABBITS, n_boot=2000, seed=0)
    sa, na, sb, nb = (np.asarray(x) for x in RABBITS)
    assert out["rate_a"] == pytest.approx(np.mean(sa / na))
    assert out["rate_b"] == pytest.approx(np.mean(sb / nb))
    assert out["diff"] == pytest.approx(out["rate_a"] - out["rate_b"])
    assert out["low"] < out["diff"] < out["high"]
    assert out["p_value"] == pytest.approx(0.04747, abs=1e-5)
    assert out["n_tasks"] == 5 and out["confidence"] == 0.95
    assert compare_overall(*RABBITS, seed=0) == compare_overall(*RABBITS, seed=0)
    # identical evaluations: no difference, an interval around 0, CMH statistic 0
    same = compare_overall([40, 30], [50, 50], [40, 30], [50, 50], n_boot=4000)
    assert same["diff"] == 0.0 and same["low"] < 0 < same["high"]
    assert same["low"] == pytest.approx(-same["high"], abs=0.02)
    assert same["statistic"] == 0.0


def test_compare_overall_validation():
    with pytest.raises(ParameterError, match="same tasks"):
        compare_overall([1, 2], [5, 5], [1], [5])
    with pytest.raises(ParameterError, match="n_boot"):
        compare_overall([1], [5], [1], [5], n_boot=0)
    with pytest.raises(ParameterError, match="succ_b"):
        compare_overall([1], [5], [6], [5])


# ---------------------------------------------------------------------------- runs x tasks


def test_iqm_known_values():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert iqm([1, 2, 3, 4, 5, 6, 7, 1000]) == pytest.approx(4.5)  # outlier cut
    assert iqm([0, 1, 2, 3]) == pytest.approx(1.5)
    assert iqm([1, 2, 9]) == pytest.approx(4.0)  # n < 4: nothing cut, the mean
    scores = np.array([[1, 10], [2, 20], [3, 30], [4, 1000]], dtype=float)
    np.testing.assert_allclose(iqm(scores, axis=0), [2.5, 25.0])
    assert iqm(scores) == pytest.approx(np.mean([3, 4, 10, 20]))  # pooled, as the paper
    with pytest.raises(ParameterError, match="finite"):
        iqm([1.0, float("nan")])
    with pytest.raises(ParameterError, match="empty"):
        iqm([])
    with pytest.raises(ParameterError, match="axis"):
        iqm(scores, axis=2)


def test_iqm_interval():
    rng = np.random.default_rng(5)
    scores = rng.uniform(0.4, 0.9, size=(5, 8))
    point, low, high = iqm_interval(scores, n_boot=1000, seed=2)
    assert point == pytest.approx(iqm(scores))
    assert low < point < high
    assert iqm_interval(scores, n_boot=1000, seed=2) == (point, low, high)
    # one run per task: nothing to resample
    one = np.array([[0.1, 0.5, 0.9, 0.7]])
    assert iqm_interval(one, n_boot=50) == pytest.approx((iqm(one),) * 3)
    with pytest.raises(ParameterError, match=r"scores\[:, None\]"):
        iqm_interval([0.5, 0.6])


def test_probability_of_improvement_by_hand_and_mann_whitney():
    # pairs (1,1) tie, (1,3) loss, (2,1) win, (2,3) loss -> 1.5 / 4
    assert probability_of_improvement([[1], [2]], [[1], [3]]) == pytest.approx(0.375)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=(6, 4)) / 4  # coarse scores: many ties
    y = rng.integers(0, 5, size=(9, 4)) / 4
    u = stats.mannwhitneyu(x, y, axis=0).statistic  # U of x, ties counted 1/2
    assert probability_of_improvement(x, y) == pytest.approx(np.mean(u / (6 * 9)))
    assert probability_of_improvement(x, y) + probability_of_improvement(y, x) == pytest.approx(1)
    assert probability_of_improvement(x, x) == pytest.approx(0.5)
    assert probability_of_improvement(y + 2, y) == 1.0


def test_improvement_batches_match_pair_counting():
    # the bootstrap's vectorised statistic: task columns (replicates, runs) of x, then y
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, size=(7, 4, 3)).astype(float)  # (replicates, runs, tasks)
    y = rng.integers(0, 3, size=(7, 5, 3)).astype(float)
    batched = improvement(*np.moveaxis(x, -1, 0), *np.moveaxis(y, -1, 0), axis=-1)
    assert batched.shape == (7,)
    for r in range(7):
        wins = (x[r][:, None, :] > y[r][None, :, :]).mean(axis=(0, 1))
        ties = (x[r][:, None, :] == y[r][None, :, :]).mean(axis=(0, 1))
        assert batched[r] == pytest.approx(np.mean(wins + ties / 2), abs=1e-12)
        assert batched[r] == pytest.approx(probability_of_improvement(x[r], y[r]), abs=1e-12)


def test_bootstrap_probability_of_improvement():
    rng = np.random.default_rng(3)
    x = rng.normal(0.7, 0.05, size=(5, 6))
    y = rng.normal(0.6, 0.05, size=(5, 6))
    p, low, high = bootstrap_probability_of_improvement(x, y, n_boot=1000, seed=0)
    assert p == pytest.approx(probability_of_improvement(x, y))
    assert 0.5 < low <= p <= high <= 1.0
    assert bootstrap_probability_of_improvement(x, y, n_boot=1000, seed=0) == (p, low, high)
    # X always better: every resample agrees
    assert bootstrap_probability_of_improvement(y + 1, y, n_boot=200) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("x", "y", "named"),
    [
        ([0.1, 0.2], [[0.1]], "x must be 2-D"),
        ([[0.1, 0.2]], [[0.1]], "y has 1 tasks"),
        ([[0.1, float("inf")]], [[0.1, 0.2]], r"x\[0, 1\]=inf"),
        (np.zeros((0, 2)), [[0.1, 0.2]], "x must be 2-D"),
    ],
)
def test_probability_of_improvement_validation(x, y, named):
    with pytest.raises(ParameterError, match=named):
        probability_of_improvement(x, y)
    with pytest.raises(ParameterError, match=named):
        bootstrap_probability_of_improvement(x, y, n_boot=10)


# ---------------------------------------------------------------------------- power


def test_power_matches_r_and_jmp_examples():
    # R: power.prop.test(n = 50, p1 = .50, p2 = .75) => power = 0.740
    assert detection_power(0.5, 0.75, 50) == pytest.approx(0.7401659, abs=1e-6)
    # R: power.prop.test(p1 = .50, p2 = .75, power = .90) => n = 76.7
    assert trials_needed(0.5, 0.75, power=0.9) == 77
    # R: power.prop.test(n = 50, p1 = .5, power = .90) => p2 = 0.8026
    assert minimum_detectable_difference(0.5, 50, power=0.9) == pytest.approx(0.3026, abs=2e-4)
    # R's note: (p1, p2) = (0.9, 1) needs n >= 74
    assert trials_needed(0.9, 1.0) == 74
    # JMP: 0.08 vs 0.06, alpha 0.05 two-sided, power 0.8 => 2554 per group
    assert trials_needed(0.08, 0.06) == 2554


def test_power_against_exact_enumeration():
    # the z-test's exact power at the approximate sample size is close to the target
    n = trials_needed(0.95, 0.97)
    assert n == 1506
    assert _exact_z_test_power(0.95, 0.97, n) == pytest.approx(0.80, abs=0.01)
    assert _exact_z_test_power(0.5, 0.75, 77) == pytest.approx(0.90, abs=0.01)
    mdd = minimum_detectable_difference(0.95, 500)
    assert mdd == pytest.approx(0.0321, abs=1e-4)
    assert detection_power(0.95, 0.95 + mdd, 500) == pytest.approx(0.8, abs=1e-9)
    assert _exact_z_test_power(0.95, 0.95 + mdd, 500) == pytest.approx(0.80, abs=0.02)


def test_minimum_detectable_difference_edges():
    # at 95 % with 50 trials no improvement is detectable: even 1.0 needs 152 per arm
    assert math.isnan(minimum_detectable_difference(0.95, 50))
    assert trials_needed(0.95, 1.0) == 152
    assert minimum_detectable_difference(0.95, 152) == pytest.approx(0.05, abs=1e-3)
    assert math.isnan(minimum_detectable_difference(0.95, 151))
    # a drop is the improvement of the failure rate: 95 % -> ~75 % with 50 trials
    drop = minimum_detectable_difference(1 - 0.95, 50)
    assert drop == pytest.approx(0.1969, abs=1e-3)
    assert detection_power(0.95, 0.95 - drop, 50) == pytest.approx(0.8, abs=1e-9)
    # more trials, smaller detectable gains; one-sided tests need fewer trials
    assert minimum_detectable_difference(0.5, 500) < minimum_detectable_difference(0.5, 50)
    assert trials_needed(0.5, 0.6, two_sided=False) < trials_needed(0.5, 0.6)
    assert minimum_detectable_difference(0.0, 100) > 0
    # equal rates: the test rejects at its nominal tail rate
    assert detection_power(0.3, 0.3, 100) == pytest.approx(0.025)
    assert detection_power(0.0, 1.0, 10) == 1.0


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: trials_needed(0.5, 0.5), "rate_a and rate_b are both"),
        (lambda: trials_needed(-0.1, 0.5), "rate_a"),
        (lambda: trials_needed(0.5, 1.1), "rate_b"),
        (lambda: trials_needed(0.5, 0.6, alpha=0), "alpha"),
        (lambda: trials_needed(0.5, 0.6, power=1.0), "power"),
        (lambda: trials_needed(0.5, 0.6, power=0.01), "power must exceed"),
        (lambda: trials_needed(0.5, 0.6, two_sided="yes"), "two_sided"),
        (lambda: minimum_detectable_difference(1.0, 50), "rate must be < 1"),
        (lambda: minimum_detectable_difference(0.5, 0), "trials"),
        (lambda: minimum_detectable_difference(0.5, 50.0), "trials"),
        (lambda: detection_power(0.5, 0.6, 0), "trials"),
        (lambda: detection_power(0.5, float("nan"), 10), "rate_b"),
    ],
)
def test_power_validation(call, named):
    with pytest.raises(ParameterError, match=named):
        call()


def test_compare_tasks_returns_dataframe_for_one_task():
    table = compare_tasks([3], [10], [7], [10], test="fisher")
    assert isinstance(table, pd.DataFrame) and len(table) == 1
    assert table["p_adjusted"].iloc[0] == table["p_value"].iloc[0]  # nothing to adjust
