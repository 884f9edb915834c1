"""Bootstrap intervals of the numbers verdicts are decided from (SciPy's ``bootstrap``).

Each function returns an :class:`nblib.verdict.Estimate`: the statistic on the data and
its bias-corrected (BCa) interval over resamples of the rows (samples, pairs, episodes), drawn from
a seeded generator so the same data give the same interval on every machine.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy import stats

from nblib.errors import ParameterError
from nblib.verdict import Estimate

N_RESAMPLES = 2000
LEVEL = 0.95
# Bias-corrected and accelerated: a plug-in variance (the spread of a stage) is biased low
# on resamples with replacement, and BCa corrects what the plain percentile interval keeps
METHOD = "BCa"
BATCH = 250  # resamples computed at once (bounds the memory of vectorised statistics)


def bootstrap(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    what: str,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
    vectorized: bool = True,
) -> Estimate:
    """``statistic(*arrays, axis=-1)`` with a BCa interval from resampling the rows
    of ``data`` together (paired). Each array is (N,): one value per row. ``what`` names
    the rows ("samples", "pairs") for the interval's description."""
    arrays = tuple(np.asarray(a, dtype=float) for a in data)
    n = len(arrays[0])
    if n == 0 or any(a.shape != (n,) for a in arrays):
        raise ParameterError(
            f"bootstrap over {what}: expected non-empty 1-D arrays of one length, got "
            f"shapes {[a.shape for a in arrays]}"
        )
    if not all(np.isfinite(a).all() for a in arrays):
        raise ParameterError(f"bootstrap over {what}: the values hold NaN or Inf")
    value = float(statistic(*arrays, axis=-1))
    method = f"{level:.0%} bootstrap over {n} {what}"
    if n == 1 or all(np.all(a == a[0]) for a in arrays):
        return Estimate(value, value, value, method, level)
    kw = dict(
        n_resamples=n_resamples,
        paired=True,
        vectorized=vectorized,
        axis=-1,
        confidence_level=level,
        batch=BATCH,
    )
    with warnings.catch_warnings():  # a degenerate BCa falls back below, said there
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 in its acceleration term
        res = stats.bootstrap(
            arrays, statistic, method=METHOD, rng=np.random.default_rng(seed), **kw
        )
    if not np.isfinite([res.confidence_interval.low, res.confidence_interval.high]).all():
        # BCa is undefined when the jackknife values are all equal: plain percentiles
        res = stats.bootstrap(
            arrays, statistic, method="percentile", rng=np.random.default_rng(seed), **kw
        )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Estimate(value, min(low, value), max(high, value), method, level)


def bootstrap_mean(values, what: str, seed: int = 0, **kw) -> Estimate:
    """Mean of (N,) ``values`` with its interval over the N rows."""
    return bootstrap((np.asarray(values, dtype=float),), np.mean, what, seed, **kw)


def _ratio(num, den, axis=-1):
    return np.sum(num, axis=axis) / np.maximum(np.sum(den, axis=axis), 1e-12)


def bootstrap_ratio(numerator, denominator, what: str, seed: int = 0, **kw) -> Estimate:
    """sum(numerator) / sum(denominator) over N rows (a ratio estimator, e.g. error summed
    over each sample's valid steps / its number of valid steps), resampled together."""
    return bootstrap((numerator, denominator), _ratio, what, seed, **kw)


def bootstrap_rows(
    n: int,
    statistic: Callable[[np.ndarray], float | np.ndarray],
    what: str,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
) -> Estimate:
    """A statistic of N rows that is not a mean of per-row values (a spread, a resultant
    length), with its BCa interval over row resamples (seeded). ``statistic(idx)``
    takes row indices, (N,) -> float or (B, N) -> (B,) (one resample per row of ``idx``),
    so it can be computed for many resamples at once."""
    if n < 1:
        raise ParameterError(f"bootstrap over {what}: no rows")

    def of_indices(idx, axis=-1):
        return statistic(np.asarray(idx, dtype=np.int64))

    return bootstrap((np.arange(n),), of_indices, what, seed, n_resamples, level)


def bootstrap_two(
    a,
    b,
    statistic: Callable[..., np.ndarray],
    what: str,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
) -> Estimate:
    """``statistic(a, b, axis=-1)`` of two independent samples (e.g. the losses at the two
    ends of a run), with its percentile interval resampling each sample on its own."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or b.ndim != 1 or len(a) < 2 or len(b) < 2:
        raise ParameterError(
            f"bootstrap over {what}: expected two 1-D samples of >= 2 values, got shapes "
            f"{a.shape} and {b.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ParameterError(f"bootstrap over {what}: the values hold NaN or Inf")
    value = float(statistic(a, b, axis=-1))
    method = f"{level:.0%} bootstrap over {what} ({len(a)} and {len(b)})"
    if np.all(a == a[0]) and np.all(b == b[0]):
        return Estimate(value, value, value, method, level)
    res = stats.bootstrap(
        (a, b),
        statistic,
        n_resamples=n_resamples,
        vectorized=True,
        axis=-1,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Estimate(value, min(low, value), max(high, value), method, level)


def bootstrap_clusters(
    clusters,
    statistic: Callable[[np.ndarray], float],
    what: str,
    seed: int = 0,
    n_resamples: int = 500,
    level: float = LEVEL,
) -> Estimate:
    """A statistic of N rows that come in correlated clusters (the frame pairs of one demo,
    the episodes of one task), with a basic (reflected percentile) bootstrap interval over
    resamples of whole clusters: ``statistic(rows)`` takes row indices (M,) and returns a
    float. SciPy's bootstrap resamples rows, not clusters, hence this one; the basic
    interval reflects the resamples around the estimate, which corrects the first-order
    bias of statistics that duplicates inflate (a resultant length). ``clusters`` (N,)
    labels; ``what`` names them for the description."""
    labels = np.asarray(clusters)
    if labels.ndim != 1 or not len(labels):
        raise ParameterError(f"bootstrap over {what}: expected (N,) cluster labels")
    _, inverse = np.unique(labels, return_inverse=True)
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
    value = float(statistic(np.arange(len(labels))))
    method = f"{level:.0%} cluster bootstrap over {len(members)} {what}"
    if len(members) < 2:
        return Estimate(value, value, value, method, level)
    rng = np.random.default_rng(seed)
    draws = np.array(
        [
            statistic(
                np.concatenate([members[c] for c in rng.integers(0, len(members), len(members))])
            )
            for _ in range(n_resamples)
        ],
        dtype=float,
    )
    draws = draws[np.isfinite(draws)]
    if len(draws) < n_resamples // 2:
        raise ParameterError(f"bootstrap over {what}: the statistic is undefined on most resamples")
    tail = (1 - level) / 2
    q_low, q_high = np.quantile(draws, [tail, 1 - tail])
    return Estimate(
        value, min(2 * value - q_high, value), max(2 * value - q_low, value), method, level
    )
