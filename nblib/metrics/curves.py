"""Did a training run stop learning, diverge, or learn less than another? (seed 003)

Seed 003's ViT distillation baseline (LR 1e-4, cosine decay, no LR floor) stopped learning
right after warmup: loss 15.4 at step 0, 12.87 at 500, 12.82 at 1000, ~12.5 at 50,000.
Runs at 3e-4 with a 3e-5 floor kept improving past 2k steps, and a table of every run's
loss at the same steps decided the next config. The functions here make those calls
reproducible. All take one run as

- ``steps`` (N,) strictly increasing integer optimizer steps (logging may be irregular:
  windows are measured in steps, never in logged points), and
- ``loss`` (N,) floats, the training loss logged at those steps.

Functions:

- :func:`smooth`: trailing moving average over the last ``window`` logged points.
- :func:`plateau`: the step from which no window of ``window`` steps improved the smoothed
  loss by ``threshold`` (relative) any more.
- :func:`divergence`: the first non-finite or exploded loss, and gradient-norm spikes.
- :func:`stopped_after_warmup`: a plateau that begins by warmup + 10 % of the run.
- :func:`matched_steps`: every run's loss at the same steps and its delta to a baseline.
- :func:`range_test_suggestions`: steepest-descent and minimum LRs of an LR range test.

Non-finite losses (NaN, inf) mean a run diverged: :func:`divergence` reports them,
:func:`smooth` and :func:`matched_steps` carry them through as NaN, :func:`plateau` (and
:func:`stopped_after_warmup`) decline to judge such a run and say why,
:func:`range_test_suggestions` treats the first one as where the test blew up. No function
skips them. Undefined results are None (scalars) or NaN (table cells), never a made-up
number.

These detectors say *that* and *when* the loss stopped improving, not *why*: a cosine decay
without a floor, a peak LR too low or too high, and a converged model all plateau alike.
Seed 003's auto-tuning raised the LR by 1.5x on every detected plateau; that is a
heuristic on top of these facts, not something they establish.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from nblib.errors import ParameterError

# Gradient-norm spikes are judged against the median of at most this many previous norms.
GRAD_HISTORY = 50

# LR range test: stop where the smoothed loss exceeds this many times its running minimum
# (the early-stop threshold of fastai's and PyTorch Lightning's LR finders).
RANGE_STOP_FACTOR = 4.0

# LR range test: the steepest descent ignores this fraction of the points before the stop
# at the start (fastai skips the first num_it // 10) and at the end (one-sided differences
# next to the blow-up); at least one point each.
RANGE_SKIP_START = 0.1
RANGE_SKIP_END = 0.05

# Step comparisons of window centres (multiples of 1 / smoothing) allow for rounding.
_TOL = 1e-6

# Default matched steps: this many, log-spaced over the runs' common range.
MATCHED_POINTS = 8


# ---------------------------------------------------------------------------- input checks


def _check_int(name: str, value, least: int) -> int:
    # numpy ints are fine, bools are not (True is an int to Python, never a count here)
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if not ok or value < least:
        raise ParameterError(f"{name} must be an int >= {least}, got {value!r}")
    return int(value)


def _check_number(name: str, value, low: float, strict: bool) -> float:
    """A finite real number > low (strict) or >= low."""
    bound = f"> {low:g}" if strict else f">= {low:g}"
    if isinstance(value, bool | np.bool_):
        raise ParameterError(f"{name} must be a number {bound}, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"{name} must be a number {bound}, got {value!r}") from err
    if not math.isfinite(out) or out < low or (strict and out == low):
        raise ParameterError(f"{name} must be a finite number {bound}, got {value!r}")
    return out


def _check_steps(name: str, steps) -> np.ndarray:
    """Validate strictly increasing integer steps (N,), N >= 1; returns int64."""
    arr = _vector(name, steps, "logged step", dtype=None)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ParameterError(f"{name} must hold integer steps, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        # CSV exports often store steps as floats; accept them only if they are whole
        bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))
        if bad.size:
            i = bad[0]
            raise ParameterError(f"{name} must hold whole numbers; {name}[{i}]={arr[i]}")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero(np.diff(arr) <= 0)
    if bad.size:
        i = bad[0] + 1
        raise ParameterError(
            f"{name} must be strictly increasing; {name}[{i}]={arr[i]} follows "
            f"{name}[{i - 1}]={arr[i - 1]} (sort the log and drop repeated steps)"
        )
    return arr


def _check_values(name: str, values, steps: np.ndarray, steps_name: str = "steps") -> np.ndarray:
    """Validate float values (N,) matching steps. NaN / inf are kept: every function here
    either reports them or carries them through (see the module docstring)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"{name} must be a 1-D array of numbers") from err
    if arr.shape != steps.shape:
        raise ParameterError(
            f"{name} must have shape {steps.shape} to match {steps_name}, got {arr.shape}"
        )
    return arr


