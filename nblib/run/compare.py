"""Run-to-run regression: the verdicts and metrics of two runs (or two batches) side by side.

``nblib compare RUN_A RUN_B [--rtol R]``. A run is a folder holding a metrics.json (a
notebook run of ``nblib run``, ``run-all`` or a batch); a batch is a folder whose
subfolders hold them (``nblib batch``, ``nblib run-all``). Runs are paired by folder name
(for two single runs: with each other). Scalar metrics are compared: numbers beyond the
relative tolerance ``rtol`` (with an absolute floor ``atol`` for values near zero), other
values when they differ; metrics present on one side only are listed too. The verdict of a
pair changing is what makes the command exit non-zero.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nblib.errors import DataError


def load_runs(path: str | os.PathLike[str]) -> dict[str, dict]:
    """name → metrics.json of a run folder (one entry) or of every run in a batch folder."""
    path = Path(path)
    if path.is_file() and path.name == "metrics.json":
        path = path.parent
    if not path.is_dir():
        raise DataError(f"{path}: not a run or batch folder")
    own = path / "metrics.json"
    found = {path.name: own} if own.is_file() else {
        p.parent.name: p for p in sorted(path.glob("*/metrics.json"))
    }  # fmt: skip
    if not found:
        raise DataError(f"{path}: no metrics.json in it or in its subfolders")
    runs = {}
    for name, file in found.items():
        try:
            runs[name] = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise DataError(f"{file}: unreadable metrics.json ({error})") from error
        if not isinstance(runs[name], dict) or "verdict" not in runs[name]:
            raise DataError(f"{file}: not an nblib metrics.json (no verdict)")
    return runs


def _scalars(record: dict) -> dict[str, Any]:
    metrics = record.get("metrics") or {}
    return {k: v for k, v in metrics.items() if v is None or isinstance(v, (bool, int, float, str))}


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _beyond(a: Any, b: Any, rtol: float, atol: float) -> bool:
    """Two metric values differ: numbers beyond the tolerance (NaN equals NaN), anything
    else (text, flags, lists) when unequal."""
    if not (_number(a) and _number(b)):
        return a != b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) != math.isnan(b)
    return not math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


@dataclass
class Comparison:
    verdicts: list[dict]  # run, verdict_a, verdict_b, changed
    metrics: list[dict]  # run, metric, a, b, change (relative), beyond
    only_a: list[str]
    only_b: list[str]

    @property
    def verdict_changed(self) -> bool:
        return any(row["changed"] for row in self.verdicts)


def compare(a: str | os.PathLike[str], b: str | os.PathLike[str], rtol: float = 0.05,
            atol: float = 1e-9) -> Comparison:  # fmt: skip
    runs_a, runs_b = load_runs(a), load_runs(b)
    if len(runs_a) == 1 and len(runs_b) == 1:  # two single runs: paired whatever their names
        (name_a, record_a), (_, record_b) = next(iter(runs_a.items())), next(iter(runs_b.items()))
        runs_a, runs_b = {name_a: record_a}, {name_a: record_b}
    verdicts, metrics = [], []
    for name in [n for n in runs_a if n in runs_b]:
        ra, rb = runs_a[name], runs_b[name]
        verdicts.append({
            "run": name, "verdict_a": ra["verdict"], "verdict_b": rb["verdict"],
            "changed": ra["verdict"] != rb["verdict"],
        })  # fmt: skip
        sa, sb = _scalars(ra), _scalars(rb)
        for key in list(dict.fromkeys([*sa, *sb])):
            va, vb = sa.get(key), sb.get(key)
            change = None
            if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and va:
                change = (vb - va) / abs(va)
            beyond = key not in sa or key not in sb or _beyond(va, vb, rtol, atol)
            metrics.append({"run": name, "metric": key, "a": va, "b": vb,
                            "change": change, "beyond": beyond})  # fmt: skip
    only_a = [n for n in runs_a if n not in runs_b]
    only_b = [n for n in runs_b if n not in runs_a]
    return Comparison(verdicts, metrics, only_a, only_b)
