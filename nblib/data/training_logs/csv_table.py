"""Plain CSV training logs: a step column and a loss column, one run or a ``run`` /
``run_id`` column. Also the CSV parsing every CSV log shares (W&B exports included).

A cell reading ``nan`` / ``inf`` / ``0`` is kept as logged. An *empty* loss cell means the
row logged other columns only (an evaluation row of a sparse metrics file, as PyTorch
Lightning's ``CSVLogger`` writes them), so it gives no row. pandas' ``to_csv`` also writes
NaN as an empty cell, which would hide a diverged step: rows with an empty loss but an lr
or grad-norm value are therefore left out with a warning that names their lines.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

from nblib.data.training_logs.schema import (
    GRAD_NORM_KEYS,
    LOSS_KEYS,
    LR_KEYS,
    RUN_KEYS,
    STEP_KEYS,
    Row,
    default_run,
    fail,
    listing,
    optional,
    pick,
    to_float,
    to_step,
)

SHOWN_LINES = 5  # line numbers named in the empty-loss warning


def parse(path: Path, text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and every non-blank data row with the line it ends on."""
    # newline="": the csv module sees the real line ends, so line_num counts file lines
    # even when a quoted field spans two of them.
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            if not fields or not any(f.strip() for f in fields):
                continue
            if header is None:
                header = [f.strip() for f in fields]
                header_line = reader.line_num
                continue
            if len(fields) != len(header):
                raise fail(
                    path,
                    f"line {reader.line_num} has {len(fields)} fields but the header "
                    f"(line {header_line}) has {len(header)}; expected one field per column",
                )
            rows.append((reader.line_num, fields))
    except csv.Error as err:
        raise fail(path, f"line {reader.line_num} is not valid CSV ({err})") from None
    if not rows:
        raise fail(path, f"has a header but no data rows (columns: {listing(header)})")
    return header, rows


def read(
    path: Path,
    header: list[str],
    rows: list[tuple[int, list[str]]],
    loss_key: str | None,
    run: str | None,
) -> list[Row]:
    """The rows of a plain CSV log (parsed by :func:`parse`), in the file's order."""
    column = {name: i for i, name in reversed(list(enumerate(header)))}
    loss_col = loss_key if loss_key is not None else pick(LOSS_KEYS, header)
    if loss_col not in column:
        wanted = (
            f"column {loss_key!r}"
            if loss_key is not None
            else f"loss column (tried {list(LOSS_KEYS)})"
        )
        raise fail(
            path,
            f"has no {wanted}; columns: {listing(header)}; pass loss_key= to say which "
            "column is the loss",
        )
    step_col = pick(STEP_KEYS, header)
    if step_col is None:
        raise fail(
            path, f"has no step column (tried {list(STEP_KEYS)}); columns: {listing(header)}"
        )
    lr_col = pick(LR_KEYS, header)
    grad_col = pick(GRAD_NORM_KEYS, header)
    run_col = None if run is not None else pick(RUN_KEYS, header)
    default = run or default_run(path)

    def cell(fields: list[str], name: str | None) -> str:
        return fields[column[name]].strip() if name is not None else ""

    out, unlogged = [], []
    for number, fields in rows:
        where = f"line {number}"
        if cell(fields, loss_col) == "":
            # this row logged other columns only; with a training value beside it, it may
            # be a NaN loss written as an empty cell
            if cell(fields, lr_col) or cell(fields, grad_col):
                unlogged.append(number)
            continue
        out.append(
            Row(
                run=cell(fields, run_col) or default,
                step=to_step(cell(fields, step_col), path, f"{where}, column {step_col!r}"),
                loss=to_float(
                    cell(fields, loss_col), path, f"{where}, column {loss_col!r}", "the loss"
                ),
                lr=optional(cell(fields, lr_col), path, f"{where}, column {lr_col!r}", "lr"),
                grad_norm=optional(
                    cell(fields, grad_col), path, f"{where}, column {grad_col!r}", "grad_norm"
                ),
                line=number,
            )
        )
    if unlogged:
        _warn_empty_losses(path, loss_col, [c for c in (lr_col, grad_col) if c], unlogged)
    return out


def _warn_empty_losses(path: Path, loss_col: str, others: list[str], numbers: list[int]):
    shown = ", ".join(str(n) for n in numbers[:SHOWN_LINES])
    more = f", ... ({len(numbers) - SHOWN_LINES} more)" if len(numbers) > SHOWN_LINES else ""
    warnings.warn(
        f"{path}: {len(numbers)} row(s) have an empty {loss_col!r} cell but a value in "
        f"{' / '.join(repr(c) for c in others)} (lines {shown}{more}); they are read as steps "
        "that did not log the loss and left out. If they are NaN losses (pandas' to_csv "
        "writes NaN as an empty cell), write them as nan (to_csv(na_rep='nan')) so a "
        "diverged run stays visible",
        stacklevel=5,
    )
