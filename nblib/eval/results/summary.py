"""Aggregates of the per-episode results: per task, per suite, per perturbation.

Rates and interval bounds are percentages, as LIBERO papers report them. Intervals:
Wilson (95 % by default) per task, where the episodes are exchangeable trials; a
task-stratified bootstrap for a suite's mean over tasks (the tasks are fixed, the
episodes within each task are resampled), so a suite's interval reflects that its 10
tasks are not 500 interchangeable trials. Where that bootstrap collapses (a task with
fewer than 10 episodes, or every task at 0 % or 100 %), the suite's interval is Wilson's
at the effective number of episodes instead
(:func:`~nblib.metrics.success.suite_interval`); ``ci_method`` says which.

``complete`` is a nullable boolean at every level: False when any episode below comes
from an interrupted run or task, else ``<NA>`` when any file could not tell, else True
(:func:`~nblib.eval.results.schema.kleene_all`). :func:`completeness_note` words both
cases for a report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib.errors import DataError
from nblib.eval.results.schema import kleene_all
from nblib.metrics.success import suite_interval, wilson_interval

SUMMARY_COLUMNS = (
    "run",
    "suite",
    "task",
    "task_id",
    "perturbation",
    "episodes",
    "successes",
    "success_rate",
    "ci_low",
    "ci_high",
    "complete",
)
SUITE_COLUMNS = (
    "run",
    "suite",
    "tasks",
    "episodes",
    "successes",
    "success_rate",
    "ci_low",
    "ci_high",
    "pooled_rate",
    "complete",
    "ci_method",
)


def _require_rows(frame: pd.DataFrame, what: str) -> None:
    if frame.empty:
        raise DataError(f"{what}: no episodes to summarise")


def _one(values: pd.Series) -> str:
    unique = pd.unique(values)
    return str(unique[0]) if len(unique) == 1 else "mixed"


def summarize(frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per (run, suite, task): :data:`SUMMARY_COLUMNS`. ``complete`` is False when
    any of the task's episodes comes from an interrupted run or task, ``<NA>`` when that
    is unknown for any of them."""
    _require_rows(frame, "summarize")
    rows = []
    for (run, suite, task), group in frame.groupby(["run", "suite", "task"], sort=False):
        episodes = len(group)
        successes = int(group["success"].sum())
        low, high = wilson_interval(successes, episodes, confidence=confidence)
        task_ids = group["task_id"].dropna().unique()
        rows.append(
            {
                "run": run,
                "suite": suite,
                "task": task,
                "task_id": int(task_ids[0]) if len(task_ids) == 1 else pd.NA,
                "perturbation": _one(group["perturbation"]),
                "episodes": episodes,
                "successes": successes,
                "success_rate": 100 * successes / episodes,
                "ci_low": 100 * low,
                "ci_high": 100 * high,
                "complete": kleene_all(group["complete"]),
            }
        )
    out = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    out["task_id"] = out["task_id"].astype("Int64")
    out["complete"] = _flags(out["complete"])
    # runs in the order they were read; within a run by suite, task index, task
    runs = {run: i for i, run in enumerate(dict.fromkeys(out["run"]))}
    order = out.assign(_run=out["run"].map(runs), _tid=out["task_id"].fillna(10**9))
    order = order.sort_values(["_run", "suite", "_tid", "task"], kind="stable")
    return order.drop(columns=["_run", "_tid"]).reset_index(drop=True)


def suite_summary(
    frame: pd.DataFrame, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """One row per (run, suite): the mean of its tasks' rates with its interval (a
    task-stratified bootstrap, or Wilson's at the effective n where that collapses;
    ``ci_method``), and the pooled rate (all episodes together) beside it."""
    tasks = summarize(frame, confidence=confidence)
    rows = []
    for (run, suite), group in tasks.groupby(["run", "suite"], sort=False):
        row = {"run": run, "suite": suite}
        row |= _task_mean(group, n_boot=n_boot, confidence=confidence, seed=seed)
        row["pooled_rate"] = 100 * row["successes"] / row["episodes"]
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(SUITE_COLUMNS))
    out["complete"] = _flags(out["complete"])
    return out


