"""Which run is better, per suite and per task, and is the difference real? (notebook 05,
seeds 002 and 000)

Seeds 002 and 000 compared LIBERO runs by hand from log files, a handful of trials each and
no intervals. This engine reads the result files of any supported evaluation tool
(:mod:`nblib.eval.results`), puts each run next to the published baselines
(:mod:`nblib.eval.baselines`), and says which differences the episode counts can support:

1. ``prepare(config)``: the episodes of every result file (or the bundled examples), the
   published table, one colour per method for every figure, and the per-task, per-suite
   and four-suite summaries every later step reads;
2. ``runs_table``, ``suite_table`` (task-stratified bootstrap intervals for runs, or
   Wilson's at the effective episode count where the bootstrap collapses, named in
   ``ci_method``; Wilson for published rates), ``task_matrix`` (the heatmap's data), ``perturbation_table``
   (plain mean and variant-weighted total side by side);
3. ``paired_tables``: every pair of runs sharing tasks (or every run against
   ``reference_run``), per task (an exact test per
   2×2 table with a multiple-comparison correction) and per suite / overall (the difference
   of task-averaged rates with a paired task-stratified bootstrap interval and a
   Cochran–Mantel–Haenszel test); ``baseline_tests``: each run's suite rate against the
   published ones (Fisher's exact test on the counts the published rate implies);
4. ``sample_sizes``: the minimum detectable difference for each run's episode counts and
   the episodes a 2-point gain would need;
5. ``export_tables``, then ``evidence`` -> ``verdict`` -> ``metrics``
   (:mod:`nblib.studies.comparison.analysis`; the engine contract of
   :mod:`nblib.studies`).
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
from nblib.eval.results.schema import base_suite, kleene_all
from nblib.metrics import success as stats
from nblib.metrics.success.profiles import PROFILE_COLUMNS
from nblib.paths import manifests_dir
from nblib.plots import colors_for
from nblib.studies import Study, StudyConfig
from nblib.studies.comparison import plots

TESTS = ("fisher", "barnard", "boschloo")
CORRECTIONS = ("holm", "bh", "none")
# The differences figure: each run against its reference (reference_run, else the first
# run it shares tasks with) or every compared pair (the tables always hold every pair).
FIGURE_PAIRS = ("reference", "all")
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
    figure_pairs: str = "reference"  # differences figure: "reference" or "all" pairs
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
        require(
            self.figure_pairs in FIGURE_PAIRS,
            own,
            "figure_pairs",
            self.figure_pairs,
            f"one of {list(FIGURE_PAIRS)}",
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


@dataclass(frozen=True)
class ComparisonStudy(Study):
    """The runs' episodes, the published table, one colour per method, and the summaries
    every step reads: per task, per (run, suite) of the standard protocol with its
    interval (:func:`nblib.metrics.success.suite_interval`), and over the four LIBERO
    suites."""

    episodes: pd.DataFrame  # the results schema; empty when there are no runs
    runs: list[str]
    reference: str | None
    baseline: pd.DataFrame  # published table of config.baseline_benchmark
    colours: dict[str, str]
    sources: list[str]  # the files or folders read
    tasks: pd.DataFrame  # summarize(episodes)
    suites: pd.DataFrame  # suite_summary of the unperturbed episodes
    average: pd.DataFrame  # run_summary of runs with all four LIBERO suites


def prepare(config: ComparisonConfig) -> ComparisonStudy:
    """Read every result file (or the bundled examples) and the published table, and
    summarise the runs per task, per suite and over the four LIBERO suites."""
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
    plain = _unperturbed(episodes)
    return ComparisonStudy(
        config=config,
        episodes=episodes,
        runs=runs,
        reference=reference,
        baseline=baseline.reset_index(drop=True),
        colours=_method_colours(runs, policies),
        sources=[str(p) for p in paths],
        tasks=summaries.summarize(episodes) if runs else pd.DataFrame(),
        suites=_suite_summary(plain, config),
        average=_average_summary(plain, config),
    )


def _method_colours(runs: list[str], policies: list[str]) -> dict[str, str]:
    """One colour per method for every figure: runs take the run palette (distinct up to
    8 runs, then repeating: every figure names runs on its axes, never by colour alone),
    published policies one neutral grey (they are drawn hatched and named)."""
    colours = colors_for(runs, kind="run")
    colours.update({p: plots.PUBLISHED_COLOUR for p in policies if p not in colours})
    return colours


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


def _unperturbed(episodes: pd.DataFrame) -> pd.DataFrame:
    """The episodes of the standard protocol (``perturbation == "none"``): the ones a
    suite's rate and the published LIBERO numbers are about. LIBERO-Plus variants and
    LIBERO-PRO suites go to the perturbation breakdown instead."""
    if episodes.empty:
        return episodes
    return episodes[episodes["perturbation"] == "none"]


def _suite_summary(plain: pd.DataFrame, cfg: ComparisonConfig) -> pd.DataFrame:
    """Per (run, suite) of the standard protocol: the mean over tasks with its
    task-stratified bootstrap interval (empty when every episode is perturbed)."""
    if plain.empty:
        return pd.DataFrame(columns=list(summaries.SUITE_COLUMNS))
    return summaries.suite_summary(plain, n_boot=cfg.n_boot, seed=cfg.seed)


AVERAGE_COLUMNS = ["run", "success_rate", "ci_low", "ci_high", "episodes", "ci_method"]


def _average_summary(plain: pd.DataFrame, cfg: ComparisonConfig) -> pd.DataFrame:
    """Per run that evaluated all four LIBERO suites under the standard protocol: the mean
    over its tasks (= the mean of the four suite rates, 10 tasks each) with a
    task-stratified bootstrap interval. A run with fewer suites has no average: a mean
    over other suites would not be comparable with the published averages."""
    if plain.empty:
        return pd.DataFrame(columns=AVERAGE_COLUMNS)
    suites = plain.groupby("run", sort=False)["suite"].agg(set)
    full = [r for r, s in suites.items() if set(published.LIBERO_SUITES) <= s]
    chosen = plain[plain["run"].isin(full) & plain["suite"].isin(published.LIBERO_SUITES)]
    if chosen.empty:
        return pd.DataFrame(columns=AVERAGE_COLUMNS)
    return summaries.run_summary(chosen, n_boot=cfg.n_boot, seed=cfg.seed)


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


#: Fewest tasks a run needs for its performance profile: with 5 tasks a profile is a
#: staircase of 5 steps whose band spans most of the axis, and several runs share it.
MIN_PROFILE_TASKS = 10


def _profiled(study: ComparisonStudy, table: pd.DataFrame) -> tuple[pd.DataFrame, dict, list]:
    """The profile rows of runs with at least :data:`MIN_PROFILE_TASKS` tasks, every
    run's task count, and the runs left out for having fewer."""
    counts = study.tasks[study.tasks["perturbation"] == "none"].groupby("run", sort=False).size()
    counts = {k: int(v) for k, v in counts.items()}
    kept = [m for m in dict.fromkeys(table["method"]) if counts.get(m, 0) >= MIN_PROFILE_TASKS]
    dropped = [m for m in dict.fromkeys(table["method"]) if m not in kept]
    return table[table["method"].isin(kept)], counts, dropped


