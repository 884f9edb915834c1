"""Which run is better, per suite and per task, and is the difference real? (notebook 05,
seeds 002 and 000)

Seeds 002 and 000 compared LIBERO runs by hand from log files, a handful of trials each and
no intervals. This engine reads the result files of any supported evaluation tool
(:mod:`nblib.eval.results`), puts each run next to the published baselines
(:mod:`nblib.eval.baselines`), and says which differences the episode counts can support:

1. ``prepare(config)``: the episodes of every result file (or the bundled examples), the
   published table, one colour per method for every figure;
2. ``runs_table``, ``suite_table`` (task-stratified bootstrap intervals for runs, Wilson
   for published rates), ``task_matrix`` (the heatmap's data), ``perturbation_table``
   (plain mean and variant-weighted total side by side);
3. ``paired_tables``: every pair of runs sharing tasks (or every run against
   ``reference_run``), per task (an exact test per
   2×2 table with a multiple-comparison correction) and per suite / overall (the difference
   of task-averaged rates with a paired task-stratified bootstrap interval and a
   Cochran–Mantel–Haenszel test); ``baseline_tests``: each run's suite rate against the
   published ones (Fisher's exact test on the counts the published rate implies);
4. ``sample_sizes``: the minimum detectable difference for each run's episode counts and
   the episodes a 2-point gain would need;
5. ``export_tables``, ``verdict`` and ``metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nblib.errors import DataError, is_int, is_number, require
from nblib.eval import baselines as published
from nblib.eval.results import read_results
from nblib.eval.results import summary as summaries
from nblib.eval.results.schema import base_suite
from nblib.metrics import success as stats
from nblib.paths import manifests_dir, write_text_atomic
from nblib.plots import category_colors, colors_for
from nblib.studies import StudyConfig
from nblib.studies.comparison import plots
from nblib.verdict import Verdict

TESTS = ("fisher", "barnard", "boschloo")
CORRECTIONS = ("holm", "bh", "none")
# The published rows shown by default ([] shows all): the original OpenVLA, its OFT
# successor and openpi's two flow policies span the range from 76.5 % to 97.1 %.
DEFAULT_POLICIES = ("OpenVLA (fine-tuned)", "OpenVLA-OFT", "pi0 (30k steps)", "pi0.5 (30k steps)")
CLAIMED_GAIN_PP = 2.0  # "a 2 pp gain": the claim seed 002's comparisons were about


def examples_dir() -> Path:
    """The bundled example result files the default run compares (see its README)."""
    return manifests_dir() / "results"


@dataclass
class ComparisonConfig(StudyConfig):
    result_files: list[str] = field(default_factory=list)  # files/folders; empty: examples
    run_labels: list[str] = field(default_factory=list)  # one per result_files entry
    suite: str | None = None  # suite of files that do not state theirs
    baseline_benchmark: str = "libero"  # libero, libero_plus or libero_pro
    baseline_policies: list[str] = field(default_factory=lambda: list(DEFAULT_POLICIES))
    reference_run: str | None = None  # compare every run with this one (None: all pairs)
    test: str = "boschloo"  # per-task exact test: boschloo, barnard or fisher
    correction: str = "holm"  # multiple-comparison correction: holm, bh or none
    alpha: float = 0.05  # significance level (after correction)
    n_boot: int = 2000  # bootstrap resamples of the suite intervals
    seed: int = 0  # bootstrap seed
    interactive: bool = False  # widgets to pick runs and suites

    def __post_init__(self):
        own = "ComparisonConfig"
        for name in ("result_files", "run_labels", "baseline_policies"):
            value = getattr(self, name)
            ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
            require(ok, own, name, value, "a list of strings")
            setattr(self, name, list(value))
        require(
            not self.run_labels or len(self.run_labels) == len(self.result_files),
            own,
            "run_labels",
            self.run_labels,
            f"one label per result_files entry ({len(self.result_files)}), or []",
        )
        require(
            self.suite is None or isinstance(self.suite, str), own, "suite", self.suite, "a name"
        )
        require(
            self.baseline_benchmark in published.BENCHMARKS,
            own,
            "baseline_benchmark",
            self.baseline_benchmark,
            f"one of {list(published.BENCHMARKS)}",
        )
        require(
            self.reference_run is None or isinstance(self.reference_run, str),
            own,
            "reference_run",
            self.reference_run,
            "None or a run label",
        )
        require(self.test in TESTS, own, "test", self.test, f"one of {list(TESTS)}")
        require(
            self.correction in CORRECTIONS,
            own,
            "correction",
            self.correction,
            f"one of {list(CORRECTIONS)}",
        )
        require(is_number(self.alpha) and 0 < self.alpha < 1, own, "alpha", self.alpha, "in (0, 1)")
        require(is_int(self.n_boot) and self.n_boot >= 100, own, "n_boot", self.n_boot, ">= 100")
        require(is_int(self.seed), own, "seed", self.seed, "an int")
        require(isinstance(self.interactive, bool), own, "interactive", self.interactive, "a bool")


@dataclass
class ComparisonStudy:
    config: ComparisonConfig
    episodes: pd.DataFrame  # the results schema; empty when there are no runs
    runs: list[str]
    reference: str | None
    baseline: pd.DataFrame  # published table of config.baseline_benchmark
    colours: dict[str, str]
    sources: list[str]  # the files or folders read
    cache: dict = field(default_factory=dict)


def prepare(config: ComparisonConfig) -> ComparisonStudy:
    """Read every result file (or the bundled examples) and the published table."""
    paths, labels = config.result_files, config.run_labels or None
    if not paths and examples_dir().is_dir():
        paths = [str(examples_dir())]
    if paths:
        episodes = read_results(paths, suite=config.suite, labels=labels)
    else:
        episodes = pd.DataFrame()
    runs = list(dict.fromkeys(episodes["run"])) if len(episodes) else []
    reference = config.reference_run
    if reference is not None and reference not in runs:
        raise DataError(f"reference_run={reference!r} is not among the runs read: {runs}")
    baseline = published.baselines(config.baseline_benchmark)
    if config.baseline_policies and "policy" in baseline:
        unknown = sorted(set(config.baseline_policies) - set(baseline["policy"]))
        if unknown:
            raise DataError(
                f"baseline_policies {unknown} are not in the {config.baseline_benchmark} table; "
                f"it has {sorted(set(baseline['policy']))} (baseline_policies=[] shows all)"
            )
        baseline = baseline[baseline["policy"].isin(config.baseline_policies)]
    policies = list(dict.fromkeys(baseline["policy"])) if "policy" in baseline else []
    return ComparisonStudy(
        config=config,
        episodes=episodes,
        runs=runs,
        reference=reference,
        baseline=baseline.reset_index(drop=True),
        colours=_method_colours(runs + policies),
        sources=[str(p) for p in paths],
    )


def _method_colours(names: list[str]) -> dict[str, str]:
    """One colour per method for every figure: the suite's stable colours while they are
    distinct (up to 8 methods), else one list of distinct categorical colours."""
    if len(names) <= 8:
        return colors_for(names)
    return dict(zip(names, category_colors(len(names)), strict=True))


def _cached(study: ComparisonStudy, key: str, make):
    if key not in study.cache:
        study.cache[key] = make()
    return study.cache[key]


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
                "complete": bool(group["complete"].all()),
            }
        )
    return pd.DataFrame(rows)


def task_summary(study: ComparisonStudy) -> pd.DataFrame:
    return _cached(study, "tasks", lambda: summaries.summarize(study.episodes))


def unperturbed(study: ComparisonStudy) -> pd.DataFrame:
    """The episodes of the standard protocol (``perturbation == "none"``): the ones a
    suite's rate and the published LIBERO numbers are about. LIBERO-Plus variants and
    LIBERO-PRO suites go to the perturbation breakdown instead."""
    if not study.runs:
        return study.episodes
    return study.episodes[study.episodes["perturbation"] == "none"]


def suite_summary(study: ComparisonStudy) -> pd.DataFrame:
    """Per (run, suite) of the standard protocol: the mean over tasks with its
    task-stratified bootstrap interval (empty when every episode is perturbed)."""
    cfg = study.config

    def make():
        plain = unperturbed(study)
        if plain.empty:
            return pd.DataFrame(columns=list(summaries.SUITE_COLUMNS))
        return summaries.suite_summary(plain, n_boot=cfg.n_boot, seed=cfg.seed)

    return _cached(study, "suites", make)


def average_summary(study: ComparisonStudy) -> pd.DataFrame:
    """Per run that evaluated all four LIBERO suites under the standard protocol: the mean
    over its tasks (= the mean of the four suite rates, 10 tasks each) with a
    task-stratified bootstrap interval. A run with fewer suites has no average: a mean
    over other suites would not be comparable with the published averages."""
    cfg = study.config

    def make():
        plain = unperturbed(study)
        if plain.empty:
            return pd.DataFrame(columns=["run", "success_rate", "ci_low", "ci_high", "episodes"])
        suites = plain.groupby("run", sort=False)["suite"].agg(set)
        full = [r for r, s in suites.items() if set(published.LIBERO_SUITES) <= s]
        chosen = plain[plain["run"].isin(full) & plain["suite"].isin(published.LIBERO_SUITES)]
        if chosen.empty:
            return pd.DataFrame(columns=["run", "success_rate", "ci_low", "ci_high", "episodes"])
        return summaries.run_summary(chosen, n_boot=cfg.n_boot, seed=cfg.seed)

    return _cached(study, "average", make)


def suite_table(study: ComparisonStudy, runs=None, suites=None) -> pd.DataFrame:
    """Rows ``method, kind, suite, success_rate, ci_low, ci_high, episodes`` for the runs
    (mean over tasks, task-stratified bootstrap) and the published LIBERO baselines
    (Wilson on the implied counts), restricted to the suites the runs evaluated (all four
    when there are no runs); suite ``average`` for runs that evaluated all four suites
    (:func:`average_summary`) and the published averages. ``runs`` / ``suites`` pick a
    subset (the widgets)."""
    rows = []
    run_suites: list[str] = []
    if study.runs:
        table = suite_summary(study)
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
                }
            )
        run_suites = list(dict.fromkeys(table["suite"]))
        for row in average_summary(study).itertuples(index=False):
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
                    }
                )
    out = pd.DataFrame(
        rows,
        columns=["method", "kind", "suite", "success_rate", "ci_low", "ci_high", "episodes"],
    )
    if suites is not None:
        out = out[out["suite"].isin(suites) | out["suite"].map(base_suite).isin(suites)]
    return out.reset_index(drop=True)


def task_matrix(study: ComparisonStudy, runs=None, suites=None) -> pd.DataFrame:
    """Success rate (%) per (suite, task) × run of the standard protocol; the heatmap's
    data (perturbed variants are in :func:`perturbation_table`)."""
    if not study.runs:
        return pd.DataFrame()
    frame = unperturbed(study)
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


def run_pairs(study: ComparisonStudy) -> list[tuple[str, str]]:
    """(run, reference) pairs to compare: every run against ``reference_run`` when it is
    set, else every pair of runs that evaluated at least one task in common."""
    if study.reference is not None:
        return [(run, study.reference) for run in study.runs if run != study.reference]
    table = task_summary(study)
    tasks = {
        run: set(zip(part["suite"], part["task"], strict=True))
        for run, part in table.groupby("run", sort=False)
    }
    return [
        (b, a) for i, a in enumerate(study.runs) for b in study.runs[i + 1 :] if tasks[a] & tasks[b]
    ]


def paired_tables(study: ComparisonStudy):
    """``(per_task, per_suite)`` for every pair of :func:`run_pairs` (``run`` against
    ``reference``; differences are run minus reference).

    ``per_task``: one row per (pair, suite, task) both evaluated: both counts and rates, the
    difference, the exact test's p-value, the corrected p-value (over the pair's tasks) and
    ``significant``. ``per_suite``: per pair and scope (each suite and ``overall``): the
    difference of task-averaged rates (pp) with a paired task-stratified bootstrap
    interval, the CMH p-value, the p-value corrected over every pair and scope in the
    table (``correction``), and ``significant`` (corrected p < alpha).
    """

    def make():
        cfg = study.config
        task_rows, suite_rows = [], []
        for run, reference in run_pairs(study):
            counts = summaries.paired_counts(task_summary(study), reference, run)
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
        return per_task, per_suite

    return _cached(study, "paired", make)


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
    suites = suite_summary(study)
    rows = []
    for run_row in suites.itertuples(index=False):
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
    for row in suite_summary(study).itertuples(index=False):
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


def export_tables(study: ComparisonStudy, folder) -> list[Path]:
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
    _, per_suite = paired_tables(study)
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


# ----------------------------------------------------------------------------- figures


def suite_figure(study: ComparisonStudy, runs=None, suites=None):
    """Grouped bars per suite: runs (hatch-free) and published baselines (hatched)."""
    table = suite_table(study, runs=runs, suites=suites)
    if table.empty:
        return None, None
    return plots.plot_suite_bars(table, study.colours)


def heatmap_figure(study: ComparisonStudy, runs=None, suites=None):
    matrix = task_matrix(study, runs=runs, suites=suites)
    if matrix.empty:
        return None, None
    return plots.plot_task_heatmap(matrix)


def perturbation_figure(study: ComparisonStudy):
    table, totals = perturbation_table(study)
    if table is None:
        return None, None
    return plots.plot_perturbations(table, totals, study.colours)


def difference_figure(study: ComparisonStudy):
    _, per_suite = paired_tables(study)
    if per_suite.empty:
        return None, None
    return plots.plot_differences(per_suite, study.colours)


def browser(study: ComparisonStudy):
    """ipywidgets (``interactive=True``): choose runs and suites; the bars and the heatmap
    follow."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    table = suite_table(study)
    methods = list(dict.fromkeys(table["method"]))
    suites = list(dict.fromkeys(table["suite"]))

    def show(methods_shown, suites_shown):
        fig, _ = suite_figure(study, runs=list(methods_shown), suites=list(suites_shown))
        if fig is None:
            print("nothing to show for this choice")
            return
        plt.show()
        chosen = [m for m in methods_shown if m in study.runs]
        if chosen:
            fig, _ = heatmap_figure(study, runs=chosen, suites=list(suites_shown))
            if fig is not None:
                plt.show()

    # Published baselines are always drawn for the chosen suites: the run list picks runs.
    return w.interactive(
        show,
        methods_shown=w.SelectMultiple(
            options=study.runs or methods, value=tuple(study.runs or methods), description="runs"
        ),
        suites_shown=w.SelectMultiple(options=suites, value=tuple(suites), description="suites"),
    )


