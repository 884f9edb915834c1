"""Success rates of robot evaluations with few trials: intervals, comparisons, power.

A policy evaluation is a handful of tasks with tens of episodes each, so a success rate
of 48/50 is a statement with a wide error bar ([0.865, 0.989] at 95 %), and "A beats B by
4 points" is usually noise. The functions here put numbers on that. Counts come as

- ``successes`` and ``trials``: non-negative whole numbers, successes <= trials, trials
  >= 1 (a task without episodes has no rate); scalars or arrays, per task (T,) where the
  function works on a suite;
- ``scores`` (runs, tasks): per-seed (run) and per-task scores, e.g. success rates, for
  the run-level statistics of Agarwal et al. (2021).

Functions:

- :func:`wilson_interval`, :func:`clopper_pearson_interval`: one rate's interval.
- :func:`stratified_bootstrap`: a suite's mean success rate over tasks with a task-
  stratified bootstrap interval.
- :func:`compare_tasks`: two policies task by task (Boschloo / Barnard / Fisher exact
  tests), Holm or Benjamini-Hochberg adjusted.
- :func:`compare_overall`: two policies over the suite: difference of the task-averaged
  rates with a bootstrap interval, and :func:`cochran_mantel_haenszel` for its p-value.
- :func:`iqm`, :func:`iqm_interval`, :func:`probability_of_improvement`,
  :func:`bootstrap_probability_of_improvement`: interquartile mean and probability of
  improvement over runs and tasks (Agarwal et al. 2021).
- :func:`detection_power`, :func:`minimum_detectable_difference`, :func:`trials_needed`:
  how many episodes a comparison needs (two-proportion z-test, normal approximation).

Differences are always A - B (positive: A is better), and probability_of_improvement(x,
y) is P(X > Y). Bootstrap functions take an int ``seed`` and are deterministic with it;
their intervals are percentile intervals.

Reference: R. Agarwal, M. Schwarzer, P. S. Castro, A. Courville, M. G. Bellemare, "Deep
Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021 (the
rliable library). IQM, probability of improvement and their stratified bootstraps here
follow that paper's definitions; the code is written from them, not taken from rliable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats

from nblib.errors import ParameterError

# compare_tasks' tests, by name. Boschloo is uniformly more powerful than Fisher's test
# and as exact; see compare_tasks for what it costs.
_TESTS = {
    "boschloo": stats.boschloo_exact,
    "barnard": stats.barnard_exact,
    "fisher": stats.fisher_exact,
}
_CORRECTIONS = ("holm", "bh", "none")

# Bootstrap replicates are drawn in chunks of at most this many array elements, so a large
# (runs, tasks) input does not allocate n_boot copies of itself at once.
_CHUNK_ELEMENTS = 4_000_000


# ---------------------------------------------------------------------------- input checks


def _check_int(name: str, value, least: int) -> int:
    # numpy ints are fine, bools are not (True is an int to Python, never a count here)
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if not ok or value < least:
        raise ParameterError(f"{name} must be an int >= {least}, got {value!r}")
    return int(value)


def _check_unit(name: str, value, closed: bool, what: str) -> float:
    """A number in [0, 1] (``closed``) or strictly inside it; ``what`` names it in the error."""
    interval = "[0, 1]" if closed else "(0, 1)"
    message = f"{name} must be {what} in {interval}, got {value!r}"
    if isinstance(value, bool | np.bool_):
        raise ParameterError(message)
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise ParameterError(message) from err
    inside = 0.0 <= out <= 1.0 if closed else 0.0 < out < 1.0  # also rejects NaN
    if not inside:
        raise ParameterError(message)
    return out


def _check_open_unit(name: str, value) -> float:
    """A number strictly between 0 and 1 (a confidence level, alpha, power)."""
    return _check_unit(name, value, closed=False, what="a number")


def _check_rate(name: str, value) -> float:
    """A success probability in [0, 1]."""
    return _check_unit(name, value, closed=True, what="a success rate")


def _counts(name: str, values) -> np.ndarray:
    """Non-negative whole numbers of any shape as int64 (whole floats are accepted: counts
    read from a CSV are often floats)."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as err:  # ragged lists
        raise ParameterError(f"{name} must be whole numbers >= 0, got {values!r}") from err
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ParameterError(f"{name} must be whole numbers >= 0, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise ParameterError(f"{name} must be whole numbers, got {_first_bad(name, arr, bad)}")
    if (arr < 0).any():
        raise ParameterError(f"{name} must be >= 0, got {_first_bad(name, arr, arr < 0)}")
    return arr.astype(np.int64)


def _first_bad(name: str, arr: np.ndarray, bad: np.ndarray) -> str:
    """``name=value`` for a scalar, ``name[i]=value`` for the first bad element."""
    if arr.ndim == 0:
        return f"{name}={arr.item()!r}"
    index = np.unravel_index(int(np.flatnonzero(bad)[0]), arr.shape)
    where = ", ".join(str(int(i)) for i in index)
    return f"{name}[{where}]={arr[index].item()!r}"


def _check_counts(
    successes, trials, names: tuple[str, str] = ("successes", "trials")
) -> tuple[np.ndarray, np.ndarray]:
    """successes and trials broadcast to one shape, trials >= 1, successes <= trials."""
    s_name, n_name = names
    k, n = _counts(s_name, successes), _counts(n_name, trials)
    try:
        k, n = np.broadcast_arrays(k, n)
    except ValueError as err:
        raise ParameterError(
            f"{s_name} {k.shape} and {n_name} {n.shape} must have the same shape"
        ) from err
    if (n < 1).any():
        raise ParameterError(
            f"{n_name} must be >= 1 (a task without episodes has no success rate), got "
            f"{_first_bad(n_name, n, n < 1)}"
        )
    over = k > n
    if over.any():
        raise ParameterError(
            f"{s_name} must be <= {n_name}, got {_first_bad(s_name, k, over)} with "
            f"{_first_bad(n_name, n, over)}"
        )
    return k, n


def _suite(
    successes, trials, names: tuple[str, str] = ("successes", "trials")
) -> tuple[np.ndarray, np.ndarray]:
    """Per-task counts: 1-D (T,), T >= 1, same shape."""
    for name, values in zip(names, (successes, trials), strict=True):
        try:
            shape = np.shape(values)
        except ValueError as err:  # ragged nested lists
            raise ParameterError(f"{name} must be 1-D (T,) per-task counts") from err
        if len(shape) != 1 or shape[0] == 0:
            raise ParameterError(f"{name} must be 1-D (T,) per-task counts, got shape {shape}")
    if np.shape(successes) != np.shape(trials):
        raise ParameterError(
            f"{names[0]} {np.shape(successes)} and {names[1]} {np.shape(trials)} must have "
            "the same shape (T,)"
        )
    return _check_counts(successes, trials, names)


def _scores(name: str, values, tasks: int | None = None) -> np.ndarray:
    """Finite float scores (runs, tasks), runs >= 1, tasks >= 1 (and == ``tasks``)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"{name} must be a (runs, tasks) array of numbers") from err
    if arr.ndim != 2 or 0 in arr.shape:
        raise ParameterError(
            f"{name} must be 2-D (runs, tasks) with at least one of each, got shape {arr.shape}"
            " (for one task pass scores[:, None])"
        )
    if tasks is not None and arr.shape[1] != tasks:
        raise ParameterError(
            f"{name} has {arr.shape[1]} tasks (columns), expected {tasks} to match the other "
            "policy's scores"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ParameterError(f"{name} must be finite, got {_first_bad(name, arr, bad)}")
    return arr


def _rng(seed) -> np.random.Generator:
    return np.random.default_rng(_check_int("seed", seed, 0))


def _percentiles(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    return float(low), float(high)


def _out(low: np.ndarray, high: np.ndarray):
    """Python floats for scalar input, arrays otherwise."""
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


# ---------------------------------------------------------------------------- one rate


def _binom_ci(successes, trials, confidence, method: str):
    k, n = _check_counts(successes, trials)
    confidence = _check_open_unit("confidence", confidence)
    low, high = np.empty(k.shape), np.empty(k.shape)
    # binomtest is scalar; an evaluation has tens of tasks, so a loop costs nothing
    for index in np.ndindex(k.shape):
        ci = stats.binomtest(int(k[index]), int(n[index])).proportion_ci(confidence, method)
        low[index], high[index] = ci.low, ci.high
    return _out(np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0))


def wilson_interval(successes, trials, confidence: float = 0.95):
    """Wilson score interval of a success rate (SciPy's ``binomtest(...).proportion_ci(
    method="wilson")``, no continuity correction).

    successes, trials: whole numbers >= 0 of any broadcastable shapes, trials >= 1,
    successes <= trials. Returns (low, high) fractions in [0, 1]: floats for scalar input,
    arrays of the broadcast shape otherwise. 48/50 -> (0.865, 0.989); 0/n has low = 0 and
    n/n has high = 1 exactly. trials = 0 raises ParameterError (no episodes, no rate)
    rather than returning a NaN that would vanish into a table.

    Wilson's coverage is close to nominal even for small n and rates near 0 or 1, where the
    textbook Wald interval p +- z sqrt(p(1-p)/n) collapses (to [1, 1] for 50/50).
    """
    return _binom_ci(successes, trials, confidence, "wilson")


def clopper_pearson_interval(successes, trials, confidence: float = 0.95):
    """Clopper-Pearson ("exact") interval of a success rate (SciPy's ``binomtest(...)
    .proportion_ci(method="exact")``).

    Inputs and output as :func:`wilson_interval`. Guaranteed coverage >= ``confidence``
    for every true rate, so it is wider than Wilson: 0/10 -> (0, 0.308), where 0.308 =
    1 - 0.025 ** (1 / 10). Use it when a claim must hold for sure ("the success rate is at
    least x"), Wilson for the best estimate of the uncertainty.
    """
    return _binom_ci(successes, trials, confidence, "exact")


# ---------------------------------------------------------------------------- a suite


def stratified_bootstrap(
    successes, trials, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """A suite's success rate (the mean over tasks of the per-task rates) with a task-
    stratified bootstrap percentile interval.

    successes, trials (T,) per-task counts. Every replicate resamples each task's episodes
    with replacement and keeps the tasks fixed (they are the suite, not a sample of one);
    resampling n_t episodes of which s_t succeeded is a Binomial(n_t, s_t / n_t) draw,
    which is what is drawn. Tasks are weighted equally whatever their episode counts.

    Returns (mean, low, high). A task at 0 % or 100 % adds no bootstrap variance (every
    resample reproduces it), so with few trials and saturated tasks the interval is too
    narrow; when every task is saturated it has width 0. Look at :func:`wilson_interval`
    per task then.
    """
    k, n = _suite(successes, trials)
    n_boot = _check_int("n_boot", n_boot, 1)
    confidence = _check_open_unit("confidence", confidence)
    rng = _rng(seed)
    rates = k / n
    boot = rng.binomial(n, rates, size=(n_boot, len(n))) / n
    low, high = _percentiles(boot.mean(axis=1), confidence)
    return float(rates.mean()), low, high


# ---------------------------------------------------------------------------- two policies


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values: the i-th smallest of m is scaled by (m - i + 1),
    made non-decreasing in that order, capped at 1."""
    order = np.argsort(p, kind="stable")
    m = len(p)
    scaled = (m - np.arange(m)) * p[order]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def adjust_pvalues(p, correction: str = "holm") -> np.ndarray:
    """p-values of one family of tests, adjusted: ``holm`` (family-wise error rate),
    ``bh`` (Benjamini-Hochberg, false discovery rate) or ``none``. NaN stays NaN (a test
    that could not be made) and does not count in the family."""
    if correction not in _CORRECTIONS:
        raise ParameterError(
            f"correction={correction!r} is unknown; expected one of {list(_CORRECTIONS)}"
        )
    p = np.asarray(p, dtype=np.float64)
    out = p.copy()
    known = np.isfinite(p)
    if correction == "holm" and known.any():
        out[known] = _holm(p[known])
    elif correction == "bh" and known.any():
        out[known] = stats.false_discovery_control(p[known], method="bh")
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

    ``correction``: ``"holm"`` (Holm's step-down, controls the family-wise error rate:
    no task is called different by chance, at level alpha), ``"bh"`` (Benjamini-Hochberg
    via ``scipy.stats.false_discovery_control``, controls the expected share of false
    discoveries; more power with many tasks) or ``"none"``. ``significant`` is
    p_adjusted <= alpha.

    Returns a DataFrame indexed by task (``tasks`` names, else 0..T-1) with columns
    ``successes_a, trials_a, successes_b, trials_b, rate_a, rate_b, diff`` (rate_a -
    rate_b), ``p_value, p_adjusted, significant``.
    """
    ka, na = _suite(succ_a, trials_a, ("succ_a", "trials_a"))
    kb, nb = _suite(succ_b, trials_b, ("succ_b", "trials_b"))
    if ka.shape != kb.shape:
        raise ParameterError(
            f"succ_a has {ka.size} tasks and succ_b {kb.size}; both policies must be "
            "evaluated on the same tasks, in the same order"
        )
    if test not in _TESTS:
        raise ParameterError(f"test={test!r} is unknown; expected one of {sorted(_TESTS)}")
    if correction not in _CORRECTIONS:
        raise ParameterError(
            f"correction={correction!r} is unknown; expected one of {list(_CORRECTIONS)}"
        )
    alpha = _check_open_unit("alpha", alpha)
    if tasks is None:
        index = pd.RangeIndex(ka.size, name="task")
    else:
        if isinstance(tasks, str) or not hasattr(tasks, "__len__") or len(tasks) != ka.size:
            raise ParameterError(f"tasks must be a sequence of {ka.size} task names, got {tasks!r}")
        index = pd.Index(list(tasks), name="task")
    run = _TESTS[test]
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


def cochran_mantel_haenszel(succ_a, trials_a, succ_b, trials_b, continuity: bool = True) -> dict:
    """Cochran-Mantel-Haenszel test of A vs B over T tasks (one 2x2 table per task).

    Tests conditional independence of run and success given the task (common odds ratio
    1) against a difference in the same direction across tasks. With a_t = succ_a, E_t and
    V_t its mean and variance under H0 given the table's margins (hypergeometric)::

        E_t = trials_a * (succ_a + succ_b) / n_t
        V_t = trials_a * trials_b * (succ_a + succ_b) * (fail_a + fail_b) / (n_t^2 (n_t - 1))
        CMH = (|sum(a_t - E_t)| - 0.5)^2 / sum(V_t)        ~ chi2(1)

    The continuity correction 0.5 is applied only when |sum(a_t - E_t)| >= 0.5 (as R's
    ``mantelhaen.test``, so the statistic never grows from it). Agresti's penicillin-and-
    rabbits data give CMH = 3.93, p = 0.047 (R's documented example).

    Returns ``{"statistic", "p_value", "odds_ratio"}``: odds_ratio is the Mantel-Haenszel
    common odds ratio of success, A over B, sum(a_t d_t / n_t) / sum(b_t c_t / n_t)
    (inf / NaN when its denominator is 0). A task where both runs always or never succeed
    carries no information (V_t = 0); if every task is like that, statistic and p_value
    are NaN: nothing was tested, which is not evidence of no difference.

    The test weights tasks by their episode counts and assumes one common odds ratio, so
    it can disagree with the interval of the unweighted difference in :func:`compare_overall`
    when tasks pull in different directions.
    """
    ka, na = _suite(succ_a, trials_a, ("succ_a", "trials_a"))
    kb, nb = _suite(succ_b, trials_b, ("succ_b", "trials_b"))
    if ka.shape != kb.shape:
        raise ParameterError(
            f"succ_a has {ka.size} tasks and succ_b {kb.size}; both policies must be "
            "evaluated on the same tasks, in the same order"
        )
    a, b, c, d = (x.astype(np.float64) for x in (ka, na - ka, kb, nb - kb))
    n = na + nb  # >= 2: both arms have at least one episode
    expected = na * (a + c) / n
    variance = na * nb * (a + c) * (b + d) / (n**2 * (n - 1.0))
    delta = float(np.sum(a - expected))
    total_var = float(np.sum(variance))
    numerator, denominator = float(np.sum(a * d / n)), float(np.sum(b * c / n))
    if denominator > 0:
        odds_ratio = numerator / denominator
    else:
        odds_ratio = math.inf if numerator > 0 else math.nan
    if total_var <= 0:
        return {"statistic": math.nan, "p_value": math.nan, "odds_ratio": odds_ratio}
    correction = 0.5 if continuity and abs(delta) >= 0.5 else 0.0
    statistic = (abs(delta) - correction) ** 2 / total_var
    return {
        "statistic": statistic,
        "p_value": float(stats.chi2.sf(statistic, 1)),
        "odds_ratio": odds_ratio,
    }


def compare_overall(
    succ_a,
    trials_a,
    succ_b,
    trials_b,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Policy A against policy B over the whole suite.

    succ_a, trials_a, succ_b, trials_b: (T,) per-task counts of the same T tasks. The
    effect is diff = mean_t(rate_a) - mean_t(rate_b), the difference of the suite success
    rates (tasks weighted equally). Its interval is a paired, task-stratified bootstrap:
    tasks stay fixed and paired across the policies, and every replicate redraws each
    task's episodes of each policy independently (Binomial(n, observed rate), as
    :func:`stratified_bootstrap`); percentile interval. The p-value is the
    :func:`cochran_mantel_haenszel` test (continuity-corrected) stratified by task.

    Returns ``{"rate_a", "rate_b", "diff", "low", "high", "confidence", "statistic",
    "p_value", "odds_ratio", "n_tasks"}`` (statistic, p_value and odds_ratio from the CMH
    test; see there for when they are NaN). The bootstrap shares
    :func:`stratified_bootstrap`'s blind spot: tasks at 0 % or 100 % add no variance.
    """
    ka, na = _suite(succ_a, trials_a, ("succ_a", "trials_a"))
    kb, nb = _suite(succ_b, trials_b, ("succ_b", "trials_b"))
    cmh = cochran_mantel_haenszel(ka, na, kb, nb)  # also checks that the task counts match
    n_boot = _check_int("n_boot", n_boot, 1)
    confidence = _check_open_unit("confidence", confidence)
    rng = _rng(seed)
    rate_a, rate_b = ka / na, kb / nb
    boot_a = rng.binomial(na, rate_a, size=(n_boot, ka.size)) / na
    boot_b = rng.binomial(nb, rate_b, size=(n_boot, kb.size)) / nb
    low, high = _percentiles(boot_a.mean(axis=1) - boot_b.mean(axis=1), confidence)
    mean_a, mean_b = float(rate_a.mean()), float(rate_b.mean())
    return {
        "rate_a": mean_a,
        "rate_b": mean_b,
        "diff": mean_a - mean_b,
        "low": low,
        "high": high,
        "confidence": confidence,
        **cmh,
        "n_tasks": int(ka.size),
    }


# ---------------------------------------------------------------------------- runs x tasks


def iqm(scores, axis: int | None = None):
    """Interquartile mean: the mean of the middle 50 % of the scores
    (``scipy.stats.trim_mean(scores, 0.25)``; Agarwal et al. 2021).

    scores: finite numbers of any shape, non-empty. ``axis=None`` pools every score (runs
    x tasks, as the paper's aggregate IQM); an int gives one IQM per remaining index.
    floor(n / 4) scores are cut at each end, so for n < 4 nothing is cut (the mean).
    Returns a float for axis=None, else an array. Robust to a few outlier runs, unlike the
    mean, and far less noisy than the median with few runs.
    """
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterError("scores must be an array of numbers") from err
    if arr.size == 0:
        raise ParameterError("scores is empty; expected at least one score")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ParameterError(f"scores must be finite, got {_first_bad('scores', arr, bad)}")
    if axis is not None:
        if not isinstance(axis, int | np.integer) or not -arr.ndim <= axis < arr.ndim:
            raise ParameterError(f"axis must be None or an int in [-{arr.ndim}, {arr.ndim})")
        return stats.trim_mean(arr, 0.25, axis=int(axis))
    return float(stats.trim_mean(arr, 0.25, axis=None))


def _resample_runs(rng: np.random.Generator, scores: np.ndarray, n: int) -> np.ndarray:
    """n replicates (n, runs, tasks): each task's runs redrawn with replacement, tasks kept
    (Agarwal et al.'s stratified bootstrap)."""
    runs, tasks = scores.shape
    picks = rng.integers(0, runs, size=(n, runs, tasks))
    return scores[picks, np.arange(tasks)]


def _chunks(n_boot: int, per_replicate: int):
    size = max(1, _CHUNK_ELEMENTS // max(per_replicate, 1))
    for start in range(0, n_boot, size):
        yield min(size, n_boot - start)


def iqm_interval(
    scores, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """IQM of scores (runs, tasks) over all runs and tasks, with a stratified bootstrap
    percentile interval (Agarwal et al. 2021): every replicate redraws each task's runs
    with replacement, independently per task, and keeps the tasks.

    Returns (iqm, low, high). With one run per task the interval has width 0 (there is
    nothing to resample); the paper recommends it for few runs (3-10) and many tasks.
    """
    scores = _scores("scores", scores)
    n_boot = _check_int("n_boot", n_boot, 1)
    confidence = _check_open_unit("confidence", confidence)
    rng = _rng(seed)
    boot = []
    for n in _chunks(n_boot, scores.size):
        draw = _resample_runs(rng, scores, n)
        boot.append(stats.trim_mean(draw.reshape(n, -1), 0.25, axis=1))
    low, high = _percentiles(np.concatenate(boot), confidence)
    return float(stats.trim_mean(scores, 0.25, axis=None)), low, high


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 per task for x (..., n_x, T), y (..., n_y, T): the Mann-
    Whitney U of x over n_x n_y, from mid-ranks of the pooled runs (ties share a rank, so
    each tied pair counts 1/2). Returns (..., T)."""
    n_x, n_y = x.shape[-2], y.shape[-2]
    ranks = stats.rankdata(np.concatenate([x, y], axis=-2), axis=-2)
    u = ranks[..., :n_x, :].sum(axis=-2) - n_x * (n_x + 1) / 2.0
    return u / (n_x * n_y)


def probability_of_improvement(x, y) -> float:
    """Probability that policy X beats policy Y on a random task (Agarwal et al. 2021).

    x (runs_x, tasks), y (runs_y, tasks): per-run (seed) scores of the same tasks, runs may
    differ in number. Per task, P(X > Y) is the share of (x run, y run) pairs where x
    scores higher, ties counting 1/2 (the Mann-Whitney U statistic over runs_x * runs_y);
    the result is its mean over tasks. 0.5: no difference; 1: every X run beats every Y run
    on every task. P(X > Y) + P(Y > X) = 1. It says how often, not by how much.
    """
    x = _scores("x", x)
    y = _scores("y", y, tasks=x.shape[1])
    return float(_improvement(x, y).mean())


def bootstrap_probability_of_improvement(
    x, y, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float, float]:
    """:func:`probability_of_improvement` with a stratified bootstrap percentile interval:
    every replicate redraws the runs of x and of y with replacement, independently for each
    policy and each task (the tasks are kept), as Agarwal et al. (2021).

    Returns (p, low, high). "X is better" needs low > 0.5; a common threshold for an
    improvement that matters is P > 0.75 (Bouthillier et al. 2021, used in the paper).
    """
    x = _scores("x", x)
    y = _scores("y", y, tasks=x.shape[1])
    n_boot = _check_int("n_boot", n_boot, 1)
    confidence = _check_open_unit("confidence", confidence)
    rng = _rng(seed)
    boot = []
    for n in _chunks(n_boot, x.size + y.size):
        draw_x, draw_y = _resample_runs(rng, x, n), _resample_runs(rng, y, n)
        boot.append(_improvement(draw_x, draw_y).mean(axis=-1))
    low, high = _percentiles(np.concatenate(boot), confidence)
    return float(_improvement(x, y).mean()), low, high


# ---------------------------------------------------------------------------- power


def _z_alpha(alpha: float, two_sided: bool) -> float:
    return float(stats.norm.isf(alpha / 2.0 if two_sided else alpha))


def _n_per_arm(p1: float, p2: float, z_alpha: float, z_beta: float) -> float:
    """Episodes per arm (real-valued) for a pooled two-proportion z-test to reach the power
    of z_beta (Fleiss, Levin & Paik 2003, without continuity correction)."""
    mean = (p1 + p2) / 2.0
    spread = z_alpha * math.sqrt(2.0 * mean * (1.0 - mean)) + z_beta * math.sqrt(
        p1 * (1.0 - p1) + p2 * (1.0 - p2)
    )
    return spread**2 / (p2 - p1) ** 2


def _check_power_args(alpha, power, two_sided) -> tuple[float, float, float]:
    alpha = _check_open_unit("alpha", alpha)
    power = _check_open_unit("power", power)
    if not isinstance(two_sided, bool | np.bool_):
        raise ParameterError(f"two_sided must be True or False, got {two_sided!r}")
    tail = alpha / 2.0 if two_sided else alpha
    if power <= tail:
        # below that even no difference "reaches" the power: the question is meaningless
        raise ParameterError(f"power must exceed the one-tail alpha {tail:g}, got {power!r}")
    return _z_alpha(alpha, bool(two_sided)), float(stats.norm.ppf(power)), power


def detection_power(
    rate_a: float, rate_b: float, trials: int, alpha: float = 0.05, two_sided: bool = True
) -> float:
    """Power of a two-proportion z-test (pooled variance) to find rate_a != rate_b with
    ``trials`` episodes per arm, normal approximation::

        power = Phi((sqrt(n) |p_b - p_a| - z_alpha sqrt(2 pbar (1 - pbar)))
                    / sqrt(p_a (1 - p_a) + p_b (1 - p_b)))

    (R's ``power.prop.test``, non-strict: the far tail is ignored; n = 50, 0.50 vs 0.75 ->
    0.740). Equal rates give alpha / 2 (two-sided) or alpha. Exact tests (Fisher, Boschloo)
    have somewhat less power than this, most with few trials and rates near 0 or 1.
    """
    p1, p2 = _check_rate("rate_a", rate_a), _check_rate("rate_b", rate_b)
    n = _check_int("trials", trials, 1)
    alpha = _check_open_unit("alpha", alpha)
    if not isinstance(two_sided, bool | np.bool_):
        raise ParameterError(f"two_sided must be True or False, got {two_sided!r}")
    z_alpha = _z_alpha(alpha, bool(two_sided))
    mean = (p1 + p2) / 2.0
    sd = math.sqrt(p1 * (1.0 - p1) + p2 * (1.0 - p2))
    shift = math.sqrt(n) * abs(p2 - p1) - z_alpha * math.sqrt(2.0 * mean * (1.0 - mean))
    if sd == 0.0:  # both rates 0 or 1: the outcome is certain
        return 1.0 if shift > 0 else float(stats.norm.sf(z_alpha))
    return float(stats.norm.cdf(shift / sd))


def trials_needed(
    rate_a: float,
    rate_b: float,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
) -> int:
    """Episodes per arm for a two-proportion z-test to tell rate_a from rate_b with the
    given power, rounded up::

        n = (z_alpha sqrt(2 pbar (1 - pbar)) + z_beta sqrt(p_a (1 - p_a) + p_b (1 - p_b)))^2
            / (p_b - p_a)^2

    (normal approximation, pooled variance under H0, no continuity correction: Fleiss,
    Levin & Paik 2003; R's ``power.prop.test``; z_alpha = z_{1 - alpha/2} two-sided).
    0.50 vs 0.75 at power 0.9 -> 77 (R: 76.7); 0.95 vs 0.97 -> 1506 (1505.8; the arcsine
    / Cohen's h approximation gives 1484, Fleiss' continuity-corrected formula 1605). The
    z-test's exact power at 1506 per arm is 0.804 (enumerated); Fisher's exact test, which
    a real comparison would use, reaches only ~0.78 there and ~0.81 at 1605 (simulated,
    2000 draws), so treat the result as a lower bound: the continuity-corrected size is the
    better guide for an exact test.
    """
    p1, p2 = _check_rate("rate_a", rate_a), _check_rate("rate_b", rate_b)
    z_alpha, z_beta, _ = _check_power_args(alpha, power, two_sided)
    if p1 == p2:
        raise ParameterError(
            f"rate_a and rate_b are both {p1!r}; no number of trials detects no difference"
        )
    n = _n_per_arm(p1, p2, z_alpha, z_beta)
    # a hair of slack so 76.0000000001 from rounding error does not become 77
    return max(1, math.ceil(n - 1e-9))


def minimum_detectable_difference(
    rate: float,
    trials: int,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
) -> float:
    """The smallest improvement d over ``rate`` that ``trials`` episodes per arm detect with
    the given power: the d > 0 solving :func:`trials_needed`'s equation for n = trials
    (``scipy.optimize.brentq``; same normal approximation).

    NaN when no improvement is detectable, i.e. even rate -> 1.0 needs more than ``trials``
    episodes (0.95 with 50 trials: detecting 0.95 -> 1.0 takes 152). For the smallest
    detectable *drop*, pass 1 - rate (success and failure swap roles). 0.5 with 50 trials
    at power 0.9 -> 0.3026 (R's power.prop.test example: p2 = 0.8026).
    """
    p1 = _check_rate("rate", rate)
    n = _check_int("trials", trials, 1)
    z_alpha, z_beta, _ = _check_power_args(alpha, power, two_sided)
    if p1 >= 1.0:
        raise ParameterError("rate must be < 1 (a perfect rate cannot improve), got 1.0")
    if _n_per_arm(p1, 1.0, z_alpha, z_beta) > n:
        return math.nan
    # the needed n falls from +inf (no gap) to at most `trials` (at 1.0): one root between
    gap = min(1e-12, (1.0 - p1) / 2)
    best = optimize.brentq(
        lambda p2: _n_per_arm(p1, p2, z_alpha, z_beta) - n, p1 + gap, 1.0, xtol=1e-12
    )
    return float(best - p1)
