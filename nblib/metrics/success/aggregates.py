"""A suite's success rate and aggregate scores over runs and tasks, with task-stratified
bootstrap intervals: interquartile mean and probability of improvement (Agarwal et al.
2021, rliable's definitions), the suite mean from per-task counts, a paired comparison.

Two inputs:

- per-task counts ``successes``, ``trials`` (T,): :func:`stratified_bootstrap`,
  :func:`suite_interval` (the bootstrap, or a Wilson interval where it collapses),
  :func:`compare_overall`;
- ``scores`` (runs, tasks): per-run (seed) and per-task scores, e.g. success rates:
  :func:`iqm`, :func:`iqm_interval`, :func:`probability_of_improvement`,
  :func:`bootstrap_probability_of_improvement`.

The stratified bootstrap keeps the tasks (they are the suite, not a sample of one) and
redraws each task's episodes, or runs, with replacement, independently per task. Intervals
are percentile intervals; an int ``seed`` makes them deterministic.

Where the code comes from. The point estimates are rliable's (``rliable.metrics``). The
bootstrap over (runs, tasks) is SciPy's ``stats.bootstrap`` with one sample per task, which
SciPy resamples independently: that is rliable's stratified bootstrap. rliable's own
(``rliable.library``) cannot run here: rliable 1.2.0 requires arch < 8, arch 7.2 does not
import under pandas 3 (``deprecate_kwarg``'s signature changed), and arch 8 rejects the
``random_state`` keyword rliable passes; it also draws from NumPy's global RNG. Run
side by side under pandas 2.2 / arch 7.2 (5000 draws each), rliable's and these intervals
agreed to 0.005 (IQM, probability of improvement) and exactly (profile bands).
Per-task counts are resampled as Binomial(n_t, s_t / n_t) draws, which is what redrawing
n_t episodes of which s_t succeeded amounts to. That stays here: rliable's bootstrap needs
one (runs, tasks) array (equal episode counts) and SciPy's two or more episodes per task,
while suites mix 50-episode tasks with interrupted ones and 1-episode variants.
"""

from __future__ import annotations

import numpy as np
from rliable import metrics as rly
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from nblib.errors import ParameterError
from nblib.metrics.success import checks
from nblib.metrics.success.proportions import cochran_mantel_haenszel

# Bootstrap replicates are drawn in batches of at most this many array elements, so a
# large (runs, tasks) input does not allocate n_boot copies of itself at once.
CHUNK_ELEMENTS = 4_000_000
# suite_interval: below this many episodes in some task, a Binomial(n, k/n) redraw of the
# task has too few distinct values for percentile bounds (1 episode: none at all)
MIN_BOOTSTRAP_EPISODES = 10
BOOTSTRAP = "stratified bootstrap"
WILSON_EFFECTIVE_N = "Wilson, effective n"