def _vector(name: str, values, what: str, dtype=np.float64) -> np.ndarray:
    """A non-empty 1-D array (float64 unless ``dtype`` is None: kept as given), or
    ParameterError naming the argument."""
    try:
        arr = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"{name} must be a 1-D array of numbers ({what}s)") from err
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be 1-D (N,), got shape {arr.shape}")
    if arr.size == 0:
        raise ParameterError(f"{name} is empty; expected at least one {what}")
    return arr


def _check_lrs(lrs) -> np.ndarray:
    """Validate strictly increasing finite positive LRs (N,), N >= 1."""
    arr = _vector("lrs", lrs, "learning rate")
    bad = _first(~np.isfinite(arr) | (arr <= 0))
    if bad is not None:
        raise ParameterError(f"lrs must be finite and > 0; lrs[{bad}]={arr[bad]}")
    bad = _first(np.diff(arr) <= 0)
    if bad is not None:
        i = bad + 1
        raise ParameterError(
            f"lrs must be strictly increasing; lrs[{i}]={arr[i]:g} follows "
            f"lrs[{i - 1}]={arr[i - 1]:g}"
        )
    return arr


def _check_curve(steps, loss) -> tuple[np.ndarray, np.ndarray]:
    steps = _check_steps("steps", steps)
    return steps, _check_values("loss", loss, steps)


# ---------------------------------------------------------------------------- helpers