def run_summary(
    frame: pd.DataFrame, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """One row per run: the mean over all its tasks with a task-stratified bootstrap
    interval. With the same number of tasks in every suite (LIBERO: 10) this is the mean of
    the suite rates, the "average" LIBERO papers print."""
    tasks = summarize(frame, confidence=confidence)
    rows = []
    for run, group in tasks.groupby("run", sort=False):
        row = {"run": run, "suites": ", ".join(pd.unique(group["suite"]))}
        rows.append(row | _task_mean(group, n_boot=n_boot, confidence=confidence, seed=seed))
    out = pd.DataFrame(rows)
    out["complete"] = _flags(out["complete"])
    return out


def _task_mean(tasks: pd.DataFrame, **bootstrap) -> dict:
    """The mean over ``tasks`` (rows of :func:`summarize`) of their success rates (%), its
    interval (:func:`~nblib.metrics.success.suite_interval`: a task-stratified bootstrap,
    or Wilson's at the effective n where that collapses; ``ci_method`` names it), the
    counts, and whether all are complete (three-valued,
    :func:`~nblib.eval.results.schema.kleene_all`)."""
    successes = tasks["successes"].to_numpy()
    trials = tasks["episodes"].to_numpy()
    mean, low, high, method = suite_interval(successes, trials, **bootstrap)
    return {
        "tasks": len(tasks),
        "episodes": int(trials.sum()),
        "successes": int(successes.sum()),
        "success_rate": 100 * mean,
        "ci_low": 100 * low,
        "ci_high": 100 * high,
        "complete": kleene_all(tasks["complete"]),
        "ci_method": method,
    }


def _flags(values: pd.Series) -> pd.Series:
    """True/False/None → the nullable ``boolean`` dtype (None → ``<NA>``)."""
    return pd.Series(
        [pd.NA if value is None else value for value in values], index=values.index, dtype="boolean"
    )


def completeness_note(tasks: pd.DataFrame) -> str | None:
    """What a report should say under a :func:`summarize` table about tasks whose counts
    may not be whole: the interrupted ones (``complete`` False) and those whose files could
    not tell (``<NA>``), one line each; None when every task is complete."""
    flags = tasks["complete"].astype("boolean")
    interrupted, unknown = int(flags.eq(False).sum()), int(flags.isna().sum())
    lines = []
    if interrupted:
        lines.append(
            f"note: {interrupted} task(s) come from interrupted runs or tasks "
            "(complete = False); their counts are what finished before the log ended"
        )
    if unknown:
        lines.append(
            f"note: {unknown} task(s) come from files that do not show whether their run "
            "ended (complete = <NA>); their counts may be partial"
        )
    return "\n".join(lines) or None


def perturbation_summary(frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per (run, perturbation): episodes, successes, rate and Wilson interval."""
    _require_rows(frame, "perturbation_summary")
    rows = []
    for (run, perturbation), group in frame.groupby(["run", "perturbation"], sort=False):
        episodes = len(group)
        successes = int(group["success"].sum())
        low, high = wilson_interval(successes, episodes, confidence=confidence)
        rows.append(
            {
                "run": run,
                "perturbation": perturbation,
                "episodes": episodes,
                "successes": successes,
                "success_rate": 100 * successes / episodes,
                "ci_low": 100 * low,
                "ci_high": 100 * high,
            }
        )
    return pd.DataFrame(rows)


def task_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """Success rate (%) per task (rows: suite, task) and run (columns); NaN where a run did
    not evaluate the task. The heatmap's data."""
    tasks = summarize(frame)
    matrix = tasks.pivot_table(
        index=["suite", "task"], columns="run", values="success_rate", aggfunc="first", sort=False
    )
    return matrix.reindex(columns=list(pd.unique(tasks["run"])))


def paired_counts(tasks: pd.DataFrame, run_a: str, run_b: str) -> pd.DataFrame:
    """Per (suite, task) that both runs evaluated: successes and episodes of each, from the
    per-task table of :func:`summarize` (made once for every pair). Tasks only one run has
    are left out (a paired comparison needs both)."""
    known = set(tasks["run"])
    for name in (run_a, run_b):
        if name not in known:
            raise DataError(f"no run named {name!r}; the runs are {sorted(known)}")
    a = tasks[tasks["run"] == run_a].set_index(["suite", "task"])
    b = tasks[tasks["run"] == run_b].set_index(["suite", "task"])
    shared = a.index.intersection(b.index, sort=False)
    return pd.DataFrame(
        {
            "successes_a": a.loc[shared, "successes"].to_numpy(np.int64),
            "episodes_a": a.loc[shared, "episodes"].to_numpy(np.int64),
            "successes_b": b.loc[shared, "successes"].to_numpy(np.int64),
            "episodes_b": b.loc[shared, "episodes"].to_numpy(np.int64),
        },
        index=shared,
    )
