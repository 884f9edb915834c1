"""Notebook 05's tests and conclusions: paired comparisons of runs, each run against the
published numbers, the episodes a claimed gain would need, the exported tables, and the
verdict.

Verdict: **DIFFERENT** when some pair of runs differs significantly (overall or in a suite,
after the multiple-comparison correction), **INCONCLUSIVE** when none does (the minimum
detectable difference says what the episode counts could have seen), **BASELINES** when
there are no runs, only the published tables. The p-values come from exact tests and the
Cochran–Mantel–Haenszel test (deterministic: the same on every machine); a reason says
when a bootstrap interval and its corrected test disagree about a difference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nblib.eval.results import summary as summaries
from nblib.eval.results.schema import base_suite
from nblib.metrics import success as stats
from nblib.paths import write_text_atomic
from nblib.studies import Evidence
from nblib.studies.comparison import plots
from nblib.studies.comparison.study import CLAIMED_GAIN_PP, ComparisonConfig, ComparisonStudy
from nblib.studies.comparison.tables import (
    perturbation_metrics,
    perturbation_table,
    runs_table,
    suite_rates,
    suite_table,
)
from nblib.verdict import Verdict


@dataclass(frozen=True)
class Paired:
    """Every compared pair of runs: per task and per suite / overall (see
    :func:`paired_tables`)."""

    per_task: pd.DataFrame
    per_suite: pd.DataFrame


def run_pairs(study: ComparisonStudy) -> list[tuple[str, str]]:
    """(run, reference) pairs to compare: every run against ``reference_run`` when it is
    set, else every pair of runs that evaluated at least one task in common."""
    if not study.runs:
        return []
    if study.reference is not None:
        return [(run, study.reference) for run in study.runs if run != study.reference]
    table = study.tasks
    tasks = {
        run: set(zip(part["suite"], part["task"], strict=True))
        for run, part in table.groupby("run", sort=False)
    }
    return [
        (b, a) for i, a in enumerate(study.runs) for b in study.runs[i + 1 :] if tasks[a] & tasks[b]
    ]


def paired_tables(study: ComparisonStudy) -> Paired:
    """Per task and per suite, every pair of :func:`run_pairs` (``run`` against
    ``reference``; differences are run minus reference).

    ``per_task``: one row per (pair, suite, task) both evaluated: both counts and rates, the
    difference, the exact test's p-value, the corrected p-value (over the pair's tasks) and
    ``significant``. ``per_suite``: per pair and scope (each suite and ``overall``): the
    difference of task-averaged rates (pp) with a paired task-stratified bootstrap
    interval, the CMH p-value, the p-value corrected over every pair and scope in the
    table (``correction``), and ``significant`` (corrected p < alpha).
    """
    cfg = study.config
    task_rows, suite_rows = [], []
    for run, reference in run_pairs(study):
        counts = summaries.paired_counts(study.tasks, reference, run)
        if counts.empty:
            continue
        per_task = stats.compare_tasks(
            counts["successes_b"].to_numpy(),
            counts["episodes_b"].to_numpy(),
            counts["successes_a"].to_numpy(),
            counts["episodes_a"].to_numpy(),
            test=cfg.test,
            correction=cfg.correction,
            alpha=cfg.alpha,
        )
        per_task.index = counts.index
        per_task = per_task.reset_index()
        per_task.insert(0, "reference", reference)
        per_task.insert(0, "run", run)
        task_rows.append(per_task)
        scopes = [(s, counts.xs(s, level="suite", drop_level=False)) for s in _suites(counts)]
        if len(scopes) > 1:
            scopes.append(("overall", counts))
        for scope, part in scopes:
            result = stats.compare_overall(
                part["successes_b"].to_numpy(),
                part["episodes_b"].to_numpy(),
                part["successes_a"].to_numpy(),
                part["episodes_a"].to_numpy(),
                n_boot=cfg.n_boot,
                seed=cfg.seed,
            )
            suite_rows.append(
                {
                    "run": run,
                    "reference": reference,
                    "scope": scope,
                    "tasks": len(part),
                    "diff": 100 * result["diff"],
                    "ci_low": 100 * result["low"],
                    "ci_high": 100 * result["high"],
                    "p_value": result["p_value"],
                }
            )
    per_task = pd.concat(task_rows, ignore_index=True) if task_rows else pd.DataFrame()
    per_suite = pd.DataFrame(suite_rows)
    if len(per_suite):
        per_suite["p_adjusted"] = stats.adjust_pvalues(per_suite["p_value"], cfg.correction)
        per_suite["significant"] = per_suite["p_adjusted"] < cfg.alpha
    return Paired(per_task, per_suite)


def _suites(counts: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(counts.index.get_level_values("suite")))


def baseline_tests(study: ComparisonStudy) -> pd.DataFrame:
    """Each run's pooled suite counts against each published policy's (LIBERO only):
    both rates, the difference (pp), Fisher's exact p-value and its Holm correction over
    all the comparisons in the table. A published count is implied by its rounded rate and
    trial count, and its episodes are spread over 10 tasks like the run's, so this is the
    coarse, pooled comparison; a per-task one needs the baseline's per-episode results."""
    if not study.runs or study.config.baseline_benchmark != "libero" or study.baseline.empty:
        return pd.DataFrame()
    rows = []
    for run_row in study.suites.itertuples(index=False):
        wanted = base_suite(run_row.suite)
        for pub in study.baseline[study.baseline["suite"] == wanted].itertuples(index=False):
            rows.append(
                {
                    "run": run_row.run,
                    "suite": run_row.suite,
                    "policy": pub.policy,
                    "run_rate": 100 * run_row.successes / run_row.episodes,
                    "run_episodes": run_row.episodes,
                    "published_rate": pub.success_rate,
                    "published_trials": pub.trials,
                    "_counts": (run_row.successes, run_row.episodes, pub.successes, pub.trials),
                }
            )
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    counts = np.array(table.pop("_counts").tolist())
    tested = stats.compare_tasks(
        counts[:, 0], counts[:, 1], counts[:, 2], counts[:, 3], test="fisher", correction="holm"
    )
    table["diff"] = table["run_rate"] - table["published_rate"]
    table["p_value"] = tested["p_value"].to_numpy()
    table["p_adjusted"] = tested["p_adjusted"].to_numpy()
    table["significant"] = table["p_adjusted"] < study.config.alpha
    return table