def profile_figure(study: ComparisonStudy, table: pd.DataFrame):
    """:func:`nblib.studies.comparison.plots.plot_performance_profiles` of the runs with at
    least :data:`MIN_PROFILE_TASKS` tasks (the others are counted in a note); (None, None)
    without a run to draw."""
    if table.empty:
        return None, None
    kept, counts, dropped = _profiled(study, table)
    if kept.empty:
        return None, None
    fig, ax = plots.plot_performance_profiles(
        kept,
        study.colours,
        ylabel="fraction of tasks\nwith success rate $> \\tau$",
        counts=counts,
    )
    if dropped:
        ax.text(
            1.01,
            0.0,
            f"left out: {len(dropped)} run(s) with < {MIN_PROFILE_TASKS} tasks",
            transform=ax.transAxes,
            fontsize=plots.SMALL,
            va="bottom",
        )
    return fig, ax


def profile_caption(study: ComparisonStudy, table: pd.DataFrame) -> str:
    kept, _, dropped = _profiled(study, table) if len(table) else (table, {}, [])
    caption = plots.caption_performance_profiles(kept)
    if dropped:
        caption = caption[:-1] + (
            f"; {len(dropped)} run(s) with fewer than {MIN_PROFILE_TASKS} tasks are left out "
            "(their rates are in the suite and task figures)."
        )
    return caption


# ----------------------------------------------------------------------------- figures


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


def _run_complete(study: ComparisonStudy) -> dict:
    """Per run: True, False (interrupted) or None (the files cannot tell)."""
    return {r.run: r.complete for r in runs_table(study).itertuples(index=False)}


def suite_figure(study: ComparisonStudy, runs=None, suites=None):
    """Small multiples per suite: runs (coloured, † when interrupted) and published
    baselines (grey, hatched), each bar with its interval and n."""
    table = suite_table(study, runs=runs, suites=suites)
    if table.empty:
        return None, None
    complete = _run_complete(study)
    table = table.assign(
        complete=[
            complete.get(m, True) if k == "run" else True
            for m, k in zip(table.method, table.kind, strict=True)
        ],
        metrics_key=[
            ("suite_rates", m, s) if k == "run" else None
            for m, s, k in zip(table.method, table.suite, table.kind, strict=True)
        ],
    )
    return plots.plot_suite_bars(table, study.colours)


def suite_caption(study: ComparisonStudy) -> str:
    return plots.caption_suite_bars(suite_table(study))


def _plain_tasks(study: ComparisonStudy, runs=None, suites=None) -> pd.DataFrame:
    if not study.runs:
        return pd.DataFrame()
    tasks = study.tasks[study.tasks["perturbation"] == "none"]
    if runs is not None:
        tasks = tasks[tasks["run"].isin(runs)]
    if suites is not None:
        tasks = tasks[tasks["suite"].isin(suites)]
    return tasks


def heatmap_figure(study: ComparisonStudy, runs=None, suites=None):
    """Per-task rates, one panel per suite with the runs that evaluated it, n per cell."""
    tasks = _plain_tasks(study, runs=runs, suites=suites)
    if tasks.empty:
        return None, None
    return plots.plot_task_heatmap(tasks, runs=[r for r in study.runs if r in set(tasks["run"])])


def heatmap_caption(study: ComparisonStudy) -> str:
    return plots.caption_task_heatmap(_plain_tasks(study))


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


def perturbation_figure(study: ComparisonStudy):
    table, totals = perturbation_overview(study)
    if table is None:
        return None, None
    return plots.plot_perturbations(table, totals, study.colours)


def perturbation_caption(study: ComparisonStudy) -> str:
    _, totals = perturbation_overview(study)
    return "" if totals is None else plots.caption_perturbations(totals)


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