# ----------------------------------------------------------------------------- verdict


def verdict(study: ComparisonStudy) -> Verdict:
    """DIFFERENT when some pair of runs differs significantly (overall or in a suite, after
    the multiple-comparison correction), INCONCLUSIVE when none does (the minimum detectable difference says what the
    episode counts could have seen), BASELINES when there are no runs, only the published
    tables. Interrupted runs are named in the reasons."""
    if not study.runs:
        return Verdict(
            "BASELINES",
            (f"no result files: the published {study.config.baseline_benchmark} table only",),
            {"runs": 0},
        )
    reasons, numbers = [], {"runs": len(study.runs), "reference_run": study.reference}
    numbers["pairs"] = len(run_pairs(study))
    suites = suite_summary(study)
    for row in suites.itertuples(index=False):
        reasons.append(
            f"{row.run} on {row.suite}: {row.success_rate:.1f} % "
            f"[{row.ci_low:.1f}, {row.ci_high:.1f}] over {row.episodes} episodes"
            + ("" if row.complete else " (interrupted: only the finished episodes)")
        )
    for row in average_summary(study).itertuples(index=False):
        reasons.append(
            f"{row.run} over the four suites: {row.success_rate:.1f} % "
            f"[{row.ci_low:.1f}, {row.ci_high:.1f}]"
        )
    perturbed, totals = perturbation_table(study)
    if perturbed is not None:
        for row in totals.itertuples(index=False):
            if row.method not in study.runs:
                continue
            part = study.episodes[
                (study.episodes["run"] == row.method) & (study.episodes["perturbation"] != "none")
            ]
            reasons.append(
                f"{row.method} on perturbed variants: {100 * part['success'].mean():.1f} % over "
                f"{len(part)} episodes (plain mean over categories {row.mean_plain:.1f} %)"
            )
    per_task, per_suite = paired_tables(study)
    significant = per_suite[per_suite["significant"]] if len(per_suite) else per_suite
    numbers["comparisons"] = len(per_suite)
    numbers["significant_comparisons"] = len(significant)
    numbers["significant_tasks"] = int(per_task["significant"].sum()) if len(per_task) else 0
    numbers["incomplete_runs"] = int((~runs_table(study)["complete"]).sum())
    sizes = sample_sizes(study)
    if len(sizes):
        numbers["largest_mdd_pp"] = float(sizes["mdd_pp"].max())
    if len(significant):
        label = "DIFFERENT"
        for row in significant.itertuples(index=False):
            reasons.append(
                f"{row.run} vs {row.reference} ({row.scope}): {row.diff:+.1f} pp "
                f"[{row.ci_low:+.1f}, {row.ci_high:+.1f}], p = {row.p_value:.3g} "
                f"({study.config.correction}-corrected {row.p_adjusted:.3g})"
            )
    else:
        label = "INCONCLUSIVE"
        if len(per_suite):
            against = f"from {study.reference}" if study.reference else "from another"
            reasons.append(
                f"no run differs {against} at alpha = {study.config.alpha} after "
                f"{study.config.correction} correction ({len(per_suite)} suite/overall comparisons)"
            )
        else:
            reasons.append("no two runs share a task, so nothing could be compared pairwise")
        if len(sizes):
            worst = sizes.loc[sizes["mdd_pp"].idxmax()]
            reasons.append(
                f"with {int(worst['episodes'])} episodes ({worst['run']}, {worst['suite']}) only "
                f"differences of about {worst['mdd_pp']:.1f} pp or more were detectable"
            )
    return Verdict(label, reasons, numbers)


def metrics(study: ComparisonStudy) -> dict:
    """metrics.json's numbers: per run and suite the rate and its interval, the paired
    comparisons, the sample-size table."""
    out: dict = {"sources": study.sources, "baseline_benchmark": study.config.baseline_benchmark}
    if not study.runs:
        return out
    out["suites"] = _records(suite_summary(study))
    _, per_suite = paired_tables(study)
    out["paired"] = _records(per_suite)
    out["sample_sizes"] = _records(sample_sizes(study))
    return out


def _records(frame: pd.DataFrame) -> list[dict]:
    import json

    return json.loads(frame.to_json(orient="records", double_precision=6)) if len(frame) else []