def sample_sizes(study: ComparisonStudy) -> pd.DataFrame:
    """Per run and suite: episodes per task, the minimum detectable difference (pp, at
    80 % power and the study's alpha, two-sided) at that run's rate and episode count (NaN:
    not even a rise to 100 % would be detectable), and the episodes per arm a +2 pp gain
    over that rate would need (missing when the rate is above 98 %)."""
    if not study.runs:
        return pd.DataFrame()
    rows = []
    for row in study.suites.itertuples(index=False):
        rate = row.successes / row.episodes
        target = rate + CLAIMED_GAIN_PP / 100  # above 100 %: no such gain exists
        rows.append(
            {
                "run": row.run,
                "suite": row.suite,
                "episodes": row.episodes,
                "episodes_per_task": row.episodes / row.tasks,
                "rate": 100 * rate,
                # a perfect run cannot improve: no detectable gain (NaN)
                "mdd_pp": 100
                * stats.minimum_detectable_difference(rate, row.episodes, alpha=study.config.alpha)
                if rate < 1
                else float("nan"),
                "episodes_for_2pp": stats.trials_needed(rate, target, alpha=study.config.alpha)
                if target < 1
                else pd.NA,
            }
        )
    return pd.DataFrame(rows)


def export_tables(study: ComparisonStudy, paired: Paired, folder) -> list[Path]:
    """The suite table (runs and baselines, rate [low, high]) and the paired comparison as
    LaTeX (booktabs) and Markdown files in ``folder``; returns the paths written."""
    folder = Path(folder)
    written = []
    table = suite_table(study)
    if len(table):
        cells = table.assign(
            cell=[
                f"{r:.1f} [{lo:.1f}, {hi:.1f}]"
                for r, lo, hi in zip(
                    table["success_rate"], table["ci_low"], table["ci_high"], strict=True
                )
            ]
        )
        wide = cells.pivot_table(
            index="method", columns="suite", values="cell", aggfunc="first", sort=False
        )
        wide.columns.name = None
        written += _write_both(wide.reset_index(), folder / "suite_success")
    per_suite = paired.per_suite
    if len(per_suite):
        shown = per_suite.assign(
            diff_pp=per_suite["diff"].round(1),
            interval=[
                f"[{a:.1f}, {b:.1f}]"
                for a, b in zip(per_suite.ci_low, per_suite.ci_high, strict=True)
            ],
            p_value=per_suite["p_value"].map(lambda p: f"{p:.3g}"),
            p_adjusted=per_suite["p_adjusted"].map(lambda p: f"{p:.3g}"),
        )[["run", "reference", "scope", "tasks", "diff_pp", "interval", "p_value", "p_adjusted"]]
        shown["significant"] = per_suite["significant"].to_numpy()
        written += _write_both(shown, folder / "paired_comparison")
    return written


