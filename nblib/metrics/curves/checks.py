"""Argument checks shared by the training-curve functions: every bad input is a
:class:`~nblib.errors.ParameterError` naming the argument, the bad value and what was
expected. NaN / inf losses are *not* bad input (the detectors look for them)."""

from __future__ import annotations

import math

import numpy as np

from nblib.errors import ParameterError, is_int


def first_true(mask: np.ndarray) -> int | None:
    """Index of the first True in ``mask`` (N,), or None."""
    hit = np.flatnonzero(mask)
    return int(hit[0]) if hit.size else None


def check_count(name: str, value, least: int) -> int:
    """An int >= ``least`` (bools refused: ``True`` is never a count here)."""
    if not is_int(value) or value < least:
        raise ParameterError(f"{name} must be an int >= {least}, got {value!r}")
    return value


def check_number(name: str, value, low: float, strict: bool) -> float:
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


def vector(name: str, values, what: str, dtype=np.float64) -> np.ndarray:
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


def check_steps(name: str, steps) -> np.ndarray:
    """Validate strictly increasing integer steps (N,), N >= 1; returns int64."""
    arr = vector(name, steps, "logged step", dtype=None)
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


def check_values(name: str, values, steps: np.ndarray, steps_name: str = "steps") -> np.ndarray:
    """Validate float values (N,) matching steps. NaN / inf are kept: every function
    either reports them or carries them through."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"{name} must be a 1-D array of numbers") from err
    if arr.shape != steps.shape:
        raise ParameterError(
            f"{name} must have shape {steps.shape} to match {steps_name}, got {arr.shape}"
        )
    return arr


def check_curve(steps, loss) -> tuple[np.ndarray, np.ndarray]:
    """One run: steps (N,) int64 strictly increasing, loss (N,) float64."""
    steps = check_steps("steps", steps)
    return steps, check_values("loss", loss, steps)


def check_lrs(lrs) -> np.ndarray:
    """Validate strictly increasing finite positive LRs (N,), N >= 1."""
    arr = vector("lrs", lrs, "learning rate")
    bad = first_true(~np.isfinite(arr) | (arr <= 0))
    if bad is not None:
        raise ParameterError(f"lrs must be finite and > 0; lrs[{bad}]={arr[bad]}")
    bad = first_true(np.diff(arr) <= 0)
    if bad is not None:
        i = bad + 1
        raise ParameterError(
            f"lrs must be strictly increasing; lrs[{i}]={arr[i]:g} follows "
            f"lrs[{i - 1}]={arr[i - 1]:g}"
        )
    return arr
