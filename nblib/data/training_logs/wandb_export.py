"""Weights & Biases chart exports ("Export CSV" of a chart panel).

A ``Step`` column (the chart's x axis) and, per run, ``<run> - <metric>`` with
``__MIN`` / ``__MAX`` companions (min / max over a grouped run's members, not values of
their own). An empty cell means the run did not log at that step, so it gives no row;
W&B writes a NaN value as ``NaN``, which is kept. W&B's *runs table* (one summary row per
run) holds no history and is refused.
"""

from __future__ import annotations

import math
from pathlib import Path

from nblib.data.training_logs.schema import (
    GRAD_NORM_KEYS,
    LOSS_KEYS,
    LR_KEYS,
    STEP_KEYS,
    Row,
    fail,
    listing,
    optional,
    pick,
    to_float,
    to_step,
)
from nblib.errors import ParameterError

SEP = " - "  # W&B chart exports name columns "<run> - <metric>"
COMPANIONS = ("__MIN", "__MAX")
# The header of W&B's runs table (one summary row per run), which holds no history.
RUNS_TABLE = {"Name", "State", "Runtime"}


def looks_like(header: list[str]) -> bool:
    """A chart export: some column is named ``<run> - <metric>``."""
    return any(SEP in h for h in header)


def refuse_runs_table(path: Path, header: list[str]) -> None:
    """A DataError when ``header`` is W&B's runs table rather than a history."""
    if RUNS_TABLE <= set(header):
        raise fail(
            path,
            "is a W&B runs table (one summary row per run), not a history; export the "
            "loss chart's CSV from its panel, or the run's history, instead",
        )


def read(
    path: Path,
    header: list[str],
    rows: list[tuple[int, list[str]]],
    loss_key: str | None,
    run: str | None,
) -> list[Row]:
    """The rows of a chart export, run by run (runs in header order)."""
    by_run: dict[str, dict[str, int]] = {}  # run -> metric -> column index
    plain: dict[str, int] = {}  # columns without a run (the x axis)
    for i, name in enumerate(header):
        if name.endswith(COMPANIONS):
            continue  # min/max over a grouped run's members, not a value of its own
        if SEP in name:
            run_name, metric = name.rsplit(SEP, 1)
            by_run.setdefault(run_name, {}).setdefault(metric, i)
        else:
            plain.setdefault(name, i)
    listed = [h for h in header if not h.endswith(COMPANIONS)]
    metrics = list(dict.fromkeys(m for cols in by_run.values() for m in cols))
    loss_metric = loss_key if loss_key is not None else pick(LOSS_KEYS, metrics)
    runs = [r for r, cols in by_run.items() if loss_metric in cols]
    if not runs:
        wanted = (
            f"metric {loss_key!r}"
            if loss_key is not None
            else f"a loss metric (tried {list(LOSS_KEYS)})"
        )
        raise fail(
            path,
            f"is a W&B export with no run logging {wanted}; columns: {listing(listed)}; "
            "pass loss_key= with the metric after ' - ' in a column name",
        )
    if run is not None and len(runs) > 1:
        raise ParameterError(
            f"run={run!r}: {path} holds {len(runs)} runs ({listing(runs)}); run= can only "
            "rename a file that holds one run"
        )
    global_step = pick(STEP_KEYS, plain)

    out = []
    for run_name in runs:
        cols = by_run[run_name]
        own_step = pick(STEP_KEYS, cols)
        if global_step is not None:
            step_i, step_name = plain[global_step], global_step
        elif own_step is not None:
            # The chart's x axis was not a step (e.g. epoch); the run's own _step column is.
            step_i, step_name = cols[own_step], f"{run_name}{SEP}{own_step}"
        else:
            raise fail(
                path,
                f"is a W&B export without a step column (tried {list(STEP_KEYS)}, also per "
                f"run); columns: {listing(listed)}",
            )
        loss_i = cols[loss_metric]
        lr_metric = pick(LR_KEYS, cols)
        grad_metric = pick(GRAD_NORM_KEYS, cols)
        for number, fields in rows:
            value = fields[loss_i].strip()
            if value == "":
                continue  # the run did not log at this step
            where = f"line {number}"
            lr = grad = math.nan
            if lr_metric is not None:
                lr = optional(fields[cols[lr_metric]].strip(), path, where, repr(lr_metric))
            if grad_metric is not None:
                grad = optional(fields[cols[grad_metric]].strip(), path, where, repr(grad_metric))
            out.append(
                Row(
                    run=run if run is not None else run_name,
                    step=to_step(fields[step_i].strip(), path, f"{where}, column {step_name!r}"),
                    loss=to_float(value, path, f"{where}, column {header[loss_i]!r}", "the loss"),
                    lr=lr,
                    grad_norm=grad,
                    line=number,
                )
            )
    return out
