"""Result files of LIBERO-style evaluations, read into one per-episode table.

:func:`read_results` takes files and folders in any supported format, tells the format
from the content (:func:`detect_format`), and returns the schema's DataFrame
(:mod:`~nblib.eval.results.schema`). :func:`~nblib.eval.results.summary.summarize` turns it
into one row per (run, suite, task) with Wilson intervals.

Formats (:data:`FORMATS`):

``libero_log``
    Text logs of ``run_libero_eval.py`` (openvla, openvla-oft, openpi and their forks,
    LIBERO-Plus), messy ones included (:mod:`~nblib.eval.results.libero_log`).
``lerobot_eval_info`` / ``lerobot_stdout``
    LeRobot's ``eval_info.json`` and ``lerobot-eval``'s printed metrics
    (:mod:`~nblib.eval.results.lerobot`).
``vla_harness``
    allenai vla-evaluation-harness result JSON (:mod:`~nblib.eval.results.harness`).
``episodes_csv`` / ``episodes_json`` / ``episodes_jsonl``
    Per-episode tables, the project's own schema included (:mod:`~nblib.eval.results.tables`).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from nblib.errors import DataError, ParameterError
from nblib.eval.results import harness, lerobot, lerobot_stdout, libero_log, tables
from nblib.eval.results.schema import (
    ALL_COLUMNS,
    COLUMNS,
    Episode,
    base_suite,
    canonical_tasks,
    check_suite_name,
    episodes_frame,
    normalize_suite,
    normalize_task,
)

FORMATS = (
    "libero_log",
    "lerobot_eval_info",
    "lerobot_stdout",
    "vla_harness",
    "episodes_csv",
    "episodes_json",
    "episodes_jsonl",
)
# Suffixes read when a folder is given; other files in it (videos, configs) are skipped.
RESULT_SUFFIXES = (".txt", ".log", ".out", ".json", ".jsonl", ".csv")


def detect_format(text: str, source: str = "<text>") -> str:
    """The format of a result file's content (one of :data:`FORMATS`); a
    :class:`DataError` naming ``source`` when no parser recognises it."""
    return _sniff(text, source)[0]


def _sniff(text: str, source: str) -> tuple[str, object]:
    """(format, the parsed JSON document or None): a JSON file is parsed once, here."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith(("{", "[")):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError:
            obj = None
        if obj is not None:
            if lerobot.looks_like_eval_info(obj):
                return "lerobot_eval_info", obj
            if harness.looks_like(obj):
                return "vla_harness", obj
            if tables.looks_like_episodes_json(obj):
                return "episodes_json", obj
            if tables.looks_like_episodes_json([obj]):
                return "episodes_jsonl", None  # JSON lines holding a single episode
            raise DataError(
                f"{source}: a JSON file, but neither LeRobot eval_info, vla-evaluation-harness "
                "results nor a list of episodes (each with a success field)"
            )
        if stripped.startswith("{"):
            return "episodes_jsonl", None
    if lerobot_stdout.looks_like_stdout(text):
        return "lerobot_stdout", None
    if libero_log.looks_like(text):
        return "libero_log", None
    if tables.looks_like_csv(text):
        return "episodes_csv", None
    raise DataError(
        f"{source}: cannot tell the format of this file; supported: {', '.join(FORMATS)} "
        "(see `nblib results summarize --help`)"
    )


def parse_text(
    text: str,
    source: str,
    suite: str | None = None,
    run: str | None = None,
    format: str | None = None,
) -> list[Episode]:
    """Episodes of one result file's content (format detected unless given)."""
    if format is None:
        return _parse(text, source, *_sniff(text, source), suite=suite, run=run)
    if format not in FORMATS:
        raise ParameterError(f"format={format!r} is unknown; expected one of {list(FORMATS)}")
    return _parse(text, source, format, None, suite=suite, run=run)


def _parse(text: str, source: str, fmt: str, obj, suite, run) -> list[Episode]:
    """``obj``: the JSON document when :func:`_sniff` already parsed it."""
    if fmt == "libero_log":
        return libero_log.parse(text, source, suite=suite, run=run)
    if fmt == "lerobot_stdout":
        return lerobot_stdout.parse_stdout(text, source, suite=suite, run=run)
    if fmt == "episodes_csv":
        return tables.parse_csv(text, source, suite=suite, run=run)
    if fmt == "episodes_jsonl":
        return tables.parse_jsonl(text, source, suite=suite, run=run)
    if obj is None:
        try:
            obj = json.loads(text.lstrip("\ufeff"))
        except json.JSONDecodeError as error:
            raise DataError(f"{source}:{error.lineno}: not valid JSON ({error.msg})") from None
    if fmt == "lerobot_eval_info":
        return lerobot.parse_eval_info(obj, source, suite=suite, run=run)
    if fmt == "vla_harness":
        return harness.parse(obj, source, suite=suite, run=run)
    return tables.parse_json(obj, source, suite=suite, run=run)


def read_file(path, suite: str | None = None, run: str | None = None, format=None):
    """One result file → the schema's DataFrame."""
    suite = check_suite_name(suite)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such result file")
    text = _read_text(path)
    episodes = parse_text(text, str(path), suite=suite, run=run, format=format)
    return canonical_tasks(episodes_frame(episodes))


def _read_text(path: Path) -> str:
    # newline="" keeps tqdm's bare "\r" inside its line, so the line numbers in error
    # messages are the ones an editor shows.
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            return handle.read()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None


def result_files(paths: Iterable) -> list[tuple[Path, bool]]:
    """Files to read: each given file, and every result-like file under each given folder
    (sorted). The flag says whether the file was named explicitly."""
    found = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            inside = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in RESULT_SUFFIXES and not _hidden(p, path)
            )
            if not inside:
                raise DataError(
                    f"{path}: the folder holds no result files ({', '.join(RESULT_SUFFIXES)})"
                )
            found.extend((p, False) for p in inside)
        elif path.is_file():
            found.append((path, True))
        else:
            raise DataError(f"{path}: no such result file or folder")
    return found


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def read_results(
    paths,
    suite: str | None = None,
    labels: Sequence[str] | Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Every episode of ``paths`` (files and folders, any supported format) in one frame.

    ``suite`` is used for files that do not state theirs. ``labels`` renames runs: a list
    parallel to ``paths`` (every episode read from ``paths[i]`` gets ``labels[i]``), or a
    mapping from the run names the files give to new names. Files named explicitly must
    parse; in a folder, a file whose format no parser recognises is skipped with a warning
    (a README next to the logs), but a recognised file that fails to parse is an error.
    The same run holding the same (suite, task) from two files is an error: those episodes
    would be counted twice.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise ParameterError("read_results: no result files given")
    suite = check_suite_name(suite)
    if labels is not None and not isinstance(labels, Mapping) and len(labels) != len(paths):
        raise ParameterError(
            f"labels has {len(labels)} entries but {len(paths)} result paths were given; "
            "give one label per path (or a mapping old run name → label)"
        )
    frames, skipped = [], []
    for index, item in enumerate(paths):
        label = labels[index] if labels is not None and not isinstance(labels, Mapping) else None
        for path, explicit in result_files([item]):
            text = _read_text(path)
            try:
                fmt, obj = _sniff(text, str(path))
            except DataError:
                if explicit:
                    raise
                skipped.append(path)
                continue
            episodes = _parse(text, str(path), fmt, obj, suite=suite, run=label)
            frames.append(canonical_tasks(episodes_frame(episodes)))
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} file(s) of no known result format: "
            + ", ".join(str(p) for p in skipped[:5]),
            stacklevel=2,
        )
    if not frames:
        raise DataError(f"no result files could be read from {[str(p) for p in paths]}")
    frame = pd.concat(frames, ignore_index=True)
    if isinstance(labels, Mapping):
        frame["run"] = frame["run"].map(lambda r: labels.get(r, r))
    _check_no_double_count(frame)
    return frame


def _check_no_double_count(frame: pd.DataFrame) -> None:
    sources = frame.groupby(["run", "suite", "task"], sort=False)["source"].unique()
    doubled = sources[sources.map(len) > 1]
    if len(doubled):
        (run, suite, task), files = doubled.index[0], doubled.iloc[0]
        raise DataError(
            f"run {run!r} has {suite} task {task!r} in {len(files)} files ({', '.join(files)}); "
            "give the files different run labels, or keep one of them"
        )


__all__ = [
    "ALL_COLUMNS",
    "COLUMNS",
    "Episode",
    "FORMATS",
    "base_suite",
    "detect_format",
    "episodes_frame",
    "normalize_suite",
    "normalize_task",
    "parse_text",
    "read_file",
    "read_results",
    "result_files",
]
