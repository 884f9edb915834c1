"""Input checks shared by the success-rate statistics: counts, score matrices, levels.

Every check raises :class:`~nblib.errors.ParameterError` naming the parameter, and for an
array the first offending element (``successes[1]=51``), so a bad row of a results table
is found without a debugger.
"""

from __future__ import annotations

import numpy as np

from nblib.errors import ParameterError, is_int


def whole(name: str, value, least: int) -> int:
    """An int >= ``least``; numpy ints (read out of arrays) count, bools never do."""
    if isinstance(value, np.integer):
        value = value.item()
    if not is_int(value) or value < least:
        raise ParameterError(f"{name} must be an int >= {least}, got {value!r}")
    return value


def rng(seed) -> np.random.Generator:
    return np.random.default_rng(whole("seed", seed, 0))


def _unit(name: str, value, closed: bool, what: str) -> float:
    """A number in [0, 1] (``closed``) or strictly inside it; ``what`` names it in the error."""
    interval = "[0, 1]" if closed else "(0, 1)"
    message = f"{name} must be {what} in {interval}, got {value!r}"
    if isinstance(value, bool | np.bool_):
        raise ParameterError(message)
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise ParameterError(message) from err
    inside = 0.0 <= out <= 1.0 if closed else 0.0 < out < 1.0  # also rejects NaN
    if not inside:
        raise ParameterError(message)
    return out


def open_unit(name: str, value) -> float:
    """A number strictly between 0 and 1 (a confidence level, alpha, power)."""
    return _unit(name, value, closed=False, what="a number")


def rate(name: str, value) -> float:
    """A success probability in [0, 1]."""
    return _unit(name, value, closed=True, what="a success rate")


def two_sided(value) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ParameterError(f"two_sided must be True or False, got {value!r}")
    return bool(value)


def first_bad(name: str, arr: np.ndarray, bad: np.ndarray) -> str:
    """``name=value`` for a scalar, ``name[i]=value`` for the first bad element."""
    if arr.ndim == 0:
        return f"{name}={arr.item()!r}"
    index = np.unravel_index(int(np.flatnonzero(bad)[0]), arr.shape)
    where = ", ".join(str(int(i)) for i in index)
    return f"{name}[{where}]={arr[index].item()!r}"


def _counts(name: str, values) -> np.ndarray:
    """Non-negative whole numbers of any shape as int64 (whole floats are accepted: counts
    read from a CSV are often floats)."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as err:  # ragged lists
        raise ParameterError(f"{name} must be whole numbers >= 0, got {values!r}") from err
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ParameterError(f"{name} must be whole numbers >= 0, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise ParameterError(f"{name} must be whole numbers, got {first_bad(name, arr, bad)}")
    if (arr < 0).any():
        raise ParameterError(f"{name} must be >= 0, got {first_bad(name, arr, arr < 0)}")
    return arr.astype(np.int64)


def counts(
    successes, trials, names: tuple[str, str] = ("successes", "trials")
) -> tuple[np.ndarray, np.ndarray]:
    """successes and trials broadcast to one shape, trials >= 1, successes <= trials."""
    s_name, n_name = names
    k, n = _counts(s_name, successes), _counts(n_name, trials)
    try:
        k, n = np.broadcast_arrays(k, n)
    except ValueError as err:
        raise ParameterError(
            f"{s_name} {k.shape} and {n_name} {n.shape} must have the same shape"
        ) from err
    if (n < 1).any():
        raise ParameterError(
            f"{n_name} must be >= 1 (a task without episodes has no success rate), got "
            f"{first_bad(n_name, n, n < 1)}"
        )
    over = k > n
    if over.any():
        raise ParameterError(
            f"{s_name} must be <= {n_name}, got {first_bad(s_name, k, over)} with "
            f"{first_bad(n_name, n, over)}"
        )
    return k, n


def suite(
    successes, trials, names: tuple[str, str] = ("successes", "trials")
) -> tuple[np.ndarray, np.ndarray]:
    """Per-task counts: 1-D (T,), T >= 1, same shape."""
    for name, values in zip(names, (successes, trials), strict=True):
        try:
            shape = np.shape(values)
        except ValueError as err:  # ragged nested lists
            raise ParameterError(f"{name} must be 1-D (T,) per-task counts") from err
        if len(shape) != 1 or shape[0] == 0:
            raise ParameterError(f"{name} must be 1-D (T,) per-task counts, got shape {shape}")
    if np.shape(successes) != np.shape(trials):
        raise ParameterError(
            f"{names[0]} {np.shape(successes)} and {names[1]} {np.shape(trials)} must have "
            "the same shape (T,)"
        )
    return counts(successes, trials, names)


def paired_suites(succ_a, trials_a, succ_b, trials_b):
    """Two policies' per-task counts of the same T tasks: (ka, na, kb, nb), each (T,)."""
    ka, na = suite(succ_a, trials_a, ("succ_a", "trials_a"))
    kb, nb = suite(succ_b, trials_b, ("succ_b", "trials_b"))
    if ka.shape != kb.shape:
        raise ParameterError(
            f"succ_a has {ka.size} tasks and succ_b {kb.size}; both policies must be "
            "evaluated on the same tasks, in the same order"
        )
    return ka, na, kb, nb


def scores(name: str, values, tasks: int | None = None) -> np.ndarray:
    """Finite float scores (runs, tasks), runs >= 1, tasks >= 1 (and == ``tasks``)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"{name} must be a (runs, tasks) array of numbers") from err
    if arr.ndim != 2 or 0 in arr.shape:
        raise ParameterError(
            f"{name} must be 2-D (runs, tasks) with at least one of each, got shape {arr.shape}"
            " (for one task pass scores[:, None])"
        )
    if tasks is not None and arr.shape[1] != tasks:
        raise ParameterError(
            f"{name} has {arr.shape[1]} tasks (columns), expected {tasks} to match the other "
            "policy's scores"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ParameterError(f"{name} must be finite, got {first_bad(name, arr, bad)}")
    return arr
