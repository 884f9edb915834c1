"""One success rate's interval, and two policies' rates compared task by task or over a
suite: statsmodels' proportion intervals, multiple-testing corrections and stratified 2x2
tables, SciPy's exact tests.

Counts are ``successes`` and ``trials`` (whole numbers, successes <= trials, trials >= 1),
per task (T,) where a function works on a suite. Differences are A - B.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import StratifiedTable
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from nblib.errors import ParameterError
from nblib.metrics.success import checks

# compare_tasks' tests, by name. Boschloo is uniformly more powerful than Fisher's test
# and as exact; see compare_tasks for what it costs.
TESTS = {
    "boschloo": stats.boschloo_exact,
    "barnard": stats.barnard_exact,
    "fisher": stats.fisher_exact,
}
# our names -> statsmodels' multipletests methods
CORRECTIONS = {"holm": "holm", "bh": "fdr_bh", "none": None}


# ---------------------------------------------------------------------------- one rate


def _confint(successes, trials, confidence, method: str):
    k, n = checks.counts(successes, trials)
    confidence = checks.open_unit("confidence", confidence)
    low, high = proportion_confint(k, n, alpha=1.0 - confidence, method=method)
    low = np.clip(np.asarray(low, dtype=np.float64), 0.0, 1.0)
    high = np.clip(np.asarray(high, dtype=np.float64), 0.0, 1.0)
    # 0/n and n/n have bounds of exactly 0 and 1; statsmodels' Wilson arithmetic lands a
    # rounding error away (5.6e-17, 0.9999999999999999), which a "100 %" cell would show
    low = np.where(k == 0, 0.0, low)
    high = np.where(k == n, 1.0, high)
    if low.ndim == 0:  # scalar counts in, Python floats out
        return float(low), float(high)
    return low, high


def wilson_interval(successes, trials, confidence: float = 0.95):
    """Wilson score interval of a success rate (statsmodels' ``proportion_confint(method=
    "wilson")``, no continuity correction).

    successes, trials: whole numbers >= 0 of any broadcastable shapes, trials >= 1,
    successes <= trials. Returns (low, high) fractions in [0, 1]: floats for scalar input,
    arrays of the broadcast shape otherwise. 48/50 -> (0.865, 0.989); 0/n has low = 0 and
    n/n has high = 1 exactly. trials = 0 raises ParameterError (no episodes, no rate)
    rather than returning a NaN that would vanish into a table.

    Wilson's coverage is close to nominal even for small n and rates near 0 or 1, where the
    textbook Wald interval p +- z sqrt(p(1-p)/n) collapses (to [1, 1] for 50/50).
    """
    return _confint(successes, trials, confidence, "wilson")


def clopper_pearson_interval(successes, trials, confidence: float = 0.95):
    """Clopper-Pearson ("exact") interval of a success rate (statsmodels'
    ``proportion_confint(method="beta")``: beta quantiles).

    Inputs and output as :func:`wilson_interval`. Guaranteed coverage >= ``confidence``
    for every true rate, so it is wider than Wilson: 0/10 -> (0, 0.308), where 0.308 =
    1 - 0.025 ** (1 / 10). Use it when a claim must hold for sure ("the success rate is at
    least x"), Wilson for the best estimate of the uncertainty.
    """
    return _confint(successes, trials, confidence, "beta")


# ---------------------------------------------------------------------------- per task


def _correction(correction: str) -> str | None:
    if correction not in CORRECTIONS:
        raise ParameterError(
            f"correction={correction!r} is unknown; expected one of {list(CORRECTIONS)}"
        )
    return CORRECTIONS[correction]


def adjust_pvalues(p, correction: str = "holm") -> np.ndarray:
    """p-values of one family of tests, adjusted (statsmodels' ``multipletests``): ``holm``
    (Holm's step-down, family-wise error rate), ``bh`` (Benjamini-Hochberg, false
    discovery rate) or ``none``. NaN stays NaN (a test that could not be made) and does
    not count in the family. Returns a float array of p's shape."""
    method = _correction(correction)
    p = np.asarray(p, dtype=np.float64)
    out = p.copy()
    known = np.isfinite(p)
    if method is not None and known.any():
        out[known] = multipletests(p[known], method=method)[1]
    return out


def compare_tasks(
    succ_a,
    trials_a,
    succ_b,
    trials_b,
    test: str = "boschloo",
    correction: str = "holm",
    alpha: float = 0.05,
    tasks: Sequence | None = None,
) -> pd.DataFrame:
    """Policy A against policy B on every task: an exact test per task, adjusted for testing
    T tasks at once.

    succ_a, trials_a, succ_b, trials_b: (T,) per-task counts. Task t's 2x2 table has the
    runs as columns and success / failure as rows, [[succ_a, succ_b], [fail_a, fail_b]]
    (SciPy's orientation: each column is one binomial sample); the two-sided test is

    - ``"boschloo"`` (default): Boschloo's exact unconditional test, uniformly more
      powerful than Fisher's (e.g. 50/50 vs 45/50: p = 0.035, Fisher 0.056);
    - ``"barnard"``: Barnard's exact unconditional test (pooled Wald statistic);
    - ``"fisher"``: Fisher's exact test, conditional on both margins, conservative.

    Cost: Boschloo and Barnard maximise over a nuisance parameter. One 50-vs-50 table took
    5-13 ms here (Barnard alike), 100 vs 100 ~40 ms, 200 vs 200 ~0.2 s and 500 vs 500
    ~3.3 s (on a loaded 2-core machine); Fisher takes < 1 ms at any size. Boschloo stays
    the default because robot evaluations have tens of episodes per task; with hundreds per
    task use ``test="fisher"`` (at that size the two barely differ).

    ``correction``: see :func:`adjust_pvalues` (Holm: no task is called different by
    chance, at level alpha; BH: controls the expected share of false discoveries, more
    power with many tasks). ``significant`` is p_adjusted <= alpha.

    Returns a DataFrame indexed by task (``tasks`` names, else 0..T-1) with columns
    ``successes_a, trials_a, successes_b, trials_b, rate_a, rate_b, diff`` (rate_a -
    rate_b), ``p_value, p_adjusted, significant``.
    """
    ka, na, kb, nb = checks.paired_suites(succ_a, trials_a, succ_b, trials_b)
    if test not in TESTS:
        raise ParameterError(f"test={test!r} is unknown; expected one of {sorted(TESTS)}")
    _correction(correction)
    alpha = checks.open_unit("alpha", alpha)
    if tasks is None:
        index = pd.RangeIndex(ka.size, name="task")
    else:
        if isinstance(tasks, str) or not hasattr(tasks, "__len__") or len(tasks) != ka.size:
            raise ParameterError(f"tasks must be a sequence of {ka.size} task names, got {tasks!r}")
        index = pd.Index(list(tasks), name="task")
    run = TESTS[test]
    p = np.array(
        [
            run([[int(a), int(b)], [int(m - a), int(n - b)]]).pvalue
            for a, m, b, n in zip(ka, na, kb, nb, strict=True)
        ],
        dtype=np.float64,
    )
    # Boschloo / Barnard maximise numerically and can overshoot 1 in the last digits
    p = np.clip(p, 0.0, 1.0)
    adjusted = adjust_pvalues(p, correction)
    rate_a, rate_b = ka / na, kb / nb
    return pd.DataFrame(
        {
            "successes_a": ka,
            "trials_a": na,
            "successes_b": kb,
            "trials_b": nb,
            "rate_a": rate_a,
            "rate_b": rate_b,
            "diff": rate_a - rate_b,
            "p_value": p,
            "p_adjusted": adjusted,
            "significant": adjusted <= alpha,
        },
        index=index,
    )


# ---------------------------------------------------------------------------- over a suite


def cochran_mantel_haenszel(succ_a, trials_a, succ_b, trials_b, continuity: bool = True) -> dict:
    """Cochran-Mantel-Haenszel test of A vs B over T tasks (one 2x2 table per task), on
    statsmodels' ``StratifiedTable``.

    Tests conditional independence of run and success given the task (common odds ratio
    1) against a difference in the same direction across tasks. With a_t = succ_a, E_t and
    V_t its mean and variance under H0 given the table's margins (hypergeometric)::

        CMH = (|sum(a_t - E_t)| - 0.5)^2 / sum(V_t)        ~ chi2(1)

    The continuity correction 0.5 is applied only when |sum(a_t - E_t)| >= 0.5 (R's
    ``mantelhaen.test``, so the statistic never grows from it; statsmodels'
    ``test_null_odds(correction=True)`` always subtracts it). The p-value is SciPy's
    chi2(1) upper tail of statsmodels' statistic: statsmodels' own is 1 - cdf, which
    rounds every p below ~1e-16 to 0. Agresti's penicillin-and-rabbits data give CMH =
    3.93, p = 0.047 (R's documented example).

    Returns ``{"statistic", "p_value", "odds_ratio"}``: odds_ratio is the Mantel-Haenszel
    common odds ratio of success, A over B, sum(a_t d_t / n_t) / sum(b_t c_t / n_t)
    (inf / NaN when its denominator is 0). A task where both runs always or never succeed
    carries no information (V_t = 0); if every task is like that, statistic and p_value
    are NaN: nothing was tested, which is not evidence of no difference.

    The test weights tasks by their episode counts and assumes one common odds ratio, so
    it can disagree with the interval of the unweighted difference in
    :func:`~nblib.metrics.success.aggregates.compare_overall` when tasks pull in different
    directions.
    """
    ka, na, kb, nb = checks.paired_suites(succ_a, trials_a, succ_b, trials_b)
    # rows: policy A, B; columns: success, failure; one table per task (2, 2, T)
    table = StratifiedTable(np.array([[ka, na - ka], [kb, nb - kb]], dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):  # inf / NaN are the answers here
        odds_ratio = float(table.oddsratio_pooled)
    successes, failures = ka + kb, (na - ka) + (nb - kb)
    if not ((successes > 0) & (failures > 0)).any():  # every V_t = 0
        return {"statistic": math.nan, "p_value": math.nan, "odds_ratio": odds_ratio}
    delta = float(np.sum(ka - na * successes / (na + nb)))  # sum(a_t - E_t), R's DELTA
    correct = bool(continuity) and abs(delta) >= 0.5
    statistic = float(table.test_null_odds(correction=correct).statistic)
    return {
        "statistic": statistic,
        "p_value": float(stats.chi2.sf(statistic, 1)),
        "odds_ratio": odds_ratio,
    }