def _write_both(frame: pd.DataFrame, stem: Path) -> list[Path]:
    tex = stem.with_suffix(".tex")
    md = stem.with_suffix(".md")
    latex = frame.style.hide(axis="index").to_latex(hrules=True)  # booktabs rules
    write_text_atomic(tex, latex)
    write_text_atomic(md, frame.to_markdown(index=False) + "\n")
    return [tex, md]


def difference_table(study: ComparisonStudy, paired: Paired) -> pd.DataFrame:
    """Every row of ``paired.per_suite`` with the interval the differences figure draws:
    the same paired bootstrap (same draws: same seed) at the confidence that matches the
    multiple-comparison correction, 1 − alpha / m for the m comparisons the p-values were
    corrected over (Bonferroni; 1 − alpha without a correction). The 95 % interval of the
    tables is not corrected, so it can exclude 0 where the corrected test does not reject
    (5/25 against 0/25: [−32, −8] pp, Holm p = 1); the widened one rarely does, and the
    figure marks where it still disagrees. Columns ``ci_low_adjusted``,
    ``ci_high_adjusted``, ``confidence_adjusted``, ``comparisons`` and ``metrics_key``
    (``("differences", "<run> − <reference>", scope)``) are added."""
    per_suite = paired.per_suite
    if per_suite.empty:
        return per_suite
    cfg = study.config
    m = len(per_suite) if cfg.correction != "none" else 1
    confidence = 1 - cfg.alpha / m
    lows, highs, methods = [], [], []
    for row in per_suite.itertuples(index=False):
        counts = summaries.paired_counts(study.tasks, row.reference, row.run)
        if row.scope != "overall":
            counts = counts.xs(row.scope, level="suite", drop_level=False)
        low, high, method = _difference_interval(
            counts["successes_b"].to_numpy(),
            counts["episodes_b"].to_numpy(),
            counts["successes_a"].to_numpy(),
            counts["episodes_a"].to_numpy(),
            confidence,
            cfg,
        )
        lows.append(100 * low)
        highs.append(100 * high)
        methods.append(method)
    return per_suite.assign(
        ci_low_adjusted=lows,
        ci_high_adjusted=highs,
        interval_method_adjusted=methods,
        confidence_adjusted=confidence,
        comparisons=len(per_suite),
        metrics_key=[
            ("differences", f"{r} − {ref}", scope)
            for r, ref, scope in zip(
                per_suite["run"], per_suite["reference"], per_suite["scope"], strict=True
            )
        ],
    )


NEWCOMBE = "Newcombe (Wilson, effective n)"


