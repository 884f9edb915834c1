"""Every run's loss at the same steps (seed 003's "comparison at same steps" table)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from nblib.errors import ParameterError
from nblib.metrics.curves.checks import check_count, check_steps, check_values
from nblib.metrics.curves.smoothing import smooth

# Default matched steps: this many, log-spaced over the runs' common range.
MATCHED_POINTS = 8


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
    step; ``smoothed``, :func:`~nblib.metrics.curves.smooth` (``smoothing`` points,
    trailing, no lag correction: runs logged at the same interval lag alike, so their
    deltas stay fair) at that logged step; ``delta`` = smoothed - the baseline's smoothed
    at the same step (NaN without a ``baseline``; 0 in the baseline's own rows). A step
    before a run's first logged step or after its last is NaN for that run (never its
    nearest value). Non-finite losses are carried through, not dropped: a smoothing window
    holding one is NaN.

    Returns a tidy DataFrame with columns ``run, step, loss, smoothed, delta``, runs in the
    order of ``runs``, steps in the order of ``at``.
    """
    smoothing = check_count("smoothing", smoothing, 1)
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
        steps = check_steps(f"runs[{name!r}] steps", steps)
        loss = check_values(f"runs[{name!r}] loss", loss, steps, steps_name=f"runs[{name!r}] steps")
        curves[name] = (steps, loss, smooth(loss, smoothing))
    if baseline is not None and baseline not in curves:
        raise ParameterError(f"baseline {baseline!r} is not a run; runs: {list(curves)}")
    at = _default_at(curves) if at is None else check_steps("at", at)

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
