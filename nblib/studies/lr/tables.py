"""The per-run records of ``nblib lr analyze``: the columns scripts read, as plain JSON
values, from the table :func:`nblib.studies.lr.analyse` returns."""

from __future__ import annotations

import math

import pandas as pd

# The fields of `nblib lr analyze --format json`, one line per run (scripts rely on them).
LR_FIELDS = (
    "run",
    "steps",
    "final_loss",
    "min_loss",
    "plateau_step",
    "stopped_after_warmup",
    "diverged",
    "divergence_step",
    "divergence_reason",  # non_finite, zero (a broken run) or blow_up; null if none
    "grad_spikes",
    "suggestion",
)
# Counts and steps: analyse's table may hold them as floats (NaN where there is none).
INT_FIELDS = ("plateau_step", "divergence_step", "steps", "grad_spikes")


def plain(value):
    """A numpy scalar as the Python value; NaN or infinity as None (JSON has no NaN: a
    missing plateau or loss is null)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_records(runs: pd.DataFrame) -> list[dict]:
    """One dict per run (``runs`` indexed by run, as ``analyse`` returns it) with the keys
    of :data:`LR_FIELDS`, in that order; steps and counts as ints, missing values None."""
    records = []
    for run, row in runs.iterrows():
        record = {"run": run} | {k: plain(row[k]) for k in LR_FIELDS if k != "run"}
        for key in INT_FIELDS:
            if record[key] is not None:
                record[key] = int(record[key])
        records.append(record)
    return records


def records_table(records: list[dict]) -> pd.DataFrame:
    """The records as a table indexed by run, values kept as they are (no float columns
    that would turn a missing step into NaN)."""
    return pd.DataFrame(records, columns=list(LR_FIELDS), dtype=object).set_index("run")
