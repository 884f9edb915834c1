"""Per-episode result tables: CSV, JSON (a list, or ``{"episodes": [...]}``) and JSON lines.

This is the project's own format (the columns of :mod:`nblib.eval.results.schema`) and
the shape most home-made evaluation scripts write. Columns are found by name, with the
usual spellings accepted (:data:`COLUMN_NAMES`); other columns are ignored. A table needs
a success column and a task (or task index) column; ``run`` defaults to the file's name and
``suite`` to the file's suite column, else ``--suite``. Windows line endings are fine.
``complete`` is read from a ``complete`` column; a table without one, or an empty cell
(how pandas writes ``<NA>``), leaves it unknown.
"""

from __future__ import annotations

import csv
import io
import json

from nblib.errors import DataError
from nblib.eval.results.schema import (
    Episode,
    as_bool,
    default_run_name,
    line_error,
    normalize_suite,
    normalize_task,
    resolve_suite,
    suite_perturbation,
)

# schema column → the names it goes by in files (compared lower-case, first match wins)
COLUMN_NAMES = {
    "run": ("run", "run_name", "policy", "method", "model"),
    "suite": ("suite", "task_suite", "task_suite_name", "benchmark"),
    "task": ("task", "task_name", "task_description", "instruction", "language"),
    "task_id": ("task_id", "task_idx", "task_index"),
    "episode": ("episode", "episode_idx", "episode_index", "episode_id", "episode_ix", "trial"),
    "success": ("success", "is_success", "successful", "succeeded"),
    "steps": ("steps", "episode_length", "length", "num_steps"),
    "perturbation": ("perturbation", "perturbation_type", "category"),
    "seed": ("seed",),
    "complete": ("complete",),
}


def _columns(names, source: str) -> dict[str, str]:
    lower = {str(n).strip().lower(): n for n in names}
    found = {}
    for field, options in COLUMN_NAMES.items():
        for option in options:
            if option in lower:
                found[field] = lower[option]
                break
    if "success" not in found:
        raise DataError(
            f"{source}: no success column; expected one of {list(COLUMN_NAMES['success'])}, "
            f"found {list(names)}"
        )
    if "task" not in found and "task_id" not in found:
        raise DataError(
            f"{source}: no task column; expected one of "
            f"{list(COLUMN_NAMES['task'] + COLUMN_NAMES['task_id'])}, found {list(names)}"
        )
    return found


def _episodes(records, source: str, suite: str | None, run: str | None) -> list[Episode]:
    """records: (line number, dict) pairs."""
    records = list(records)
    if not records:
        raise DataError(f"{source}: no episodes in the file")
    names = []
    for _, record in records:
        names.extend(k for k in record if k not in names)
    columns = _columns(names, source)
    episodes = []
    for line, record in records:

        def get(field, record=record):
            key = columns.get(field)
            value = record.get(key) if key is not None else None
            return (
                None if value is None or (isinstance(value, str) and not value.strip()) else value
            )

        try:
            row_suite = resolve_suite(get("suite"), suite, source)
        except DataError as error:
            raise line_error(source, line, str(error).split(": ", 1)[1]) from None
        task_id = _integer(get("task_id"), "task_id", source, line)
        task = get("task")
        task = normalize_task(task) if task is not None else None
        if task is None:
            if task_id is None:
                raise line_error(source, line, "neither a task nor a task index")
            task = f"task {task_id}"
        episodes.append(
            Episode(
                run=str(run or get("run") or default_run_name(source)),  # a label wins
                suite=row_suite,
                task=task,
                success=_boolean(get("success"), "success", source, line),
                episode=_integer(get("episode"), "episode", source, line),
                steps=_integer(get("steps"), "steps", source, line),
                perturbation=str(get("perturbation") or suite_perturbation(row_suite)),
                seed=_integer(get("seed"), "seed", source, line),
                task_id=task_id,
                complete=None  # a table without the flag cannot tell
                if get("complete") is None
                else _boolean(get("complete"), "complete", source, line),
                source=source,
            )
        )
    return episodes


def _integer(value, field: str, source: str, line: int) -> int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise line_error(source, line, f"{field} must be a whole number, got {value!r}") from None
    if number != number:  # NaN: the cell says "unknown"
        return None
    if not number.is_integer():
        raise line_error(source, line, f"{field} must be a whole number, got {value!r}")
    return int(number)


def _boolean(value, field: str, source: str, line: int) -> bool:
    flag = as_bool(value)
    if flag is None:
        raise line_error(source, line, f"{field} must be true/false or 1/0, got {value!r}")
    return flag


def parse_csv(text: str, source: str, suite: str | None = None, run: str | None = None):
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise DataError(f"{source}: empty CSV file")
    width = len(reader.fieldnames)
    records = []
    for row in reader:
        line = reader.line_num
        if None in row or len(row) != width or any(v is None for v in row.values()):
            raise line_error(source, line, f"expected {width} fields like the header")
        records.append((line, row))
    return _episodes(records, source, suite, run)


def parse_json(obj, source: str, suite: str | None = None, run: str | None = None):
    items = obj.get("episodes") if isinstance(obj, dict) else obj
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DataError(
            f"{source}: expected a JSON list of episode objects or {{'episodes': [...]}}"
        )
    file_suite = obj.get("suite") if isinstance(obj, dict) else None
    if file_suite and not suite:
        suite = normalize_suite(file_suite)
    # JSON has no line numbers per item: number the items from 1 instead
    return _episodes(((i + 1, item) for i, item in enumerate(items)), source, suite, run)


def parse_jsonl(text: str, source: str, suite: str | None = None, run: str | None = None):
    records = []
    # split on "\n" only (a stray "\r" is whitespace to JSON), so numbers match an editor's
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise line_error(source, number, f"not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise line_error(source, number, "expected one JSON object per line")
        records.append((number, record))
    return _episodes(records, source, suite, run)


def looks_like_csv(text: str) -> bool:
    header = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    names = {n.strip().lower() for n in header.split(",")}
    return len(names) > 1 and bool(names & set(COLUMN_NAMES["success"]))


def looks_like_episodes_json(obj) -> bool:
    items = obj.get("episodes") if isinstance(obj, dict) else obj
    return (
        isinstance(items, list)
        and bool(items)
        and isinstance(items[0], dict)
        and any(k.lower() in COLUMN_NAMES["success"] for k in items[0])
    )
