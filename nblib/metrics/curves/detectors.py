"""Did one run stop learning or diverge? The plateau, stopped-after-warmup and divergence
detectors (seed 003).

Every function takes one run as ``steps`` (N,) strictly increasing integer optimizer steps
(windows are measured in steps, never in logged points) and ``loss`` (N,) floats. A NaN /
inf loss means the run diverged: :func:`divergence` reports it and :func:`plateau` (hence
:func:`stopped_after_warmup`) declines to judge such a run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib.errors import ParameterError
from nblib.metrics.curves.checks import (
    check_count,
    check_curve,
    check_number,
    check_values,
    first_true,
)
from nblib.metrics.curves.smoothing import centres, smooth

# Gradient-norm spikes are judged against the median of at most this many previous norms.
GRAD_HISTORY = 50

# Step comparisons of window centres (multiples of 1 / smoothing) allow for rounding.
_TOL = 1e-6


def relative_drop(before, after):
    """(before - after) / |before|: > 0 when the loss fell. Works for negative losses too;
    from exactly 0 it is +-inf by the sign of the change (0 if nothing changed)."""
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (before - after) / np.abs(before)
    return np.where((before == 0) & (after == 0), 0.0, out)


def exploded(values: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Per point: does the value exceed what ``factor`` allows above its running minimum?

    Returns (exploded (N,) bool, previous running minimum (N,), inf before any finite
    value). With m = min of the finite values before i and L0 = values[0]:

    - m > 0: values[i] > factor * m (a ratio needs a positive reference);
    - m <= 0: values[i] - m > factor * max(L0 - m, |m|): the rise above the minimum is
      large against both the progress made since the first value and the loss's own size.

    Non-finite values are never "exploded" here (callers test them first)."""
    finite = np.isfinite(values)
    running = np.minimum.accumulate(np.where(finite, values, np.inf))
    prev = np.concatenate([[np.inf], running[:-1]])
    first = values[0]
    with np.errstate(invalid="ignore", over="ignore"):
        ratio = values > factor * prev
        scale = np.maximum(first - prev, -prev)
        rise = values - prev > factor * scale
    out = np.where(prev > 0, ratio, rise) & np.isfinite(prev) & finite
    return out, prev


# ---------------------------------------------------------------------------- plateau


