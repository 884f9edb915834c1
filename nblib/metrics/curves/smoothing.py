"""The trailing moving average every curve function smooths with, and where its values
sit on the step axis."""

from __future__ import annotations

import numpy as np

from nblib.metrics.curves.checks import check_count, vector


def trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of x[max(0, i - window + 1) : i + 1] for every i, in O(N); x must be finite."""
    # cumulative sums of x - x[0]: a constant x gives exact zeros (so an exactly flat loss
    # stays exactly flat) and a large shared offset does not eat the precision
    shifted = x - x[0]
    total = np.cumsum(shifted)
    before = np.zeros_like(total)
    before[window:] = total[:-window]
    counts = np.minimum(np.arange(1, len(x) + 1), window)
    return x[0] + (total - before) / counts


def smooth(values, window: int = 20) -> np.ndarray:
    """Trailing moving average: out[i] = mean(values[i - window + 1 : i + 1]).

    values (N,) floats, N >= 1; the first window - 1 points average the fewer points
    there are (out[0] = values[0]); ``window=1`` returns the finite values unchanged.
    Returns (N,) float64.

    Non-finite values are not skipped: every average whose window holds a NaN or inf is NaN
    (so the NaN lasts ``window`` points, then the average of the finite values after it
    resumes). A trailing mean lags a moving curve by about (window - 1) / 2 points;
    :func:`~nblib.metrics.curves.plateau` and
    :func:`~nblib.metrics.curves.range_test_suggestions` correct for that.
    """
    arr = vector("values", values, "value")
    window = check_count("window", window, 1)
    bad = ~np.isfinite(arr)
    if window == 1:
        return np.where(bad, np.nan, arr)
    if not bad.any():
        return trailing_mean(arr, window)
    out = trailing_mean(np.where(bad, 0.0, arr), window)
    # integer counts of bad points per window: exact, unlike a float running sum
    count = np.cumsum(bad)
    before = np.zeros_like(count)
    before[window:] = count[:-window]
    out[count - before > 0] = np.nan
    return out


def centres(steps: np.ndarray, window: int) -> np.ndarray:
    """Mean step of each trailing window of ``window`` points: where a trailing average
    actually sits on the step axis (exact for a curve that is linear in step)."""
    return trailing_mean(steps.astype(np.float64), window)
