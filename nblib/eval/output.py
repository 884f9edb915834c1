"""The output file of closed-loop evaluation (:func:`nblib.eval.rollout.evaluate`): one
row per episode in the results schema plus ``task_id`` and ``complete``, as CSV or JSON
lines. Rows are appended and flushed as episodes end (``complete=False``); the file is
rewritten atomically with ``complete=True`` once every episode has finished."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from nblib.errors import ParameterError
from nblib.eval.results.schema import COLUMNS
from nblib.paths import atomic_write

OUTPUT_COLUMNS = (*COLUMNS, "task_id", "complete")


class ResultsFile:
    """Rows appended as episodes end (``complete=False``), rewritten complete at the end."""

    def __init__(self, path: str | os.PathLike, overwrite: bool = False, resume: bool = False):
        self.path = Path(path)
        if self.path.suffix not in (".csv", ".jsonl"):
            raise ParameterError(f"out={str(self.path)!r}: expected a .csv or .jsonl file name")
        if self.path.exists() and not (overwrite or resume):
            raise ParameterError(
                f"out={str(self.path)!r} exists; pass resume=True (--resume) to run only its "
                "missing episodes, overwrite=True (--overwrite) to replace it, or choose "
                "another file: a finished evaluation is never replaced silently"
            )
        self.rows: list[dict] = []
        self._handle = None
        self._append = False
        if resume and self.path.exists():
            _drop_partial_line(self.path)  # a run killed mid-write: that episode runs again
            self.rows = read_rows(self.path)
            self._append = True
            self._resumed = len(self.rows)

    @property
    def resumed(self) -> int:
        """How many rows came from the file a resumed run continues."""
        return self._resumed

    _resumed = 0

    def append(self, row: dict) -> None:
        # the file is created by the first finished episode: a run that fails before any
        # episode ends leaves no header-only file behind to block its retry
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            mode = "a" if self._append else "w"
            self._handle = open(self.path, mode, newline="", encoding="utf-8")
            if self.path.suffix == ".csv" and not self._append:
                csv.DictWriter(self._handle, OUTPUT_COLUMNS, lineterminator="\n").writeheader()
        self.rows.append(row)
        self._write(self._handle, row)
        self._handle.flush()

    def _write(self, handle, row: dict) -> None:
        write_row(handle, row, self.path.suffix)

    def close(self, complete: bool, order=None) -> None:
        """Close the file; when ``complete``, rewrite it with ``complete=True`` in
        ``order`` (a sort key over rows; default the order episodes ended)."""
        if self._handle is not None:
            self._handle.close()
        if not complete:
            return
        order = sorted(self.rows, key=order) if order is not None else self.rows
        with atomic_write(self.path, "w") as handle:
            if self.path.suffix == ".csv":
                csv.DictWriter(handle, OUTPUT_COLUMNS, lineterminator="\n").writeheader()
            for row in order:
                self._write(handle, row | {"complete": True})


def write_row(handle, row: dict, suffix: str) -> None:
    """One row as a CSV line (``suffix`` .csv) or a JSON line (.jsonl)."""
    if suffix == ".csv":
        csv.DictWriter(handle, OUTPUT_COLUMNS, lineterminator="\n").writerow(row)
    else:
        handle.write(json.dumps({k: row[k] for k in OUTPUT_COLUMNS}) + "\n")


def read_rows(path: Path) -> list[dict]:
    """The rows an earlier (interrupted) run wrote to ``path``, with their types back
    (ints, bools, None for an empty task id); a ParameterError naming the file and the
    line when it is not such a file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        raw = list(csv.DictReader(text.splitlines()))
    else:
        raw = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    raw.append(json.loads(line))
                except ValueError as exc:
                    raise ParameterError(
                        f"{path}: line {n} is not JSON ({exc}); cannot resume"
                    ) from exc
    rows = []
    for n, row in enumerate(raw, 2 if path.suffix == ".csv" else 1):
        missing = [c for c in OUTPUT_COLUMNS if c not in row]
        if missing:
            raise ParameterError(
                f"{path}: row {n} lacks {missing}; only a file nblib eval wrote can be resumed"
            )
        try:
            rows.append(
                {
                    **{c: row[c] for c in OUTPUT_COLUMNS},
                    "episode": int(row["episode"]),
                    "steps": int(row["steps"]),
                    "seed": int(row["seed"]),
                    "task_id": None if row["task_id"] in ("", None) else int(row["task_id"]),
                    "success": _flag(row["success"]),
                    "complete": False,
                }
            )
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"{path}: row {n} has a malformed value ({exc})") from exc
    return rows


def _drop_partial_line(path: Path) -> None:
    """Cut ``path`` after its last complete line (rows are written one line at a time)."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    if str(value) in ("True", "true", "1"):
        return True
    if str(value) in ("False", "false", "0"):
        return False
    raise ValueError(f"success={value!r} is not a boolean")


def unfinished_jobs(jobs: list, rows: list[dict], label: str, out) -> list:
    """The jobs whose episode has no row yet; a ParameterError when a row is of another
    run or of an episode these jobs (this configuration, this shard) do not have: a
    resumed file must be this run's."""
    keys = {(spec.task, spec.task_id, i) for spec, i in jobs}
    done = set()
    for row in rows:
        key = (row["task"], row["task_id"], row["episode"])
        if row["run"] != label or key not in keys:
            raise ParameterError(
                f"cannot resume {out}: it holds run {row['run']!r}, {row['task']!r} episode "
                f"{row['episode']}, which this configuration (run {label!r}) does not have; "
                "resume with the options of the run that wrote it, or choose another --out"
            )
        done.add(key)
    return [(spec, i) for spec, i in jobs if (spec.task, spec.task_id, i) not in done]
