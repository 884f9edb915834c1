"""Read the training logs of runs done elsewhere into one tidy table.

:func:`read_log` reads one file, :func:`read_logs` several, into the table of
:mod:`~nblib.data.training_logs.schema`: columns ``run, step, loss, lr, grad_norm``, one
row per logged training step, ``step`` an int64, ``loss`` / ``lr`` / ``grad_norm`` float64
(``lr`` and ``grad_norm`` NaN when the log has none). A NaN, infinite or zero loss is kept
exactly as logged: a diverged or broken run must stay visible.

The format is detected from the content (:func:`detect_format`), not from the suffix alone;
one module reads each (:data:`FORMATS`):

``jsonl``
    One JSON object per line, e.g. a trainer's ``metrics.jsonl``
    (:mod:`~nblib.data.training_logs.jsonl`).
``csv``
    A plain table with a step column and a loss column, one run or a ``run`` / ``run_id``
    column (:mod:`~nblib.data.training_logs.csv_table`), or a Weights & Biases chart export
    with ``<run> - <metric>`` columns, several runs per file
    (:mod:`~nblib.data.training_logs.wandb_export`).
``text``
    A training script's stdout, lines with a step and a loss, or the caller's own regex
    (``pattern``, named groups ``step``, ``loss``, optionally ``lr``, ``grad_norm``, ``run``)
    (:mod:`~nblib.data.training_logs.text`).

A run that logs the same step twice with different losses (typically a resumed run appended
to the same file) is a :class:`~nblib.errors.DataError` naming the run, the step and both
lines; an exact repeat (same step, same loss) is dropped. Every error names the file and the
line (or column) and says what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from nblib.data.training_logs import csv_table, jsonl, text, wandb_export
from nblib.data.training_logs.detect import FORMATS, detect, detect_format, read_text
from nblib.data.training_logs.schema import (
    COLUMNS,
    GRAD_NORM_KEYS,
    LOSS_KEYS,
    LR_KEYS,
    RUN_KEYS,
    STEP_KEYS,
    check_duplicates,
    frame,
)
from nblib.errors import ParameterError


def _check_name(name: str, value) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ParameterError(f"{name}={value!r} is invalid; expected a non-empty string or None")


def _read(path, loss_key, run, pattern, pattern_everywhere: bool) -> pd.DataFrame:
    _check_name("loss_key", loss_key)
    _check_name("run", run)
    if not isinstance(path, str | Path):
        raise ParameterError(f"path={path!r} is invalid; expected a file path")
    path = Path(path)
    if pattern is not None:
        text.compile_pattern(pattern)  # a bad pattern is the caller's error whatever the file
        if loss_key is not None:
            raise ParameterError(
                "pattern and loss_key both given; the pattern's loss group already says "
                "which number is the loss"
            )
    content = read_text(path)
    fmt = detect(path, content)
    if pattern is not None and fmt != "text":
        if pattern_everywhere:
            raise ParameterError(
                f"pattern= applies to plain-text logs, but {path} reads as {fmt}; drop "
                "pattern= (use loss_key= to choose the loss)"
            )
        pattern = None  # read_logs: the pattern is for the text files among the others
    if fmt == "jsonl":
        rows = jsonl.read(path, content, loss_key, run)
    elif fmt == "csv":
        header, table = csv_table.parse(path, content)
        if wandb_export.looks_like(header):
            rows = wandb_export.read(path, header, table, loss_key, run)
        else:
            wandb_export.refuse_runs_table(path, header)
            rows = csv_table.read(path, header, table, loss_key, run)
    else:
        rows = text.read(path, content, loss_key, run, pattern)
    return frame(check_duplicates(path, rows))


def read_log(
    path: str | Path,
    loss_key: str | None = None,
    run: str | None = None,
    pattern: str | re.Pattern | None = None,
) -> pd.DataFrame:
    """One training log as a table with columns ``run, step, loss, lr, grad_norm``.

    ``loss_key`` names the loss (a JSON key, a CSV column, the metric of a W&B
    ``<run> - <metric>`` column, or the word before the value in a text log); by default
    the first of ``LOSS_KEYS`` the file has. ``run`` names the run (for a W&B export, or a
    text log read with a ``run`` group, only when it holds one run). ``pattern`` is a regex
    for plain-text logs with named groups ``step`` and ``loss`` (optionally ``lr``,
    ``grad_norm``, ``run``); lines it does not match are skipped, and a file where it
    matches no line is an error showing the pattern. Rows keep the file's order (W&B
    exports: run by run).
    """
    return _read(path, loss_key, run, pattern, pattern_everywhere=True)


def read_logs(
    paths: Iterable[str | Path],
    loss_key: str | None = None,
    pattern: str | re.Pattern | None = None,
) -> pd.DataFrame:
    """Several logs in one table, in the order given.

    Run names come from each file as in :func:`read_log`. When two files give the same run
    name, the later one becomes ``name (2)``, ``name (3)``, ...: runs are never merged.
    ``pattern`` is used for the plain-text files and ignored for JSON-lines and CSV ones.
    """
    if isinstance(paths, str | Path):
        raise ParameterError(
            f"paths={str(paths)!r} is one path; expected a list of paths (read_log reads one)"
        )
    try:
        paths = list(paths)
    except TypeError:
        raise ParameterError(f"paths={paths!r} is invalid; expected a list of paths") from None
    if not paths:
        raise ParameterError("paths is empty; expected at least one log file")

    frames = []
    used: set[str] = set()
    for path in paths:
        table = _read(path, loss_key, None, pattern, pattern_everywhere=False)
        names = list(dict.fromkeys(table["run"]))
        renames = {}
        for name in names:
            new, k = name, 2
            while new in used or (new != name and new in names):
                new, k = f"{name} ({k})", k + 1
            renames[name] = new
            used.add(new)
        table["run"] = table["run"].map(renames)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


__all__ = [
    "COLUMNS",
    "FORMATS",
    "GRAD_NORM_KEYS",
    "LOSS_KEYS",
    "LR_KEYS",
    "RUN_KEYS",
    "STEP_KEYS",
    "detect_format",
    "read_log",
    "read_logs",
]