def _bootstrap_holds(k: np.ndarray, n: np.ndarray) -> bool:
    """The condition of :func:`nblib.metrics.success.suite_interval` for one arm: enough
    episodes per task and some task strictly between 0 % and 100 %."""
    return bool(n.min() >= stats.aggregates.MIN_BOOTSTRAP_EPISODES and np.any((k > 0) & (k < n)))


def _difference_interval(k_a, n_a, k_b, n_b, confidence: float, cfg) -> tuple:
    """Interval of mean_t(rate_a) − mean_t(rate_b) at ``confidence``: the paired
    task-stratified bootstrap where both arms allow it, else Newcombe's hybrid score
    interval from each arm's Wilson interval at its effective episode count (where the
    bootstrap collapses: 0/25 against 25/25 gave [−100, −100], 0/25 against 0/25 [0, 0])."""
    if _bootstrap_holds(k_a, n_a) and _bootstrap_holds(k_b, n_b):
        result = stats.compare_overall(
            k_a, n_a, k_b, n_b, n_boot=cfg.n_boot, seed=cfg.seed, confidence=confidence
        )
        return result["low"], result["high"], stats.aggregates.BOOTSTRAP
    (p_a, low_a, high_a), (p_b, low_b, high_b) = (
        _wilson_of_mean(k, n, confidence) for k, n in ((k_a, n_a), (k_b, n_b))
    )
    diff = p_a - p_b
    low = diff - np.hypot(p_a - low_a, high_b - p_b)
    high = diff + np.hypot(high_a - p_a, p_b - low_b)
    return float(max(low, -1.0)), float(min(high, 1.0)), NEWCOMBE


def _wilson_of_mean(k, n, confidence: float) -> tuple[float, float, float]:
    """The mean of the per-task rates with Wilson's interval at the effective episode
    count T**2 / sum(1 / n_t) (as :func:`nblib.metrics.success.suite_interval`)."""
    from statsmodels.stats.proportion import proportion_confint

    mean = float((k / n).mean())
    n_eff = float(n.size**2 / (1.0 / n).sum())
    low, high = proportion_confint(mean * n_eff, n_eff, alpha=1 - confidence, method="wilson")
    low = 0.0 if mean == 0.0 else float(np.clip(low, 0.0, 1.0))
    high = 1.0 if mean == 1.0 else float(np.clip(high, 0.0, 1.0))
    return mean, low, high


def figure_references(study: ComparisonStudy, table: pd.DataFrame) -> dict[str, str]:
    """Per run, the reference the differences figure compares it with by default:
    ``reference_run`` when set, else the first run (in the order read) that it was
    compared with, i.e. that shares tasks with it."""
    out = {}
    for run in study.runs:
        part = table[table["run"] == run]
        if study.reference is not None:
            part = part[part["reference"] == study.reference]
        candidates = [r for r in study.runs if r in set(part["reference"])]
        if candidates:
            out[run] = candidates[0]
    return out


