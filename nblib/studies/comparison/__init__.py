"""Notebook 05's engine, the LIBERO comparison (the engine contract of
:mod:`nblib.studies`): ``study`` (config, result files, published baselines, the prepared
summaries), ``tables`` (suite, task and perturbation tables, performance profiles, the
figures' numbers for metrics), ``figures`` (each figure and caption from the study, the
run/suite picker), ``analysis`` (paired tests, baseline tests, sample sizes, exports,
evidence, verdict, metrics) and ``plots`` (the drawing: ``plots_common``, ``suite_plots``,
``perturbation_plots``, ``difference_plots``, ``profile_plots``)."""

from nblib.studies.comparison import plots
from nblib.studies.comparison.analysis import (
    ComparisonEvidence,
    Paired,
    baseline_tests,
    difference_caption,
    difference_figure,
    difference_table,
    evidence,
    export_tables,
    metrics,
    paired_tables,
    run_pairs,
    sample_sizes,
    shown_differences,
    verdict,
)
from nblib.studies.comparison.figures import (
    browser,
    heatmap_caption,
    heatmap_figure,
    perturbation_caption,
    perturbation_figure,
    profile_caption,
    profile_figure,
    suite_caption,
    suite_figure,
)
from nblib.studies.comparison.study import (
    ComparisonConfig,
    ComparisonStudy,
    examples_dir,
    prepare,
)
from nblib.studies.comparison.tables import (
    performance_profiles,
    perturbation_metrics,
    perturbation_overview,
    perturbation_table,
    perturbation_totals,
    runs_table,
    suite_rates,
    suite_table,
    task_matrix,
)

__all__ = [
    "ComparisonConfig",
    "ComparisonEvidence",
    "ComparisonStudy",
    "Paired",
    "baseline_tests",
    "browser",
    "difference_caption",
    "difference_figure",
    "difference_table",
    "evidence",
    "examples_dir",
    "export_tables",
    "heatmap_caption",
    "heatmap_figure",
    "metrics",
    "paired_tables",
    "performance_profiles",
    "perturbation_caption",
    "perturbation_figure",
    "perturbation_metrics",
    "perturbation_overview",
    "perturbation_table",
    "perturbation_totals",
    "plots",
    "prepare",
    "profile_caption",
    "profile_figure",
    "run_pairs",
    "runs_table",
    "sample_sizes",
    "shown_differences",
    "suite_caption",
    "suite_figure",
    "suite_rates",
    "suite_table",
    "task_matrix",
    "verdict",
]
