"""Did one run stop learning, break, or diverge? The plateau, stopped-after-warmup and
divergence detectors (seeds 003 and 000).

Every function takes one run as ``steps`` (N,) strictly increasing integer optimizer steps
(windows are measured in steps, never in logged points) and ``loss`` (N,) floats.

A run is *broken* from the first step whose loss is NaN / inf, or exactly 0 after a clearly
positive loss (:func:`zero_collapse`); :func:`divergence` reports that step and why, and
:func:`plateau` (hence :func:`stopped_after_warmup`) declines to judge such a run: seed 000's
run, whose NaN outputs were masked and whose log printed ``Loss=0.0000`` from step 1850 on,
is broken there, not on a plateau.
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

# A zero loss is a broken step when the positive loss logged before it was at least this
# many units of the last digit the log prints its losses with (see zero_collapse) ...
ZERO_UNITS = 10
# ... judged on the digits of at most this many positive losses before the zero.
RESOLUTION_POINTS = 100
# More decimals than any log prints: a float64 carries about 17 significant digits.
_MAX_DECIMALS = 17

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


# ---------------------------------------------------------------------------- broken runs


def printed_decimals(values: np.ndarray) -> np.ndarray:
    """Per value (M,) finite and > 0: the fewest decimals that write it as it was read,
    to ~9 significant digits: 0.0523 -> 4, 2.5 -> 1, 12.0 -> 0, 1.234e-05 -> 8. A value
    with more digits than that (a float32 widened to float64) gets 10 or more."""
    decimals = np.full(values.shape, _MAX_DECIMALS)
    with np.errstate(over="ignore", invalid="ignore"):
        for d in range(_MAX_DECIMALS, -1, -1):  # the last d that writes it exactly wins
            scaled = values * 10.0**d
            exact = np.abs(scaled - np.rint(scaled)) <= 1e-9 * scaled
            decimals[exact] = d
    return decimals


def zero_collapse(loss: np.ndarray) -> tuple[int, int, float] | None:
    """The first loss of exactly 0 that follows a clearly positive loss, or None.

    loss (N,) floats. A log that prints ``Loss=0.0000`` says the loss is below 5e-5, not
    that it is 0. A run that converges towards 0 reaches that resolution gradually: the
    last positive loss before the first zero is a few units of the last printed digit
    (0.0002, 0.0001, 0.0000). A run whose loss jumps to 0 from a clearly positive value
    (0.0412, then 0.0000) did not converge: its loss was replaced (NaN outputs masked to 0,
    an empty mask, a loss term switched off). The rule: a zero at i is a broken step when
    the last positive loss before it, at j, is at least ``ZERO_UNITS`` (10) units of the
    last digit the log printed; that digit is the finest one among the last
    ``RESOLUTION_POINTS`` (100) positive losses up to j (:func:`printed_decimals`: 0.0412
    has 4 decimals, so a unit is 1e-4 and 0.0412 is 412 units). A loss logged at full
    float precision has units of ~1e-10 or less, so any exact 0 after a positive loss is
    broken. A run with any negative finite loss (a negative log-likelihood) crosses 0
    legitimately: the rule does not apply to it.

    Returns (i, j, unit) or None.
    """
    finite = np.isfinite(loss)
    if (loss[finite] < 0).any():
        return None
    zeros = np.flatnonzero(loss == 0)
    positive = np.flatnonzero(finite & (loss > 0))
    if not zeros.size or not positive.size:
        return None
    rank = np.searchsorted(positive, zeros) - 1  # the last positive loss before each zero
    zeros, rank = zeros[rank >= 0], rank[rank >= 0]
    finest = pd.Series(printed_decimals(loss[positive]))
    finest = finest.rolling(RESOLUTION_POINTS, min_periods=1).max().to_numpy()
    units = 10.0 ** -finest[rank]
    hit = first_true(loss[positive[rank]] >= ZERO_UNITS * units)
    if hit is None:
        return None
    return int(zeros[hit]), int(positive[rank[hit]]), float(units[hit])


def broken_step(steps: np.ndarray, loss: np.ndarray) -> tuple[int, str, str] | None:
    """(index, reason, detail) of the first broken point of a run, or None: reason
    ``"non_finite"`` (NaN / inf) or ``"zero"`` (:func:`zero_collapse`)."""
    bad = first_true(~np.isfinite(loss))
    zero = zero_collapse(loss)
    if zero is not None and (bad is None or zero[0] < bad):
        i, j, unit = zero
        return (
            i,
            "zero",
            f"loss is exactly 0 at step {steps[i]} after {loss[j]:g} at step {steps[j]} "
            f"({loss[j] / unit:.0f} units of the last printed digit): NaNs masked to 0 or a "
            "loss switched off, not convergence",
        )
    if bad is not None:
        return bad, "non_finite", f"loss is {loss[bad]} at step {steps[bad]}"
    return None


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
    (plateau False, step None): a broken run (a NaN / inf loss, or a loss that drops to
    exactly 0: see :func:`divergence`), or a run too short, i.e. with fewer than
    ``smoothing`` points or less than ``window`` steps after its first full smoothing
    window (for a loss logged every step: fewer than window + smoothing points).
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
    broken = broken_step(steps, loss)
    if broken is not None:
        what = "a diverged run" if broken[1] == "non_finite" else "a broken run"
        out["reason"] = f"{broken[2]}: {what} has no plateau (see divergence)"
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
    """Did the run diverge or break, and where? Also lists gradient-norm spikes.

    steps (N,) increasing ints, loss (N,) floats, NaN / inf allowed (that is what this
    looks for); grad_norm (N,) floats >= 0 or None. The run diverged at the first step
    where one of these holds (``reason``):

    - ``"non_finite"``: the loss is NaN or +-inf (any point, burn-in included);
    - ``"zero"``: the loss is exactly 0 after a clearly positive loss
      (:func:`zero_collapse`: seed 000's masked NaNs, logged as ``Loss=0.0000``; any point);
    - ``"blow_up"``: from point ``burn_in`` on, the loss exploded against m, the minimum
      of all earlier finite losses: for m > 0, loss > ``factor`` x m; for m <= 0 (a loss
      that can be negative, e.g. a negative log-likelihood, has no zero to take a ratio
      against) loss - m > ``factor`` x max(L0 - m, |m|) with L0 the first loss: the rise
      above the minimum is ``factor`` times larger than both the progress made since the
      start and the loss's own size.

    ``smoothing`` > 1 judges the blow-up on the trailing mean of that many points (and its
    running minimum): a minibatch loss that is small and noisy swings 3x around its floor
    without diverging. NaN / inf and zero losses are always judged raw.

    Gradient spikes are reported, not counted as divergence (clipping may absorb them): the
    steps where grad_norm > ``spike`` x the median of the previous up to 50 finite grad
    norms, from point ``burn_in`` on; an inf grad norm is a spike anywhere. NaN grad norms
    (a NaN gradient, or a step whose norm was not logged) are listed in ``grad_nan``.

    Returns ``{"diverged": bool, "step": first divergence step or None, "reason":
    "non_finite" | "zero" | "blow_up" | None, "detail": a sentence with the numbers, or
    None, "grad_spikes": [steps], "grad_nan": [steps], "min_loss": running minimum of the
    finite losses before the divergence step (None if the run did not diverge or no finite
    loss came before it)}``.
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
    hits = []
    broken = broken_step(steps, loss)
    if broken is not None:
        hits.append(broken)
    up = first_true(blown)
    if up is not None:
        hits.append((up, "blow_up", _blow_up_detail(steps, judged, prev_min, up, factor)))
    out = {
        "diverged": False,
        "step": None,
        "reason": None,
        "detail": None,
        "grad_spikes": spikes,
        "grad_nan": nan_grads,
        "min_loss": None,
    }
    if hits:
        index, why, detail = min(hits)
        out |= {"diverged": True, "step": int(steps[index]), "reason": why, "detail": detail}
        if np.isfinite(prev_min[index]):
            out["min_loss"] = float(prev_min[index])
    return out


def _blow_up_detail(steps, judged, prev_min, i: int, factor: float) -> str:
    value, low = judged[i], prev_min[i]
    if low > 0:
        return (
            f"loss {value:.4g} at step {steps[i]} is above {factor:g} x the lowest earlier "
            f"loss {low:.4g}"
        )
    return (
        f"loss {value:.4g} at step {steps[i]} rose {value - low:.4g} above the lowest earlier "
        f"loss {low:.4g}: more than {factor:g} x the progress made or the loss's own size"
    )