def _trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of x[max(0, i - window + 1) : i + 1] for every i, in O(N); x must be finite."""
    # cumulative sums of x - x[0]: a constant x gives exact zeros (so an exactly flat loss
    # stays exactly flat) and a large shared offset does not eat the precision
    shifted = x - x[0]
    total = np.cumsum(shifted)
    before = np.zeros_like(total)
    before[window:] = total[:-window]
    counts = np.minimum(np.arange(1, len(x) + 1), window)
    return x[0] + (total - before) / counts


def _relative_drop(before, after):
    """(before - after) / |before|: > 0 when the loss fell. Works for negative losses too;
    from exactly 0 it is +-inf by the sign of the change (0 if nothing changed)."""
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (before - after) / np.abs(before)
    return np.where((before == 0) & (after == 0), 0.0, out)


def _exploded(values: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
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
    exploded = np.where(prev > 0, ratio, rise) & np.isfinite(prev) & finite
    return exploded, prev


def _first(mask: np.ndarray) -> int | None:
    hit = np.flatnonzero(mask)
    return int(hit[0]) if hit.size else None


# ---------------------------------------------------------------------------- smoothing


def smooth(values, window: int = 20) -> np.ndarray:
    """Trailing moving average: out[i] = mean(values[i - window + 1 : i + 1]).

    values (N,) floats, N >= 1; the first window - 1 points average the fewer points
    there are (out[0] = values[0]); ``window=1`` returns the finite values unchanged.
    Returns (N,) float64.

    Non-finite values are not skipped: every average whose window holds a NaN or inf is NaN
    (so the NaN lasts ``window`` points, then the average of the finite values after it
    resumes). A trailing mean lags a moving curve by about (window - 1) / 2 points;
    :func:`plateau` and :func:`range_test_suggestions` correct for that.
    """
    arr = _vector("values", values, "value")
    window = _check_int("window", window, 1)
    bad = ~np.isfinite(arr)
    if window == 1:
        return np.where(bad, np.nan, arr)
    if not bad.any():
        return _trailing_mean(arr, window)
    out = _trailing_mean(np.where(bad, 0.0, arr), window)
    # integer counts of bad points per window: exact, unlike a float running sum
    count = np.cumsum(bad)
    before = np.zeros_like(count)
    before[window:] = count[:-window]
    out[count - before > 0] = np.nan
    return out


def _centres(steps: np.ndarray, window: int) -> np.ndarray:
    """Mean step of each trailing window of ``window`` points: where a trailing average
    actually sits on the step axis (exact for a curve that is linear in step)."""
    return _trailing_mean(steps.astype(np.float64), window)


# ---------------------------------------------------------------------------- plateau


def plateau(steps, loss, window: int = 200, threshold: float = 0.01, smoothing: int = 20) -> dict:
    """Where did the loss stop improving? The relative-improvement plateau of one run.

    steps (N,) increasing ints, loss (N,) floats. ``s`` is the smoothed loss
    (:func:`smooth` with ``smoothing`` points), placed at the mean step of its window so the
    trailing mean does not lag (a trailing mean of 20 points logged every 10 steps sits
    ~95 steps behind a falling curve); ``s(u)`` is the value of the last smoothed point at
    or before step u. The improvement of the window of ``window`` *steps* ending at t is::

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
    steps, loss = _check_curve(steps, loss)
    window = _check_int("window", window, 1)
    threshold = _check_number("threshold", threshold, 0.0, strict=True)
    smoothing = _check_int("smoothing", smoothing, 1)
    out = {
        "plateau": False,
        "step": None,
        "improvement_after": None,
        "window": window,
        "threshold": threshold,
        "reason": None,
    }
    bad = _first(~np.isfinite(loss))
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
    c = _centres(steps, smoothing)
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
    gains = np.concatenate([_relative_drop(s[ref], s[at_end]), _relative_drop(s[at_start], s[now])])
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
    out["improvement_after"] = float(_relative_drop(s[at], s[-1]))
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
    steps, loss = _check_curve(steps, loss)
    warmup = _check_int("warmup_steps", warmup_steps, 0)
    if total_steps is None:
        total = float(max(steps[-1], 0))
    else:
        total = _check_number("total_steps", total_steps, 0.0, strict=True)
    margin = _check_number("margin", margin, 0.0, strict=False)
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
    steps, loss = _check_curve(steps, loss)
    factor = _check_number("factor", factor, 1.0, strict=True)
    spike = _check_number("spike", spike, 1.0, strict=True)
    burn_in = _check_int("burn_in", burn_in, 0)
    spikes: list[int] = []
    nan_grads: list[int] = []
    if grad_norm is not None:
        grad = _check_values("grad_norm", grad_norm, steps)
        negative = _first(grad < 0)
        if negative is not None:
            raise ParameterError(
                f"grad_norm must be >= 0 (a norm); it is {grad[negative]} at step {steps[negative]}"
            )
        nan = np.isnan(grad)
        history = pd.Series(np.where(np.isfinite(grad), grad, np.nan))
        # median of the previous GRAD_HISTORY finite norms (NaN when there are none yet)
        median = history.rolling(GRAD_HISTORY, min_periods=1).median().shift(1).to_numpy()
        judged = np.arange(len(grad)) >= burn_in
        with np.errstate(invalid="ignore"):
            high = judged & np.isfinite(grad) & (grad > spike * median)
        is_spike = high | np.isposinf(grad)
        spikes = [int(s) for s in steps[is_spike]]
        nan_grads = [int(s) for s in steps[nan]]

    nonfinite = _first(~np.isfinite(loss))
    smoothing = _check_int("smoothing", smoothing, 1)
    judged_loss = smooth(loss, smoothing) if smoothing > 1 else loss
    exploded, prev_min = _exploded(judged_loss, factor)
    exploded[:burn_in] = False
    blown = _first(exploded)
    hits = [(i, why) for i, why in ((nonfinite, "non-finite loss"), (blown, "loss exploded"))]
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


# ---------------------------------------------------------------------------- comparison


def _default_at(curves: dict) -> np.ndarray:
    """MATCHED_POINTS steps log-spaced over the runs' common range, from the first step by
    which every run has logged a positive step (so no row repeats a run's step-0 value)."""
    low = max(int(c[0][0]) for c in curves.values())
    high = min(int(c[0][-1]) for c in curves.values())
    if low > high:
        spans = {name: (int(c[0][0]), int(c[0][-1])) for name, c in curves.items()}
        raise ParameterError(f"the runs share no common step range; first..last steps: {spans}")
    firsts = []
    for st, _, _ in curves.values():
        positive = st[st > 0]
        firsts.append(int(positive[0]) if positive.size else high + 1)
    start = max(max(firsts), low)
    if start >= high:
        return np.array([high], dtype=np.int64)
    at = np.round(np.geomspace(start, high, MATCHED_POINTS)).astype(np.int64)
    return np.unique(at)


