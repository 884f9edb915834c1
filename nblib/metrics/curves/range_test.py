"""Suggested learning rates from an LR range test (Smith 2017; fastai's and PyTorch
Lightning's LR finders)."""

from __future__ import annotations

import numpy as np

from nblib.metrics.curves.checks import (
    check_count,
    check_lrs,
    check_number,
    check_values,
    first_true,
)
from nblib.metrics.curves.detectors import exploded, zero_collapse
from nblib.metrics.curves.smoothing import smooth, trailing_mean

# Stop where the smoothed loss exceeds this many times its running minimum (the early-stop
# threshold of fastai's and PyTorch Lightning's LR finders).
RANGE_STOP_FACTOR = 4.0

# The steepest descent ignores this fraction of the points before the stop at the start
# (fastai skips the first num_it // 10) and at the end (one-sided differences next to the
# blow-up); at least one point each.
RANGE_SKIP_START = 0.1
RANGE_SKIP_END = 0.05


def range_test_suggestions(lrs, losses, smoothing: int = 10, fraction: float = 0.1) -> dict:
    """Suggested LRs from an LR range test: the LR rises exponentially, one loss per LR.

    lrs (N,) strictly increasing positive LRs, losses (N,) floats (NaN / inf allowed: the
    first one is where the test blew up). The loss is smoothed
    (:func:`~nblib.metrics.curves.smooth`, ``smoothing`` points) and each smoothed value
    placed at the geometric mean LR of its window (a trailing mean would otherwise drag
    every suggestion to higher LRs).

    - ``stopped_at``: first index where the smoothed loss is non-finite or exceeds 4x its
      running minimum (non-positive minima: the rule of
      :func:`~nblib.metrics.curves.divergence`), or where the raw loss drops to exactly 0
      after a clearly positive loss (:func:`~nblib.metrics.curves.zero_collapse`), or None.
      The suggestions use only the points before it.
    - ``steepest``: LR of the most negative gradient of the smoothed loss w.r.t. log(lr)
      (central differences), ignoring the first 10 % and the last 5 % (at least one point
      each) of the points before the stop. None if the loss never falls there or fewer
      than 3 points remain.
    - ``minimum``: LR of the lowest smoothed loss before the stop (after the first 10 %).
    - ``min_fraction``: ``fraction`` x minimum, the "an order of magnitude below the
      minimum" rule (fastai's ``lr_min``).

    Returns ``{"steepest", "minimum", "min_fraction"}`` (floats or None) and
    ``"stopped_at"`` (int or None).
    """
    lrs = check_lrs(lrs)
    losses = check_values("losses", losses, lrs, steps_name="lrs")
    smoothing = check_count("smoothing", smoothing, 1)
    fraction = check_number("fraction", fraction, 0.0, strict=True)
    s = smooth(losses, smoothing)
    blown, _ = exploded(s, RANGE_STOP_FACTOR)
    stops = [first_true(blown | ~np.isfinite(s))]
    zero = zero_collapse(losses)
    stops.append(None if zero is None else zero[0])
    stopped_at = min((i for i in stops if i is not None), default=None)
    end = len(lrs) if stopped_at is None else stopped_at
    log_centre = trailing_mean(np.log(lrs), smoothing)  # log of each window's geometric mean
    out = {"steepest": None, "minimum": None, "min_fraction": None, "stopped_at": stopped_at}
    begin = max(1, int(RANGE_SKIP_START * end))
    if begin >= end:
        return out
    lowest = begin + int(np.argmin(s[begin:end]))
    out["minimum"] = float(np.exp(log_centre[lowest]))
    out["min_fraction"] = fraction * out["minimum"]
    last = end - max(1, int(RANGE_SKIP_END * end))
    if last - begin >= 3:
        slope = np.gradient(s[begin:last], log_centre[begin:last])
        i = int(np.argmin(slope))
        if slope[i] < 0:
            out["steepest"] = float(np.exp(log_centre[begin + i]))
    return out
