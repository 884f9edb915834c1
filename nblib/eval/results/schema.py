"""The per-episode results schema every parser writes and every statistic reads.

One row per episode (``../shared/DESIGN.md``): ``run, suite, task, episode, success, steps,
perturbation, seed``, plus ``task_id`` (the suite's task index when the file gives it),
``complete`` and ``source`` (the file it came from). Aggregation happens in ``nblib``, never in
the file, so every format is brought down to episodes:

- ``task`` is the task as the file names it: LIBERO's language instruction with whitespace
  collapsed (a LIBERO-Plus variant keeps its suffix, e.g. ``... light 10``), or
  ``task <id>`` when a file gives only the index.
- ``suite`` is the suite as evaluated: ``libero_spatial``, ``libero_object``,
  ``libero_goal``, ``libero_10``, ``libero_90``, a LIBERO-PRO suite such as
  ``libero_goal_lan``, or a name the user passes.
- ``perturbation`` is a category (:data:`PERTURBATIONS`), ``none`` for the unperturbed
  protocol and ``unknown`` when a perturbed variant cannot be told from the text.
- ``episode`` counts from 0 within the (run, suite, task); ``steps`` and ``seed`` are
  missing (``<NA>``) when the file does not say.
- A file that holds only counts per task (k successes out of n) gives n rows with
  ``episode`` missing: the counts are exact, the order is unknown.
- ``complete`` is a nullable boolean (pandas ``boolean``): True when the file shows that
  the episode's task and run ran to their end, False when it shows that either was
  interrupted (the counts are then what finished before it stopped), and ``<NA>`` when
  the file cannot tell. Combine flags with :func:`kleene_all` (any False → False, else any
  unknown → unknown), never with ``Series.all()``, which skips ``<NA>`` and so would
  count an unknown run as complete.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import pandas as pd

from nblib.errors import DataError, ParameterError

COLUMNS = ("run", "suite", "task", "episode", "success", "steps", "perturbation", "seed")
EXTRA_COLUMNS = ("task_id", "complete", "source")
ALL_COLUMNS = COLUMNS + EXTRA_COLUMNS

_STRING = ("run", "suite", "task", "perturbation", "source")
_INTEGER = ("episode", "steps", "seed", "task_id")

SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")

# LIBERO-PRO (Zxy-MLlab/LIBERO-PRO) suite suffixes → perturbation category.
PRO_SUFFIXES = {
    "lan": "language",
    "object": "object",
    "swap": "position",
    "task": "task",
    "env": "environment",  # vla-evaluation-harness names LIBERO-PRO environment runs so
}

# Categories of LIBERO-Plus (its seven dimensions) and LIBERO-PRO (language, object,
# position, task, environment); "none" is the unperturbed protocol.
PERTURBATIONS = (
    "none",
    "camera",
    "robot",
    "language",
    "light",
    "background",
    "noise",
    "layout",
    "object",
    "position",
    "task",
    "environment",
    "unknown",
)

_SUITE_ALIASES = {
    "spatial": "libero_spatial",
    "object": "libero_object",
    "goal": "libero_goal",
    "10": "libero_10",
    "long": "libero_10",
    "libero_long": "libero_10",
    "90": "libero_90",
}


@dataclass
class Episode:
    """One evaluated episode. ``success`` is what the simulator or the log said."""

    run: str
    suite: str
    task: str
    success: bool
    episode: int | None = None
    steps: int | None = None
    perturbation: str = "none"
    seed: int | None = None
    task_id: int | None = None
    complete: bool | None = True  # None: the file cannot tell (see the module docstring)
    source: str = ""


def normalize_task(text: str) -> str:
    """A task as logs spell it, whitespace collapsed (wrapped log lines rejoin with one
    space) and without a trailing full stop."""
    return re.sub(r"\s+", " ", str(text)).strip().rstrip(".").strip()


def normalize_suite(name: str) -> str:
    """``LIBERO-Spatial``, ``libero spatial``, ``spatial``, ``libero_long`` → the canonical
    suite name; a LIBERO-PRO suffix is kept (``libero_goal_lan``). Any other name is
    returned lower-cased with ``-``/spaces as ``_`` (a user's own suite)."""
    key = re.sub(r"[\s\-]+", "_", str(name).strip()).lower()
    if key in _SUITE_ALIASES:
        return _SUITE_ALIASES[key]
    for alias, canonical in _SUITE_ALIASES.items():
        if key == f"libero_{alias}" or key.startswith(f"libero_{alias}_"):
            return canonical + key[len(f"libero_{alias}") :]
    return key


def known_suites() -> list[str]:
    """Suite names results files use: LIBERO's five, their LIBERO-PRO variants
    (``<suite>_<suffix>``) and ``metaworld`` (``nblib eval``'s Meta-World runs)."""
    pro = [f"{s}_{x}" for s in SUITES if s != "libero_90" for x in PRO_SUFFIXES]
    return [*SUITES, *pro, "metaworld"]


def check_suite_name(name: str | None, flag: str = "--suite") -> str | None:
    """A caller's suite (``--suite``), normalised; None stays None. A name in the LIBERO
    family (``libero...``) or close to a known suite that is not one is a
    :class:`ParameterError` listing the known suites and suggesting the closest
    (``libero_gaol`` → ``libero_goal``); any other name is a user's own suite and passes."""
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip():
        raise ParameterError(f"{flag}={name!r}: expected a suite name, e.g. libero_spatial")
    suite, known = normalize_suite(name), known_suites()
    if suite in known:
        return suite
    close = difflib.get_close_matches(suite, known, n=1, cutoff=0.75)
    if close or suite.startswith("libero"):
        hint = f"; did you mean {close[0]!r}?" if close else ""
        variants = ", ".join(f"_{x}" for x in PRO_SUFFIXES)
        raise ParameterError(
            f"{flag}={name!r} is not a known suite{hint} Known suites: {', '.join(SUITES)}, "
            f"their LIBERO-PRO variants (<suite>{variants}) and metaworld; a name outside "
            "the LIBERO family is taken as your own suite"
        )
    return suite


def base_suite(suite: str) -> str:
    """The LIBERO suite a LIBERO-PRO suite perturbs (``libero_goal_lan`` → ``libero_goal``)."""
    for name in SUITES:
        if suite == name or suite.startswith(name + "_"):
            return name
    return suite


def suite_perturbation(suite: str) -> str:
    """The perturbation a suite name implies: a LIBERO-PRO suffix's category, else ``none``."""
    base = base_suite(suite)
    suffix = suite[len(base) + 1 :] if suite != base else ""
    return PRO_SUFFIXES.get(suffix, "none") if suffix else "none"


def episodes_frame(episodes: Iterable[Episode | dict]) -> pd.DataFrame:
    """Episodes → the schema's DataFrame with its dtypes (strings, nullable Int64, bool,
    and the nullable ``boolean`` ``complete``)."""
    rows = [asdict(e) if isinstance(e, Episode) else dict(e) for e in episodes]
    frame = pd.DataFrame(rows, columns=list(ALL_COLUMNS))
    return coerce_frame(frame, source="episodes")


def coerce_frame(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Give a frame the schema's dtypes; a missing required column or a value of the wrong
    kind is a :class:`DataError` naming ``source``, the column and the first bad row."""
    missing = [c for c in ("run", "suite", "task", "success") if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: results need the columns {missing}; it has {list(frame.columns)}"
        )
    out = frame.copy()
    for column in ALL_COLUMNS:
        if column not in out.columns:
            out[column] = pd.NA
    for column in _STRING:
        default = {"perturbation": "none", "source": source}.get(column)
        values = out[column]
        if default is not None:
            values = values.where(values.notna() & (values.astype(str) != ""), default)
        bad = values.isna()
        if bad.any():
            raise DataError(f"{source}: column {column!r} is empty in row {_first(bad)}")
        out[column] = values.astype(str)
    for column in _INTEGER:
        numbers = pd.to_numeric(out[column], errors="coerce")
        bad = numbers.isna() & out[column].notna() & (out[column].astype(str) != "")
        bad |= numbers.notna() & (numbers % 1 != 0)
        if bad.any():
            row = _first(bad)
            raise DataError(
                f"{source}: column {column!r} must hold whole numbers; "
                f"row {row} has {out[column][bad].iloc[0]!r}"
            )
        out[column] = numbers.astype("Int64")
    out["success"] = _booleans(out["success"], "success", source, required=True)
    # a table without the column, or an empty cell, does not say whether the run ended
    out["complete"] = _booleans(out["complete"], "complete", source, required=False)
    return out[list(ALL_COLUMNS)].reset_index(drop=True)


_TRUE = {"true", "1", "1.0", "yes", "success", "succeeded"}
_FALSE = {"false", "0", "0.0", "no", "failure", "failed", "fail"}


def as_bool(value) -> bool | None:
    """A success flag as files spell it (``True``, ``1``, ``"yes"``, ``"failure"`` ...);
    None when the value is not one."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _booleans(values: pd.Series, column: str, source: str, required: bool) -> pd.Series:
    """True/False flags: ``bool`` dtype when ``required`` (an empty cell is an error),
    else the nullable ``boolean`` dtype with ``<NA>`` for an empty cell."""
    result = []
    for i, value in enumerate(values):
        if value is None or (not isinstance(value, str) and pd.isna(value)) or value == "":
            if required:
                raise DataError(f"{source}: column {column!r} is empty in row {i}")
            result.append(pd.NA)
            continue
        flag = as_bool(value)
        if flag is None:
            raise DataError(
                f"{source}: column {column!r} must be true/false (or 1/0); row {i} has {value!r}"
            )
        result.append(flag)
    return pd.Series(result, index=values.index, dtype=bool if required else "boolean")


def kleene_all(flags) -> bool | None:
    """Whether all ``flags`` hold, in three-valued logic: False if any is False, else None
    (unknown) if any is None or ``<NA>``, else True (also for no flags)."""
    unknown = False
    for flag in flags:
        if flag is None or pd.isna(flag):
            unknown = True
        elif not flag:
            return False
    return None if unknown else True


def _first(mask: pd.Series) -> int:
    return int(mask.to_numpy().nonzero()[0][0])


# File names that say nothing about the run: the run is named after their folder instead.
_GENERIC_STEMS = {"eval_info", "results", "result", "log", "eval", "metrics", "episodes", "output"}


def default_run_name(path) -> str:
    """The run label of a file when the caller gives none: its stem, or its folder's name
    for generic names such as ``eval_info.json`` or ``results.json``."""
    from pathlib import Path

    path = Path(path)
    stem = path.stem
    if stem.lower() in _GENERIC_STEMS and path.parent.name:
        return path.parent.name
    return stem


def resolve_suite(found: str | None, given: str | None, source: str) -> str:
    """The suite of a file: what it states, else what the caller passed (``--suite``).
    A file that states none while the caller passes none is an error (never guessed); a
    caller's suite that contradicts the file's is an error naming both."""
    found_n = normalize_suite(found) if found else None
    given_n = normalize_suite(given) if given else None
    if found_n and given_n and found_n != given_n:
        raise DataError(
            f"{source}: the file says suite {found_n!r} but {given_n!r} was given (--suite, "
            "or notebook 05's suite parameter); drop it or check the file"
        )
    suite = found_n or given_n
    if not suite:
        raise DataError(
            f"{source}: cannot tell the LIBERO suite from the file; pass it with "
            "--suite (e.g. --suite libero_spatial) or suite=..."
        )
    return suite


def line_error(source: str, line: int, message: str) -> DataError:
    """``DataError("<path>:<line>: <message>")`` — raise it for a line that cannot be parsed."""
    return DataError(f"{source}:{line}: {message}")


def _task_table() -> dict[str, list[str]]:
    """suite → its tasks' language instructions in task-id order (LIBERO's default task
    order), from ``data_manifests/published/libero_tasks.csv``; empty when it is missing."""
    global _TASKS
    if _TASKS is None:
        import csv

        from nblib.paths import manifests_dir

        path = manifests_dir() / "published" / "libero_tasks.csv"
        table: dict[str, list[str]] = {}
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    table.setdefault(row["suite"], []).append(normalize_task(row["task"]))
        _TASKS = table
    return _TASKS


_TASKS: dict[str, list[str]] | None = None


def _check_task_suites(frame: pd.DataFrame, table: dict[str, list[str]]) -> None:
    owners: dict[str, list[str]] = {}
    for suite, names in table.items():
        for name in dict.fromkeys(n.lower() for n in names):  # libero_90 repeats some
            owners.setdefault(name, []).append(suite)
    pairs = frame[["suite", "task", "source"]].drop_duplicates()
    for suite, task, source in pairs.itertuples(index=False):
        found = owners.get(task.lower())
        if suite in table and found and suite not in found:
            raise DataError(
                f"{source}: task {task!r} is a task of {' and '.join(found)}, not of "
                f"{suite} (the suite the file states or --suite gives); pass "
                f"--suite {found[0]} or check the file"
            )


def canonical_tasks(frame: pd.DataFrame) -> pd.DataFrame:
    """Name each task the same way whatever tool wrote it, so runs can be paired by task:
    in the four LIBERO suites and libero_90 (not their LIBERO-PRO variants, whose
    instructions differ), a ``task <id>`` from a file that gives only the index gets the
    suite's instruction, and an instruction gets its index when that is unambiguous.
    An instruction of another of these suites that its own suite lacks (a LIBERO-10 log
    read with ``--suite libero_goal``) is a :class:`DataError` naming the task, the file
    and the suite it belongs to."""
    table = _task_table()
    if frame.empty or not table:
        return frame
    _check_task_suites(frame, table)
    out = frame.copy()
    tasks, ids = out["task"].tolist(), out["task_id"].tolist()
    for i, (suite, task, task_id) in enumerate(zip(out["suite"], tasks, ids, strict=True)):
        names = table.get(suite)
        if not names:
            continue
        if task_id is not pd.NA and task_id is not None and task == f"task {task_id}":
            if 0 <= int(task_id) < len(names):
                tasks[i] = names[int(task_id)]
        elif task_id is pd.NA or task_id is None:
            key = task.lower()
            matches = [k for k, name in enumerate(names) if name.lower() == key]
            if len(matches) == 1:
                ids[i] = matches[0]
    out["task"] = pd.Series(tasks, index=out.index, dtype=str)
    out["task_id"] = pd.Series(ids, index=out.index, dtype="Int64")
    return out
