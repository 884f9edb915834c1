"""Reading a training log's text and telling its format from the content.

The suffix alone decides nothing: trainers write JSON lines to ``.txt`` files, and text
logs start their lines with ``[2025-03-02 10:00:01]`` or hold commas.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from nblib.data.training_logs.schema import fail

FORMATS = ("jsonl", "csv", "text")


def read_text(path: Path) -> str:
    """The file's text; a missing, empty, binary or folder path is a DataError."""
    if not path.exists():
        raise fail(path, "no such file")
    if path.is_dir():
        raise fail(path, "is a directory, expected a training log file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: Excel and W&B may write a BOM
    except UnicodeDecodeError as err:
        raise fail(
            path, f"is not UTF-8 text (byte {err.start}); expected a JSON-lines, CSV or text log"
        ) from err
    if not text.strip():
        raise fail(path, "is empty; expected a training log")
    return text


def lines(text: str) -> list[str]:
    """The lines of ``text``, numbered as an editor numbers them (line n is ``[n - 1]``)."""
    # Not str.splitlines: it also splits at form feeds and U+2028, shifting line numbers
    # away from what an editor shows.
    return [line.rstrip("\r") for line in text.split("\n")]


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def detect(path: Path, text: str) -> str:
    """The format of ``text`` (read from ``path``): one of :data:`FORMATS`."""
    rows = [line for line in lines(text) if line.strip()][:2]
    first = rows[0].strip()
    # "[" alone is no sign of JSON: text logs start lines with "[2025-03-02 10:00:01]".
    if first.startswith("{") or first == "[" or re.match(r"\[\s*\{", first):
        return "jsonl"
    header = next(csv.reader([first]))
    if len(header) >= 2:
        # Text logs have commas too ("iter 0: loss 4.27, time 12ms"), so a header alone
        # does not make a CSV: its first data row must have as many fields, one a number.
        if path.suffix.lower() == ".csv":
            return "csv"
        if len(rows) > 1:
            data = next(csv.reader([rows[1]]))
            if len(data) == len(header) and any(_is_number(f) for f in data):
                return "csv"
    return "text"


def detect_format(path: str | Path) -> str:
    """The format :func:`~nblib.data.training_logs.read_log` will read ``path`` as: one of
    :data:`FORMATS`.

    ``"jsonl"`` when the first non-blank line starts a JSON object; ``"csv"`` when it is a
    header of two or more fields followed by a row of as many fields with a number among
    them (or the file ends in ``.csv``); ``"text"`` otherwise. W&B chart exports are CSV.
    """
    path = Path(path)
    return detect(path, read_text(path))
