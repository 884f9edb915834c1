"""The tidy table every training-log reader writes, and the checks on its values.

One row per logged training step: ``run`` (str), ``step`` (int64, the optimizer step),
``loss`` (float64), ``lr`` and ``grad_norm`` (float64, NaN when the log has none). A NaN,
infinite or zero loss is kept exactly as logged: a diverged or broken run must stay
visible (:mod:`nblib.metrics.curves` judges it). Readers build :class:`Row` objects;
:func:`check_duplicates` and :func:`frame` turn them into the table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nblib.errors import DataError

COLUMNS = ("run", "step", "loss", "lr", "grad_norm")

# Tried in this order when the caller names no loss_key; the first one the log has wins.
LOSS_KEYS = ("loss", "train/loss", "train_loss")
STEP_KEYS = ("step", "global_step", "train/global_step", "iter", "iteration", "_step")
LR_KEYS = ("lr", "learning_rate", "train/learning_rate", "train/lr")
GRAD_NORM_KEYS = ("grad_norm", "train/grad_norm", "gradient_norm")
RUN_KEYS = ("run", "run_id")

LISTED = 30  # names shown when a loss key or column is missing


@dataclass
class Row:
    """One logged step as a reader found it; ``line`` is where, for error messages."""

    run: str
    step: int
    loss: float
    lr: float
    grad_norm: float
    line: int


def fail(path: Path, message: str) -> DataError:
    """``DataError("<path>: <message>")``: every reader's error names the file first."""
    return DataError(f"{path}: {message}")


def listing(names: Iterable[str]) -> str:
    """The first LISTED names, quoted, and how many more there are."""
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:LISTED])
    more = f", ... ({len(names) - LISTED} more)" if len(names) > LISTED else ""
    return f"[{shown}{more}]"


def default_run(path: Path) -> str:
    """The run of a file that names none: its stem, or its folder for ``metrics.jsonl``."""
    # Trainers write <run dir>/metrics.jsonl, so the folder is the only name the run has.
    if path.name == "metrics.jsonl" and path.parent.name:
        return path.parent.name
    return path.stem


def pick(candidates: Iterable[str], available: Iterable[str]) -> str | None:
    """The first candidate present in ``available`` (exact name first, then any case)."""
    available = list(available)
    present = set(available)
    for name in candidates:
        if name in present:
            return name
    folded = {a.casefold(): a for a in reversed(available)}
    for name in candidates:
        if name.casefold() in folded:
            return folded[name.casefold()]
    return None


def first_present(candidates: Iterable[str], keys: Iterable[str]) -> str | None:
    """The first candidate among ``keys``, exact names only (JSON keys)."""
    present = set(keys)
    return next((k for k in candidates if k in present), None)


def to_float(value, path: Path, where: str, name: str) -> float:
    """A logged number as float; NaN/Inf kept, null read as NaN (JSON has no NaN)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or isinstance(value, dict | list):
        raise fail(path, f"{where}: {name} is {value!r}, expected a number")
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise fail(
            path, f"{where}: {name} is {value!r}, expected a number (or nan / inf)"
        ) from None


def optional(value: str, path: Path, where: str, name: str) -> float:
    """A table cell as float: an empty cell is NaN (the column was not logged there)."""
    return math.nan if value == "" else to_float(value, path, where, name)


def to_step(value, path: Path, where: str) -> int:
    """A logged step as int: whole numbers only (``"10"``, ``10.0``), never rounded."""
    if isinstance(value, bool) or value is None:
        raise fail(path, f"{where}: step is {value!r}, expected a whole number")
    try:
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, int):
            return number
        if isinstance(number, float) and number.is_integer():
            return int(number)
    except (TypeError, ValueError):
        pass
    raise fail(path, f"{where}: step is {value!r}, expected a whole number")


def check_duplicates(path: Path, rows: list[Row]) -> list[Row]:
    """Drop exact repeats; a step logged twice with different losses is an error."""
    seen: dict[tuple[str, int], Row] = {}
    kept = []
    for row in rows:
        first = seen.get((row.run, row.step))
        if first is None:
            seen[(row.run, row.step)] = row
            kept.append(row)
            continue
        same = first.loss == row.loss or (math.isnan(first.loss) and math.isnan(row.loss))
        if not same:
            raise fail(
                path,
                f"run {row.run!r} logs step {row.step} twice with different losses: "
                f"{first.loss!r} (line {first.line}) and {row.loss!r} (line {row.line}); "
                "expected one loss per step (a resumed run appended to the same log? keep "
                "one of the two segments, or give each its own file)",
            )
    return kept


def frame(rows: list[Row]) -> pd.DataFrame:
    """Rows → the table with the schema's columns and dtypes, in the rows' order."""
    return pd.DataFrame(
        {
            "run": pd.Series([r.run for r in rows], dtype=object),
            "step": np.array([r.step for r in rows], dtype=np.int64),
            "loss": np.array([r.loss for r in rows], dtype=np.float64),
            "lr": np.array([r.lr for r in rows], dtype=np.float64),
            "grad_norm": np.array([r.grad_norm for r in rows], dtype=np.float64),
        },
        columns=list(COLUMNS),
    )