def plateau(steps, loss, window: int = 200, threshold: float = 0.01, smoothing: int = 20) -> dict:
    """Where did the loss stop improving? The relative-improvement plateau of one run.

    steps (N,) increasing ints, loss (N,) floats. ``s`` is the smoothed loss
    (:func:`~nblib.metrics.curves.smooth` with ``smoothing`` points), placed at the mean
    step of its window so the trailing mean does not lag (a trailing mean of 20 points
    logged every 10 steps sits ~95 steps behind a falling curve); ``s(u)`` is the value of
    the last smoothed point at or before step u. The improvement of the window of
    ``window`` *steps* ending at t is::

        improvement(t) = (s(t - window) - s(t)) / |s(t - window)|

    (relative, so negative losses work too), for every t whose window starts on the
    smoothed curve. ``s`` is a step function, so improvement(t) only changes where t or
    t - window crosses a smoothed point; it is judged at all those t, which covers every t
    (also between sparse logs). The plateau begins at the earliest step p such that
    improvement(t) < ``threshold`` for every t >= p + window, and at least one such t
    exists: from p on, no window of ``window`` steps improved the loss by the threshold any
    more. p is reported as the first logged step at or after that point. A curve that never
    improves by the threshold has its plateau at its first step; a curve whose last
    window still improved has none.

    Because the threshold is relative per window, a curve that keeps falling ever more
    slowly plateaus once a window's gain drops below it: 1 / sqrt(t) gains ~window / (2 t)
    per window, so with the defaults it plateaus near t = 10,000 - window. Noise of the
    smoothed loss should stay well below ``threshold`` x the loss, or single noisy windows
    count as improvements (raise ``smoothing``).

    Returns ``{"plateau": bool, "step": p or None, "improvement_after": relative
    improvement of s from p to the last smoothed point (None without a plateau),
    "window", "threshold", "reason": None, or why the run was not judged}``. Not judged
    (plateau False, step None): a run holding NaN / inf (a diverged run; see
    :func:`divergence`), or a run too short, i.e. with fewer than ``smoothing`` points or
    less than ``window`` steps after its first full smoothing window (for a loss logged
    every step: fewer than window + smoothing points).
    """
    steps, loss = check_curve(steps, loss)
    window = check_count("window", window, 1)
    threshold = check_number("threshold", threshold, 0.0, strict=True)
    smoothing = check_count("smoothing", smoothing, 1)
    out = {
        "plateau": False,
        "step": None,
        "improvement_after": None,
        "window": window,
        "threshold": threshold,
        "reason": None,
    }
    bad = first_true(~np.isfinite(loss))
    if bad is not None:
        out["reason"] = (
            f"loss is {loss[bad]} at step {steps[bad]}: a diverged run has no plateau "
            "(see divergence)"
        )
        return out
    short = (
        f"too short: needs {smoothing} points for the smoothing and then {window} more steps "
        f"(got {len(steps)} points over steps {steps[0]}..{steps[-1]})"
    )
    if len(steps) < smoothing or steps[-1] - steps[smoothing - 1] < window:
        out["reason"] = short
        return out
    s = smooth(loss, smoothing)
    c = centres(steps, smoothing)
    # s is a step function of the step (its value at the last point at or before), so
    # improvement(t) only changes where t or t - window crosses a point: judging it there
    # judges every t, also between sparse logs. Windows are kept by their start.
    at_end = np.flatnonzero(c - window >= c[0] - _TOL)  # t = c[i]
    at_start = np.flatnonzero(c + window <= c[-1] + _TOL)  # t - window = c[j]
    if not at_end.size:  # irregular logging can leave no full window despite the check above
        out["reason"] = short
        return out
    ref = np.searchsorted(c, c[at_end] - window + _TOL, side="right") - 1
    now = np.searchsorted(c, c[at_start] + window + _TOL, side="right") - 1
    starts = np.concatenate([c[at_end] - window, c[at_start]])
    gains = np.concatenate([relative_drop(s[ref], s[at_end]), relative_drop(s[at_start], s[now])])
    improved = gains >= threshold
    if improved.any():
        # improvement(t) is constant from one judged t to the next, so the plateau begins at
        # the next judged window start after the last one that still improved
        later = starts[starts > starts[improved].max() + _TOL]
        if not later.size:
            return out  # the last window still improved: no plateau (yet)
        begin = later.min()
    else:
        begin = c[0]
    first = int(np.searchsorted(steps, begin - _TOL, side="left"))  # first logged step >= it
    at = int(np.searchsorted(c, steps[first] + _TOL, side="right")) - 1
    out["plateau"] = True
    out["step"] = int(steps[first])
    out["improvement_after"] = float(relative_drop(s[at], s[-1]))
    return out


def stopped_after_warmup(
    steps,
    loss,
    warmup_steps: int,
    total_steps: int | None = None,
    margin: float = 0.1,
    **plateau_kwargs,
) -> dict:
    """Did learning stop right after warmup (seed 003's baseline)?

    Stopped when :func:`plateau` (``plateau_kwargs``: ``window``, ``threshold``,
    ``smoothing``) finds a plateau that begins no later than
    ``limit = warmup_steps + margin * total_steps`` (``total_steps`` defaults to the last
    logged step). A plateau from the first step (the loss never improved, not even during
    warmup) counts as stopped too. Seed 003's baseline (warmup 100, plateau from ~500 of
    50,000 steps) is stopped; its 3e-4 runs, improving until ~900 of 1,800, are not.
    The verdict depends on ``total_steps``: judge a run cut short with its planned length.

    Returns ``{"stopped": bool, "plateau_step": int or None, "warmup_steps", "limit":
    float, "reason": the plateau's reason when the run was not judged, else None}``.
    """
    steps, loss = check_curve(steps, loss)
    warmup = check_count("warmup_steps", warmup_steps, 0)
    if total_steps is None:
        total = float(max(steps[-1], 0))
    else:
        total = check_number("total_steps", total_steps, 0.0, strict=True)
    margin = check_number("margin", margin, 0.0, strict=False)
    unknown = sorted(set(plateau_kwargs) - {"window", "threshold", "smoothing"})
    if unknown:
        raise ParameterError(
            f"unknown plateau arguments {unknown}; expected window, threshold, smoothing"
        )
    plat = plateau(steps, loss, **plateau_kwargs)
    limit = warmup + margin * total
    return {
        "stopped": plat["step"] is not None and plat["step"] <= limit,
        "plateau_step": plat["step"],
        "warmup_steps": warmup,
        "limit": limit,
        "reason": plat["reason"],
    }


