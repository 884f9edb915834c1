"""JSON-lines training logs: one JSON object per line, e.g. a trainer's ``metrics.jsonl``.

Records without the loss key (evaluation records, summaries) are skipped. The run is the
``run`` argument, else the record's ``run`` / ``run_id`` field, else the parent folder for a
file called ``metrics.jsonl``, else the file stem. A ``null`` loss is NaN; Python's
``json`` writes and reads ``NaN`` / ``Infinity``, and they are kept.
"""

from __future__ import annotations

import json
from pathlib import Path

from nblib.data.training_logs.detect import lines
from nblib.data.training_logs.schema import (
    GRAD_NORM_KEYS,
    LOSS_KEYS,
    LR_KEYS,
    RUN_KEYS,
    STEP_KEYS,
    Row,
    default_run,
    fail,
    first_present,
    listing,
    to_float,
    to_step,
)


def _records(path: Path, text: str) -> list[tuple[int, dict]]:
    """(line number, record) of every non-blank line."""
    records: list[tuple[int, dict]] = []
    for number, line in enumerate(lines(text), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            hint = ""
            if number == 1 and line.strip() in ("{", "["):
                hint = " (this looks like one JSON document spread over many lines)"
            raise fail(
                path,
                f"line {number} is not valid JSON ({err.msg} at column {err.colno}); "
                f"expected one JSON object per line{hint}",
            ) from None
        if not isinstance(record, dict):
            raise fail(
                path,
                f"line {number} holds a JSON {type(record).__name__}, expected a JSON object",
            )
        records.append((number, record))
    return records


def read(path: Path, text: str, loss_key: str | None, run: str | None) -> list[Row]:
    """The rows of a JSON-lines log, in the file's order."""
    records = _records(path, text)
    keys = list(dict.fromkeys(k for _, r in records for k in r))  # in order of appearance
    key = loss_key if loss_key is not None else first_present(LOSS_KEYS, keys)
    if key is None or key not in keys:
        wanted = f"key {key!r}" if loss_key is not None else f"a loss key (tried {list(LOSS_KEYS)})"
        raise fail(
            path,
            f"no record has {wanted}; keys in the file: {listing(keys)}; "
            "pass loss_key= to say which one is the loss",
        )
    with_loss = [(n, r) for n, r in records if key in r]
    first_line, first = with_loss[0]
    step_key = first_present(STEP_KEYS, first)
    if step_key is None:
        raise fail(
            path,
            f"line {first_line} has {key!r} but no step key (tried {list(STEP_KEYS)}); "
            f"its keys: {listing(first)}",
        )
    loss_keys = list(dict.fromkeys(k for _, r in with_loss for k in r))
    lr_key = first_present(LR_KEYS, loss_keys) or next(
        (k for k in loss_keys if k.startswith("lr/")), None
    )
    grad_key = first_present(GRAD_NORM_KEYS, loss_keys)
    default = run or default_run(path)

    rows = []
    for number, record in with_loss:
        where = f"line {number}"
        if step_key not in record:
            raise fail(
                path, f"{where} has {key!r} but no {step_key!r}, which the other records have"
            )
        name = default
        if run is None:
            field = next((record[k] for k in RUN_KEYS if record.get(k) not in (None, "")), None)
            name = str(field) if field is not None else default
        rows.append(
            Row(
                run=name,
                step=to_step(record[step_key], path, where),
                loss=to_float(record[key], path, where, repr(key)),
                lr=to_float(record.get(lr_key), path, where, repr(lr_key)),
                grad_norm=to_float(record.get(grad_key), path, where, repr(grad_key)),
                line=number,
            )
        )
    return rows