def _percentile_interval(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of bootstrap replicates (B,)."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    return float(low), float(high)


def stratified_interval(samples, statistic, n_boot, confidence, seed, elements: int):
    """Percentile interval of ``statistic`` under a stratified bootstrap: SciPy's
    ``stats.bootstrap`` with every sample (a task's runs or episodes, 1-D) redrawn
    independently.

    ``statistic(*samples, axis=-1)`` must be vectorised: each sample arrives as
    (..., n_i) and the result has the leading shape (plus any output shape in front,
    e.g. (taus, ...)). A sample of one observation has nothing to redraw (SciPy needs two):
    it is passed unchanged, as a (1,) array, so the statistic must broadcast it. Returns
    (low, high), arrays of the statistic's output shape. ``elements``: array elements one
    replicate touches, to size SciPy's batches.
    """
    n_boot = checks.whole("n_boot", n_boot, 1)
    confidence = checks.open_unit("confidence", confidence)
    generator = checks.rng(seed)
    samples = [np.asarray(s, dtype=np.float64) for s in samples]
    moving = [i for i, s in enumerate(samples) if s.shape[-1] > 1]
    if not moving:
        point = np.asarray(statistic(*samples, axis=-1), dtype=np.float64)
        return point, point

    def with_fixed(*drawn, axis=-1):
        full = list(samples)
        for i, sample in zip(moving, drawn, strict=True):
            full[i] = sample
        return statistic(*full, axis=axis)

    result = stats.bootstrap(
        [samples[i] for i in moving],
        with_fixed,
        n_resamples=n_boot,
        batch=max(1, CHUNK_ELEMENTS // max(elements, 1)),
        vectorized=True,
        method="percentile",
        confidence_level=confidence,
        rng=generator,
    )
    interval = result.confidence_interval
    return np.asarray(interval.low, dtype=np.float64), np.asarray(interval.high, np.float64)


# ---------------------------------------------------------------------------- per-task counts


def stratified_bootstrap(
    successes, trials, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """A suite's success rate (the mean over tasks of the per-task rates) with a task-
    stratified bootstrap percentile interval.

    successes, trials (T,) per-task counts. Every replicate resamples each task's episodes
    with replacement and keeps the tasks fixed; resampling n_t episodes of which s_t
    succeeded is a Binomial(n_t, s_t / n_t) draw, which is what is drawn. Tasks are
    weighted equally whatever their episode counts.

    Returns (mean, low, high). A task at 0 % or 100 % adds no bootstrap variance (every
    resample reproduces it), so with few trials and saturated tasks the interval is too
    narrow; when every task is saturated it has width 0. Look at
    :func:`~nblib.metrics.success.proportions.wilson_interval` per task then.
    """
    k, n = checks.suite(successes, trials)
    n_boot = checks.whole("n_boot", n_boot, 1)
    confidence = checks.open_unit("confidence", confidence)
    rng = checks.rng(seed)
    rates = k / n
    boot = rng.binomial(n, rates, size=(n_boot, len(n))) / n
    low, high = _percentile_interval(boot.mean(axis=1), confidence)
    return float(rates.mean()), low, high


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
    :func:`~nblib.metrics.success.proportions.cochran_mantel_haenszel` test
    (continuity-corrected) stratified by task.

    Returns ``{"rate_a", "rate_b", "diff", "low", "high", "confidence", "statistic",
    "p_value", "odds_ratio", "n_tasks"}`` (statistic, p_value and odds_ratio from the CMH
    test; see there for when they are NaN). The bootstrap shares
    :func:`stratified_bootstrap`'s blind spot: tasks at 0 % or 100 % add no variance.
    """
    cmh = cochran_mantel_haenszel(succ_a, trials_a, succ_b, trials_b)  # checks the counts
    ka, na, kb, nb = checks.paired_suites(succ_a, trials_a, succ_b, trials_b)
    n_boot = checks.whole("n_boot", n_boot, 1)
    confidence = checks.open_unit("confidence", confidence)
    rng = checks.rng(seed)
    rate_a, rate_b = ka / na, kb / nb
    boot_a = rng.binomial(na, rate_a, size=(n_boot, ka.size)) / na
    boot_b = rng.binomial(nb, rate_b, size=(n_boot, kb.size)) / nb
    low, high = _percentile_interval(boot_a.mean(axis=1) - boot_b.mean(axis=1), confidence)
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


def suite_interval(
    successes, trials, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float, str]:
    """A suite's success rate (the mean over tasks of the per-task rates) with an interval
    that is never narrower than its episodes allow: (mean, low, high, method).

    successes, trials (T,) per-task counts. ``method`` is :data:`BOOTSTRAP`
    (:func:`stratified_bootstrap`) when every task has at least
    :data:`MIN_BOOTSTRAP_EPISODES` episodes and some task lies strictly between 0 % and
    100 %; otherwise :data:`WILSON_EFFECTIVE_N`: the Wilson score interval of the mean at
    the effective number of episodes n_eff = T**2 / sum(1 / n_t), the n for which a rate
    measured on n_eff episodes has the mean's variance p (1 - p) / n_eff under one common
    rate (with equal episodes per task, n_eff is the pooled count and the mean the pooled
    rate). The bootstrap collapses there: a task at 0 % or 100 % is redrawn unchanged, so
    14 tasks of one episode (12 successes) gave 85.7 [85.7, 85.7]; Wilson's bounds do
    not collapse at small n, nor at 0 or 1 (1 episode, 0 successes: [0, 0.793], as the
    task's own row).
    """
    k, n = checks.suite(successes, trials)
    if n.min() >= MIN_BOOTSTRAP_EPISODES and np.any((k > 0) & (k < n)):
        return (*stratified_bootstrap(k, n, n_boot, confidence, seed), BOOTSTRAP)
    confidence = checks.open_unit("confidence", confidence)
    mean = float((k / n).mean())
    n_eff = float(n.size**2 / (1.0 / n).sum())
    low, high = proportion_confint(mean * n_eff, n_eff, alpha=1.0 - confidence, method="wilson")
    # exactly 0 / 1 at a saturated suite, as wilson_interval (not a rounding error away)
    low = 0.0 if mean == 0.0 else float(np.clip(low, 0.0, 1.0))
    high = 1.0 if mean == 1.0 else float(np.clip(high, 0.0, 1.0))
    return mean, low, high, WILSON_EFFECTIVE_N


# ---------------------------------------------------------------------------- runs x tasks


def iqm(scores, axis: int | None = None):
    """Interquartile mean: the mean of the middle 50 % of the scores
    (``scipy.stats.trim_mean(scores, 0.25)``, the call behind rliable's
    ``aggregate_iqm``; Agarwal et al. 2021).

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
        raise ParameterError(f"scores must be finite, got {checks.first_bad('scores', arr, bad)}")
    if axis is None:
        return float(rly.aggregate_iqm(arr))
    if not isinstance(axis, int | np.integer) or not -arr.ndim <= axis < arr.ndim:
        raise ParameterError(f"axis must be None or an int in [-{arr.ndim}, {arr.ndim})")
    return stats.trim_mean(arr, 0.25, axis=int(axis))


def _pooled_iqm(*columns, axis=-1):
    """IQM of all runs of all tasks; columns: one (..., runs) array per task."""
    pooled = np.concatenate(np.broadcast_arrays(*columns), axis=axis)
    return stats.trim_mean(pooled, 0.25, axis=axis)


def iqm_interval(
    scores, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """IQM of scores (runs, tasks) over all runs and tasks, with a stratified bootstrap
    percentile interval (Agarwal et al. 2021): every replicate redraws each task's runs
    with replacement, independently per task, and keeps the tasks.

    Returns (iqm, low, high). With one run per task the interval has width 0 (there is
    nothing to resample); the paper recommends it for few runs (3-10) and many tasks.
    """
    scores = checks.scores("scores", scores)
    low, high = stratified_interval(
        tuple(scores.T), _pooled_iqm, n_boot, confidence, seed, elements=scores.size
    )
    return float(rly.aggregate_iqm(scores)), float(low), float(high)


def improvement(*columns, axis=-1):
    """Mean over tasks of P(X > Y) + P(X = Y) / 2: columns are the T tasks' runs of X, then
    the T tasks' runs of Y, each (..., runs). Per task it is the Mann-Whitney U of X over
    n_x n_y (SciPy's ``mannwhitneyu``, as rliable's ``probability_of_improvement``),
    vectorised over the leading axes. Returns the leading shape."""
    tasks = len(columns) // 2
    per_task = []
    for x, y in zip(columns[:tasks], columns[tasks:], strict=True):
        # the statistic is U whatever the method; "asymptotic" skips the exact p-value
        u = stats.mannwhitneyu(x, y, axis=axis, method="asymptotic").statistic
        per_task.append(u / (x.shape[axis] * y.shape[axis]))
    return np.mean(per_task, axis=0)


def probability_of_improvement(x, y) -> float:
    """Probability that policy X beats policy Y on a random task (Agarwal et al. 2021;
    rliable's ``probability_of_improvement``).

    x (runs_x, tasks), y (runs_y, tasks): per-run (seed) scores of the same tasks, runs may
    differ in number. Per task, P(X > Y) is the share of (x run, y run) pairs where x
    scores higher, ties counting 1/2 (the Mann-Whitney U statistic over runs_x * runs_y);
    the result is its mean over tasks. 0.5: no difference; 1: every X run beats every Y run
    on every task. P(X > Y) + P(Y > X) = 1. It says how often, not by how much.
    """
    x = checks.scores("x", x)
    y = checks.scores("y", y, tasks=x.shape[1])
    return float(rly.probability_of_improvement(x, y))


def bootstrap_probability_of_improvement(
    x, y, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float, float]:
    """:func:`probability_of_improvement` with a stratified bootstrap percentile interval:
    every replicate redraws the runs of x and of y with replacement, independently for each
    policy and each task (the tasks are kept), as Agarwal et al. (2021).

    Returns (p, low, high). "X is better" needs low > 0.5; a common threshold for an
    improvement that matters is P > 0.75 (Bouthillier et al. 2021, used in the paper).
    """
    x = checks.scores("x", x)
    y = checks.scores("y", y, tasks=x.shape[1])
    samples = (*x.T, *y.T)
    low, high = stratified_interval(
        samples, improvement, n_boot, confidence, seed, elements=x.size + y.size
    )
    return float(rly.probability_of_improvement(x, y)), float(low), float(high)
