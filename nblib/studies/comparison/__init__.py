"""Notebook 05's engine, the LIBERO comparison: ``study`` (config, result files, published
baselines, suite and task tables, paired tests, sample sizes, exports, verdict, metrics)
and ``plots``."""

from nblib.studies.comparison import plots
from nblib.studies.comparison.study import (
    ComparisonConfig,
    ComparisonStudy,
    baseline_tests,
    browser,
    difference_figure,
    examples_dir,
    export_tables,
    heatmap_figure,
    metrics,
    paired_tables,
    perturbation_figure,
    perturbation_table,
    prepare,
    runs_table,
    sample_sizes,
    suite_figure,
    suite_summary,
    suite_table,
    task_matrix,
    task_summary,
    verdict,
)

__all__ = [
    "ComparisonConfig",
    "ComparisonStudy",
    "baseline_tests",
    "browser",
    "difference_figure",
    "examples_dir",
    "export_tables",
    "heatmap_figure",
    "metrics",
    "paired_tables",
    "perturbation_figure",
    "perturbation_table",
    "plots",
    "prepare",
    "runs_table",
    "sample_sizes",
    "suite_figure",
    "suite_summary",
    "suite_table",
    "task_matrix",
    "task_summary",
    "verdict",
]
