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

    def __init__(self, path: str | os.PathLike, overwrite: bool = False):
        self.path = Path(path)
        if self.path.suffix not in (".csv", ".jsonl"):
            raise ParameterError(f"out={str(self.path)!r}: expected a .csv or .jsonl file name")
        if self.path.exists() and not overwrite:
            raise ParameterError(
                f"out={str(self.path)!r} exists; pass overwrite=True (--overwrite) to replace "
                "it, or choose another file: a finished evaluation is never replaced silently"
            )
        self.rows: list[dict] = []
        self._handle = None

    def append(self, row: dict) -> None:
        # the file is created by the first finished episode: a run that fails before any
        # episode ends leaves no header-only file behind to block its retry
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "w", newline="", encoding="utf-8")
            if self.path.suffix == ".csv":
                csv.DictWriter(self._handle, OUTPUT_COLUMNS, lineterminator="\n").writeheader()
        self.rows.append(row)
        self._write(self._handle, row)
        self._handle.flush()

    def _write(self, handle, row: dict) -> None:
        if self.path.suffix == ".csv":
            csv.DictWriter(handle, OUTPUT_COLUMNS, lineterminator="\n").writerow(row)
        else:
            handle.write(json.dumps({k: row[k] for k in OUTPUT_COLUMNS}) + "\n")

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