def matched_steps(runs: Mapping, at=None, baseline=None, smoothing: int = 20) -> pd.DataFrame:
    """Every run's loss at the same steps, and its delta to a baseline run (seed 003's
    "comparison at same steps" table).

    ``runs`` maps run name -> (steps (N,), loss (N,)), each checked like every curve here
    (lengths may differ between runs). ``at``: increasing steps to compare; default
    8 steps log-spaced over the common range of all runs, from the first step by which
    every run has logged a positive step (rounded to ints, duplicates dropped).

    For each run and step: ``loss``, the raw loss at the last logged step at or before that
    step; ``smoothed``, :func:`smooth` (``smoothing`` points, trailing, no lag correction:
    runs logged at the same interval lag alike, so their deltas stay fair) at that logged
    step; ``delta`` = smoothed - the baseline's smoothed at the same step (NaN without a
    ``baseline``; 0 in the baseline's own rows). A step before a run's first logged step
    or after its last is NaN for that run (never its nearest value). Non-finite losses are
    carried through, not dropped: a smoothing window holding one is NaN.

    Returns a tidy DataFrame with columns ``run, step, loss, smoothed, delta``, runs in the
    order of ``runs``, steps in the order of ``at``.
    """
    smoothing = _check_int("smoothing", smoothing, 1)
    if not isinstance(runs, Mapping) or not runs:
        raise ParameterError(
            "runs must be a non-empty mapping run name -> (steps, loss), "
            f"got {type(runs).__name__} {runs!r:.80}"
        )
    curves = {}
    for name, pair in runs.items():
        try:
            steps, loss = pair
        except (TypeError, ValueError) as err:
            raise ParameterError(
                f"runs[{name!r}] must be a (steps, loss) pair, got {type(pair).__name__}"
            ) from err
        steps = _check_steps(f"runs[{name!r}] steps", steps)
        loss = _check_values(
            f"runs[{name!r}] loss", loss, steps, steps_name=f"runs[{name!r}] steps"
        )
        curves[name] = (steps, loss, smooth(loss, smoothing))
    if baseline is not None and baseline not in curves:
        raise ParameterError(f"baseline {baseline!r} is not a run; runs: {list(curves)}")
    at = _default_at(curves) if at is None else _check_steps("at", at)

    def values_at(name):
        steps, loss, smoothed = curves[name]
        idx = np.searchsorted(steps, at, side="right") - 1
        inside = (idx >= 0) & (at <= steps[-1])
        idx = np.clip(idx, 0, None)
        return np.where(inside, loss[idx], np.nan), np.where(inside, smoothed[idx], np.nan)

    base = values_at(baseline)[1] if baseline is not None else None
    frames = []
    for name in curves:
        raw, smoothed = values_at(name)
        delta = smoothed - base if base is not None else np.full(len(at), np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "run": [name] * len(at),
                    "step": at,
                    "loss": raw,
                    "smoothed": smoothed,
                    "delta": delta,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------------- range test


def range_test_suggestions(lrs, losses, smoothing: int = 10, fraction: float = 0.1) -> dict:
    """Suggested LRs from an LR range test (Smith 2017; fastai's and PyTorch Lightning's
    LR finders): the LR rises exponentially, one loss per LR.

    lrs (N,) strictly increasing positive LRs, losses (N,) floats (NaN / inf allowed: the
    first one is where the test blew up). The loss is smoothed (:func:`smooth`,
    ``smoothing`` points) and each smoothed value placed at the geometric mean LR of its
    window (a trailing mean would otherwise drag every suggestion to higher LRs).

    - ``stopped_at``: first index where the smoothed loss is non-finite or exceeds 4x its
      running minimum (non-positive minima: the rule of :func:`divergence`), or None. The
      suggestions use only the points before it.
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
    lrs = _check_lrs(lrs)
    losses = _check_values("losses", losses, lrs, steps_name="lrs")
    smoothing = _check_int("smoothing", smoothing, 1)
    fraction = _check_number("fraction", fraction, 0.0, strict=True)
    s = smooth(losses, smoothing)
    exploded, _ = _exploded(s, RANGE_STOP_FACTOR)
    stopped_at = _first(exploded | ~np.isfinite(s))
    end = len(lrs) if stopped_at is None else stopped_at
    log_centre = _trailing_mean(np.log(lrs), smoothing)  # log of each window's geometric mean
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