# ---------------------------------------------------------------------------- divergence


def _grad_spikes(steps, grad_norm, spike: float, burn_in: int) -> tuple[list[int], list[int]]:
    """(spike steps, NaN-norm steps) of grad_norm (N,) floats >= 0."""
    grad = check_values("grad_norm", grad_norm, steps)
    negative = first_true(grad < 0)
    if negative is not None:
        raise ParameterError(
            f"grad_norm must be >= 0 (a norm); it is {grad[negative]} at step {steps[negative]}"
        )
    history = pd.Series(np.where(np.isfinite(grad), grad, np.nan))
    # median of the previous GRAD_HISTORY finite norms (NaN when there are none yet)
    median = history.rolling(GRAD_HISTORY, min_periods=1).median().shift(1).to_numpy()
    judged = np.arange(len(grad)) >= burn_in
    with np.errstate(invalid="ignore"):
        high = judged & np.isfinite(grad) & (grad > spike * median)
    is_spike = high | np.isposinf(grad)
    return [int(s) for s in steps[is_spike]], [int(s) for s in steps[np.isnan(grad)]]


def divergence(
    steps,
    loss,
    grad_norm=None,
    factor: float = 3.0,
    spike: float = 10.0,
    burn_in: int = 10,
    smoothing: int = 1,
) -> dict:
    """Did the run diverge, and where? Also lists gradient-norm spikes.

    steps (N,) increasing ints, loss (N,) floats, NaN / inf allowed (that is what this
    looks for); grad_norm (N,) floats >= 0 or None. The run diverged at the first step where

    - the loss is NaN or +-inf (``"non-finite loss"``; any point, burn-in included), or
    - from point ``burn_in`` on, the loss exploded against m, the minimum of all earlier
      finite losses (``"loss exploded"``): for m > 0, loss > ``factor`` x m; for m <= 0 (a
      loss that can be negative, e.g. a negative log-likelihood, has no zero to take a
      ratio against) loss - m > ``factor`` x max(L0 - m, |m|) with L0 the first loss: the
      rise above the minimum is ``factor`` times larger than both the progress made since
      the start and the loss's own size.

    ``smoothing`` > 1 judges the explosion on the trailing mean of that many points (and
    its running minimum): a minibatch loss that is small and noisy swings 3x around its
    floor without diverging. Non-finite losses are always judged raw.

    Gradient spikes are reported, not counted as divergence (clipping may absorb them): the
    steps where grad_norm > ``spike`` x the median of the previous up to 50 finite grad
    norms, from point ``burn_in`` on; an inf grad norm is a spike anywhere. NaN grad norms
    (a NaN gradient, or a step whose norm was not logged) are listed in ``grad_nan``.

    Returns ``{"diverged": bool, "step": first divergence step or None, "reason":
    "non-finite loss" | "loss exploded" | None, "grad_spikes": [steps], "grad_nan":
    [steps], "min_loss": running minimum of the finite losses before the divergence step
    (None if the run did not diverge or no finite loss came before it)}``.
    """
    steps, loss = check_curve(steps, loss)
    factor = check_number("factor", factor, 1.0, strict=True)
    spike = check_number("spike", spike, 1.0, strict=True)
    burn_in = check_count("burn_in", burn_in, 0)
    smoothing = check_count("smoothing", smoothing, 1)
    spikes, nan_grads = (
        ([], []) if grad_norm is None else _grad_spikes(steps, grad_norm, spike, burn_in)
    )
    judged = smooth(loss, smoothing) if smoothing > 1 else loss
    blown, prev_min = exploded(judged, factor)
    blown[:burn_in] = False
    hits = [
        (first_true(~np.isfinite(loss)), "non-finite loss"),
        (first_true(blown), "loss exploded"),
    ]
    hits = [(i, why) for i, why in hits if i is not None]
    out = {
        "diverged": False,
        "step": None,
        "reason": None,
        "grad_spikes": spikes,
        "grad_nan": nan_grads,
        "min_loss": None,
    }
    if hits:
        index, why = min(hits)
        out |= {"diverged": True, "step": int(steps[index]), "reason": why}
        if np.isfinite(prev_min[index]):
            out["min_loss"] = float(prev_min[index])
    return out
