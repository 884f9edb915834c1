"""Notebook 05's tables, read from a prepared :class:`ComparisonStudy`: the runs and their
files, the suite rates of runs and published baselines, the per-task matrix, the
perturbation breakdown with its totals, the performance profiles, and the numbers the
suite and perturbation figures print that ``metrics.json`` also records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nblib.eval import baselines as published
from nblib.eval.results import summary as summaries
from nblib.eval.results.schema import base_suite, kleene_all
from nblib.metrics import success as stats
from nblib.metrics.success.profiles import PROFILE_COLUMNS
from nblib.studies.comparison.study import ComparisonStudy, _unperturbed


def runs_table(study: ComparisonStudy) -> pd.DataFrame:
    """Per run: its files, suites, tasks, episodes, successes and whether it is complete."""
    if not study.runs:
        return pd.DataFrame(columns=["run", "files", "suites", "tasks", "episodes", "complete"])
    rows = []
    for run, group in study.episodes.groupby("run", sort=False):
        rows.append(
            {
                "run": run,
                "files": ", ".join(Path(s).name for s in pd.unique(group["source"])),
                "suites": ", ".join(pd.unique(group["suite"])),
                "tasks": group.groupby(["suite", "task"]).ngroups,
                "episodes": len(group),
                "successes": int(group["success"].sum()),
                # True, False (interrupted) or None (the files cannot tell)
                "complete": kleene_all(group["complete"]),
            }
        )
    return pd.DataFrame(rows)


def suite_table(study: ComparisonStudy, runs=None, suites=None) -> pd.DataFrame:
    """Rows ``method, kind, suite, success_rate, ci_low, ci_high, episodes, ci_method`` for
    the runs (mean over tasks, task-stratified bootstrap or, where it collapses, Wilson at
    the effective n) and the published LIBERO baselines (Wilson on the implied counts), restricted to the suites the runs evaluated (all four
    when there are no runs); suite ``average`` for runs that evaluated all four suites
    (:func:`average_summary`) and the published averages. ``runs`` / ``suites`` pick a
    subset (the widgets)."""
    rows = []
    run_suites: list[str] = []
    if study.runs:
        table = study.suites
        for row in table.itertuples(index=False):
            if runs is not None and row.run not in runs:
                continue
            rows.append(
                {
                    "method": row.run,
                    "kind": "run",
                    "suite": row.suite,
                    "success_rate": row.success_rate,
                    "ci_low": row.ci_low,
                    "ci_high": row.ci_high,
                    "episodes": row.episodes,
                    "ci_method": row.ci_method,
                }
            )
        run_suites = list(dict.fromkeys(table["suite"]))
        for row in study.average.itertuples(index=False):
            if runs is None or row.run in runs:
                rows.append(
                    {
                        "method": row.run,
                        "kind": "run",
                        "suite": published.AVERAGE,
                        "success_rate": row.success_rate,
                        "ci_low": row.ci_low,
                        "ci_high": row.ci_high,
                        "episodes": row.episodes,
                        "ci_method": row.ci_method,
                    }
                )
                run_suites.append(published.AVERAGE)
    if study.config.baseline_benchmark == "libero":
        everything = {*published.LIBERO_SUITES, published.AVERAGE}
        wanted = {base_suite(s) for s in run_suites} or everything
        for row in study.baseline.itertuples(index=False):
            if row.suite in wanted:
                rows.append(
                    {
                        "method": row.policy,
                        "kind": "published",
                        "suite": row.suite,
                        "success_rate": row.success_rate,
                        "ci_low": row.ci_low,
                        "ci_high": row.ci_high,
                        "episodes": row.trials,
                        "ci_method": "Wilson",
                    }
                )
    out = pd.DataFrame(
        rows,
        columns=[
            "method",
            "kind",
            "suite",
            "success_rate",
            "ci_low",
            "ci_high",
            "episodes",
            "ci_method",
        ],
    )
    if suites is not None:
        out = out[out["suite"].isin(suites) | out["suite"].map(base_suite).isin(suites)]
    return out.reset_index(drop=True)


def task_matrix(study: ComparisonStudy, runs=None, suites=None) -> pd.DataFrame:
    """Success rate (%) per (suite, task) × run of the standard protocol; the heatmap's
    data (perturbed variants are in :func:`perturbation_table`)."""
    if not study.runs:
        return pd.DataFrame()
    frame = _unperturbed(study.episodes)
    if runs is not None:
        frame = frame[frame["run"].isin(runs)]
    if suites is not None:
        frame = frame[frame["suite"].isin(suites)]
    if frame.empty:
        return pd.DataFrame()
    return summaries.task_matrix(frame)


def perturbation_table(study: ComparisonStudy):
    """``(table, totals)``: success rate per (method, perturbation category) for runs
    with perturbed episodes (Wilson intervals) and for the LIBERO-Plus published policies
    (when that is the baseline), and per method the plain mean over categories next to
    the variant-weighted total. ``(None, None)`` when nothing is perturbed."""
    parts, totals = [], []
    if study.runs:
        perturbed = study.episodes[study.episodes["perturbation"] != "none"]
        if len(perturbed):
            table = summaries.perturbation_summary(perturbed)
            for run, group in table.groupby("run", sort=False):
                rates = group.set_index("perturbation")["success_rate"]
                known = rates[rates.index.isin(published.PLUS_DIMENSIONS)]
                totals.append(
                    {
                        "method": run,
                        "mean_plain": float(rates.mean()),
                        "total_weighted": published.weighted_total(known)
                        if len(known)
                        else float("nan"),
                    }
                )
            parts.append(table.rename(columns={"run": "method"}))
    if study.config.baseline_benchmark == "libero_plus":
        wide = study.baseline
        long = wide.melt(
            id_vars="policy",
            value_vars=list(published.PLUS_DIMENSIONS),
            var_name="perturbation",
            value_name="success_rate",
        ).rename(columns={"policy": "method"})
        parts.append(long)
        totals.extend(
            {"method": r.policy, "mean_plain": r.mean_plain, "total_weighted": r.total_weighted}
            for r in wide.itertuples(index=False)
        )
    if not parts:
        return None, None
    return pd.concat(parts, ignore_index=True), pd.DataFrame(totals)


def perturbation_totals(study: ComparisonStudy) -> pd.DataFrame | None:
    """Per method with perturbed episodes (or a published LIBERO-Plus row): the plain mean
    over perturbation categories beside the variant-weighted total; None when nothing is
    perturbed."""
    return perturbation_table(study)[1]


def performance_profiles(study: ComparisonStudy) -> pd.DataFrame:
    """rliable's performance profiles of the runs' tasks under the standard protocol: per
    run, the fraction of its tasks whose success rate is above each threshold, with a band
    from resampling each task's episodes. Runs whose tasks have unequal episode counts (an
    interrupted run) have no episode matrix to resample and are left out."""
    plain = _unperturbed(study.episodes)
    scores = {}
    for run, part in plain.groupby("run", sort=False):
        counts = part.groupby(["suite", "task"])["success"].agg(["sum", "count"])
        if counts["count"].nunique() == 1:
            outcomes = stats.episode_outcomes(counts["sum"].to_numpy(), counts["count"].to_numpy())
            scores[run] = outcomes
    if not scores:
        return pd.DataFrame(columns=list(PROFILE_COLUMNS))
    cfg = study.config
    return stats.performance_profiles(scores, average=True, n_boot=cfg.n_boot, seed=cfg.seed)


def suite_rates(study: ComparisonStudy) -> dict:
    """metrics.json's ``suite_rates``: per run and suite (and ``average`` for a run with
    the four LIBERO suites) the rate, its interval and episodes, exactly as the suite
    figure draws them."""
    out: dict = {}
    for frame in (study.suites, study.average):
        for row in frame.itertuples(index=False):
            suite = getattr(row, "suite", published.AVERAGE)
            out.setdefault(row.run, {})[suite] = {
                "success_rate": float(row.success_rate),
                "ci_low": float(row.ci_low),
                "ci_high": float(row.ci_high),
                "episodes": int(row.episodes),
                "ci_method": str(row.ci_method),
            }
    return out


def perturbation_overview(
    study: ComparisonStudy,
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """``(table, totals)`` of :func:`perturbation_table`, the totals completed with what
    the figure prints for each run: the rate pooled over its perturbed episodes with a
    Wilson interval (``rate, ci_low, ci_high, episodes``), its number of ``categories``
    and of LIBERO-Plus dimensions behind the weighted total (``weighted_dimensions``),
    and the ``metrics_key`` of :func:`perturbation_metrics`."""
    table, totals = perturbation_table(study)
    if table is None:
        return None, None
    extra = []
    for row in totals.itertuples(index=False):
        part = table[table["method"] == row.method]
        if row.method not in study.runs:
            extra.append({"categories": len(part), "weighted_dimensions": len(part)})
            continue
        episodes, successes = int(part["episodes"].sum()), int(part["successes"].sum())
        low, high = stats.wilson_interval(successes, episodes)
        extra.append(
            {
                "rate": 100 * successes / episodes,
                "ci_low": 100 * float(low),
                "ci_high": 100 * float(high),
                "episodes": episodes,
                "categories": len(part),
                "weighted_dimensions": int(
                    part["perturbation"].isin(published.PLUS_DIMENSIONS).sum()
                ),
                "metrics_key": ("perturbed_totals", row.method),
            }
        )
    return table, pd.concat([totals.reset_index(drop=True), pd.DataFrame(extra)], axis=1)


def perturbation_metrics(study: ComparisonStudy) -> dict:
    """metrics.json's ``perturbed_totals``: per run with perturbed episodes the three
    totals the perturbation figure draws (``pooled`` with its Wilson interval,
    ``mean_plain``, ``total_weighted``: None without a LIBERO-Plus dimension)."""
    _, totals = perturbation_overview(study)
    if totals is None:
        return {}
    out = {}
    for row in totals.itertuples(index=False):
        if row.method not in study.runs:
            continue
        weighted = float(row.total_weighted)
        out[row.method] = {
            "pooled": {
                "success_rate": float(row.rate),
                "ci_low": float(row.ci_low),
                "ci_high": float(row.ci_high),
                "episodes": int(row.episodes),
            },
            "mean_plain": {
                "success_rate": float(row.mean_plain),
                "categories": int(row.categories),
            },
            "total_weighted": {
                "success_rate": weighted if np.isfinite(weighted) else None,
                "dimensions": int(row.weighted_dimensions),
            },
        }
    return out