def shown_differences(study: ComparisonStudy, table: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`difference_table` the figure shows: every pair with
    ``figure_pairs="all"``, else each run against its :func:`figure_references` entry."""
    if table.empty or study.config.figure_pairs == "all":
        return table
    references = figure_references(study, table)
    keep = [references.get(r) == ref for r, ref in zip(table.run, table.reference, strict=True)]
    return table[keep].reset_index(drop=True)


def difference_figure(study: ComparisonStudy, paired: Paired):
    """The paired differences with their corrected intervals (see :func:`difference_table`);
    (None, None) when nothing was paired."""
    if paired.per_suite.empty:
        return None, None
    table = shown_differences(study, difference_table(study, paired))
    return plots.plot_differences(table, study.colours, alpha=study.config.alpha)


def difference_caption(study: ComparisonStudy, paired: Paired) -> str:
    if paired.per_suite.empty:
        return ""
    table = difference_table(study, paired)
    shown = shown_differences(study, table)
    return plots.caption_differences(shown, study.config.correction, hidden=len(table) - len(shown))


# ----------------------------------------------------------------------------- verdict


@dataclass(frozen=True)
class ComparisonEvidence(Evidence):
    """The runs, their summaries, the paired comparisons and the sample sizes."""

    benchmark: str
    sources: list[str]
    runs: pd.DataFrame  # runs_table
    reference: str | None
    pairs: int
    suites: pd.DataFrame
    average: pd.DataFrame
    perturbed: list[dict]  # per run with perturbed episodes: rate, episodes, plain mean
    paired: Paired
    sizes: pd.DataFrame
    suite_rates: dict  # the suite figure's numbers (tables.suite_rates)
    perturbed_totals: dict  # the perturbation figure's (tables.perturbation_metrics)
    differences: pd.DataFrame  # difference_table: the differences figure's


def evidence(study: ComparisonStudy, paired: Paired) -> ComparisonEvidence:
    perturbed = []
    _, totals = perturbation_table(study)
    if totals is not None:
        for row in totals.itertuples(index=False):
            if row.method not in study.runs:
                continue
            part = study.episodes[
                (study.episodes["run"] == row.method) & (study.episodes["perturbation"] != "none")
            ]
            perturbed.append(
                {
                    "run": row.method,
                    "rate": 100 * float(part["success"].mean()),
                    "episodes": len(part),
                    "mean_plain": row.mean_plain,
                }
            )
    return ComparisonEvidence(
        study.config.baseline_benchmark,
        study.sources,
        runs_table(study),
        study.reference,
        len(run_pairs(study)) if study.runs else 0,
        study.suites,
        study.average,
        perturbed,
        paired,
        sample_sizes(study),
        suite_rates(study),
        perturbation_metrics(study),
        difference_table(study, paired),
    )


def _completeness(flag) -> str:
    if flag is None or pd.isna(flag):
        return " (completeness unknown: the file cannot tell whether every episode ran)"
    return "" if flag else " (interrupted: only the finished episodes)"


def _method(method) -> str:
    """The interval's method when it is not the usual bootstrap (few episodes per task,
    or every task at 0 % or 100 %): the reason says so beside the numbers."""
    return "" if method == stats.aggregates.BOOTSTRAP else f" ({method} interval)"


def verdict(evidence: ComparisonEvidence, config: ComparisonConfig) -> Verdict:
    """DIFFERENT / INCONCLUSIVE / BASELINES (see the module docstring). Interrupted runs
    and runs whose completeness is unknown are named in the reasons."""
    runs = evidence.runs
    if runs.empty:
        return Verdict(
            "BASELINES",
            (f"no result files: the published {evidence.benchmark} table only",),
            {"runs": 0},
        )
    reasons = []
    numbers = {"runs": len(runs), "reference_run": evidence.reference, "pairs": evidence.pairs}
    for row in evidence.suites.itertuples(index=False):
        reasons.append(
            f"{row.run} on {row.suite}: {row.success_rate:.1f} % "
            f"[{row.ci_low:.1f}, {row.ci_high:.1f}] over {row.episodes} episodes"
            + _method(row.ci_method)
            + _completeness(row.complete)
        )
    for row in evidence.average.itertuples(index=False):
        reasons.append(
            f"{row.run} over the four suites: {row.success_rate:.1f} % "
            f"[{row.ci_low:.1f}, {row.ci_high:.1f}]" + _method(row.ci_method)
        )
    for row in evidence.perturbed:
        reasons.append(
            f"{row['run']} on perturbed variants: {row['rate']:.1f} % over {row['episodes']} "
            f"episodes (plain mean over categories {row['mean_plain']:.1f} %)"
        )
    per_task, per_suite = evidence.paired.per_task, evidence.paired.per_suite
    significant = per_suite[per_suite["significant"]] if len(per_suite) else per_suite
    numbers["comparisons"] = len(per_suite)
    numbers["significant_comparisons"] = len(significant)
    numbers["significant_tasks"] = int(per_task["significant"].sum()) if len(per_task) else 0
    flags = runs["complete"].astype("boolean")
    numbers["incomplete_runs"] = int(flags.eq(False).sum())
    numbers["completeness_unknown_runs"] = int(flags.isna().sum())
    sizes = evidence.sizes
    # a perfect run has no detectable gain (NaN): judge the others
    sizes = sizes[sizes["mdd_pp"].notna()] if len(sizes) else sizes
    if len(sizes):
        numbers["largest_mdd_pp"] = float(sizes["mdd_pp"].max())
    if len(significant):
        label = "DIFFERENT"
        for row in significant.itertuples(index=False):
            reasons.append(
                f"{row.run} vs {row.reference} ({row.scope}): {row.diff:+.1f} pp "
                f"[{row.ci_low:+.1f}, {row.ci_high:+.1f}], p = {row.p_value:.3g} "
                f"({config.correction}-corrected {row.p_adjusted:.3g})"
            )
    else:
        label = "INCONCLUSIVE"
        if len(per_suite):
            against = f"from {evidence.reference}" if evidence.reference else "from another"
            reasons.append(
                f"no run differs {against} at alpha = {config.alpha} after "
                f"{config.correction} correction ({len(per_suite)} suite/overall comparisons)"
            )
        else:
            reasons.append("no two runs share a task, so nothing could be compared pairwise")
        if len(sizes):
            worst = sizes.loc[sizes["mdd_pp"].idxmax()]
            reasons.append(
                f"with {int(worst['episodes'])} episodes ({worst['run']}, {worst['suite']}) only "
                f"differences of about {worst['mdd_pp']:.1f} pp or more were detectable"
            )
    if len(per_suite):
        excludes = (per_suite["ci_low"] > 0) | (per_suite["ci_high"] < 0)
        disagree = per_suite[excludes != per_suite["significant"]]
        if len(disagree):
            numbers["interval_test_disagreements"] = len(disagree)
            reasons.append(
                f"{len(disagree)} comparison(s) where the bootstrap interval and the corrected "
                "test disagree on whether the difference is 0 (the verdict follows the "
                f"{config.correction}-corrected test): "
                + ", ".join(f"{r.run} vs {r.reference} ({r.scope})" for r in disagree.itertuples())
            )
    return Verdict(label, reasons, numbers)


def metrics(evidence: ComparisonEvidence) -> dict:
    """metrics.json's numbers: per run and suite the rate and its interval, the paired
    comparisons, the sample-size table."""
    out: dict = {"sources": evidence.sources, "baseline_benchmark": evidence.benchmark}
    if evidence.runs.empty:
        return out
    out["suites"] = _records(evidence.suites)
    out["paired"] = _records(evidence.paired.per_suite)
    out["sample_sizes"] = _records(evidence.sizes)
    # The figures' numbers, keyed (not listed) so a figure can name each one it shows and
    # report.finish can check it: full precision, exactly as drawn.
    out["suite_rates"] = evidence.suite_rates
    if evidence.perturbed_totals:
        out["perturbed_totals"] = evidence.perturbed_totals
    if len(evidence.differences):
        out["differences"] = _differences(evidence.differences)
    return out


def _differences(table: pd.DataFrame) -> dict:
    out: dict = {}
    for row in table.itertuples(index=False):
        _, pair, scope = row.metrics_key
        out.setdefault(pair, {})[scope] = {
            "diff": float(row.diff),
            "ci_low_adjusted": float(row.ci_low_adjusted),
            "ci_high_adjusted": float(row.ci_high_adjusted),
            "confidence_adjusted": float(row.confidence_adjusted),
            "interval_method_adjusted": str(row.interval_method_adjusted),
            "p_adjusted": None if pd.isna(row.p_adjusted) else float(row.p_adjusted),
            "significant": bool(row.significant),
        }
    return out


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records", double_precision=6)) if len(frame) else []
