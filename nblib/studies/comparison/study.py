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
   (plain mean and variant-weighted total side by side) in
   :mod:`nblib.studies.comparison.tables`, drawn by :mod:`nblib.studies.comparison.figures`;
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

This module holds step 1: the configuration, the prepared study and how it is prepared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nblib.errors import DataError, is_int, is_number, require
from nblib.eval import baselines as published
from nblib.eval.results import read_results
from nblib.eval.results import summary as summaries
from nblib.paths import manifests_dir
from nblib.plots import colors_for
from nblib.studies import Study, StudyConfig
from nblib.studies.comparison.plots_common import PUBLISHED_COLOUR

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
    colours.update({p: PUBLISHED_COLOUR for p in policies if p not in colours})
    return colours


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
