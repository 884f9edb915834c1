"""Performance profiles (Agarwal et al. 2021, rliable's ``create_performance_profile``):
for every threshold tau, the fraction of scores above tau, with task-stratified bootstrap
bands. A profile shows the whole score distribution where a mean shows one number: two
policies with the same suite mean can differ in how many tasks they solve reliably.

Scores are (runs, tasks) arrays, as everywhere in rliable. A run is whatever is repeated
within a task: seeds of a training run (scores = their per-task success rates), or the
episodes of one evaluation (scores = 0/1 outcomes, see :func:`episode_outcomes`).

- ``average=False``: rliable's score distribution, the fraction of all (run, task)
  scores above tau.
- ``average=True``: rliable's average score distribution, the fraction of tasks whose mean
  score over runs is above tau; with episodes as runs this is the fraction of tasks whose
  success rate exceeds tau, the profile that fits a LIBERO-style evaluation.

The bands redraw each task's runs with replacement, independently per task, and keep the
tasks (rliable's default, ``task_bootstrap=False``), through SciPy's ``stats.bootstrap``
(see :mod:`nblib.metrics.success.aggregates` for why not rliable's own bootstrap).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from nblib.errors import ParameterError
from nblib.metrics.success import checks
from nblib.metrics.success.aggregates import stratified_interval

PROFILE_COLUMNS = ("method", "tau", "profile", "ci_low", "ci_high")


def episode_outcomes(successes, trials) -> np.ndarray:
    """Per-task counts as a (episodes, tasks) matrix of 0/1 outcomes: the input of a
    profile over one evaluation's episodes.

    successes, trials: (T,) counts; every task must have the same number of episodes (a
    (runs, tasks) array is rectangular). Task t's column holds successes[t] ones, then
    zeros: the order of episodes within a task does not matter to the bootstrap, which
    redraws them with replacement.
    """
    k, n = checks.suite(successes, trials)
    if (n != n[0]).any():
        other = int(np.flatnonzero(n != n[0])[0])
        raise ParameterError(
            f"trials must be equal for every task (a (episodes, tasks) matrix), got "
            f"trials[0]={int(n[0])} and trials[{other}]={int(n[other])}"
        )
    return (np.arange(int(n[0]))[:, None] < k[None, :]).astype(np.float64)


def _taus(taus) -> np.ndarray:
    if taus is None:
        return np.linspace(0.0, 1.0, 101)
    try:
        arr = np.asarray(taus, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"taus must be a 1-D array of numbers, got {taus!r}") from err
    if arr.ndim != 1 or arr.size == 0:
        raise ParameterError(f"taus must be 1-D with at least one threshold, got shape {arr.shape}")
    if not np.isfinite(arr).all() or (np.diff(arr) <= 0).any():
        raise ParameterError(f"taus must be finite and strictly increasing, got {arr.tolist()}")
    return arr


def _profile_function(taus: np.ndarray, average: bool):
    """statistic(*columns, axis=-1) -> (taus, ...): one column (..., runs) per task."""

    def profile(*columns, axis=-1):
        columns = np.broadcast_arrays(*columns)
        if average:
            values = np.stack([c.mean(axis=axis) for c in columns], axis=-1)  # (..., tasks)
        else:
            values = np.concatenate(columns, axis=axis)  # (..., runs * tasks)
        above = values[..., None] > taus  # (..., n, taus)
        return np.moveaxis(above.mean(axis=-2), -1, 0)

    return profile


def performance_profiles(
    scores: Mapping[str, object],
    taus=None,
    average: bool = False,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Performance profile of every method with stratified bootstrap bands.

    scores: method name -> (runs, tasks) scores (runs may differ between methods, tasks
    too). taus: strictly increasing thresholds (default 101 points on [0, 1], for success
    rates). average: see the module docstring (False: all run scores; True: task means).

    Returns a DataFrame with one row per (method, tau): :data:`PROFILE_COLUMNS`, where
    ``profile`` is the fraction of scores (or task means) strictly above tau, in [0, 1]
    and non-increasing in tau, and ``ci_low`` / ``ci_high`` its percentile band. Every
    method's band is drawn with the same ``seed``, so adding a method leaves the others'
    bands as they were. With one run per task the band has width 0 (nothing to redraw).
    """
    if not isinstance(scores, Mapping) or not scores:
        raise ParameterError(
            f"scores must be a non-empty mapping method -> (runs, tasks) array, got {scores!r}"
        )
    taus = _taus(taus)
    if not isinstance(average, bool | np.bool_):
        raise ParameterError(f"average must be True or False, got {average!r}")
    profile = _profile_function(taus, bool(average))
    parts = []
    for method, values in scores.items():
        matrix = checks.scores(f"scores[{method!r}]", values)
        columns = tuple(matrix.T)
        low, high = stratified_interval(
            columns, profile, n_boot, confidence, seed, elements=matrix.size * taus.size
        )
        parts.append(
            pd.DataFrame(
                {
                    "method": method,
                    "tau": taus,
                    "profile": profile(*columns),
                    "ci_low": low,
                    "ci_high": high,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[list(PROFILE_COLUMNS)]
