"""Figures of the LIBERO comparison (``05_libero_comparison``): per-suite success bars
(small multiples, one panel per suite), the per-task heatmap (one panel per suite, the
runs that evaluated it), the perturbation breakdown with its three totals, the paired
differences and performance profiles; and one ``caption_*`` per figure.

Each function takes tables (never reads a file) and a ``colours`` mapping method → colour,
built once per study so a method has one colour in every figure; it returns ``(fig, axes)``.
Rates are percentages. Every number a figure prints that ``metrics.json`` also holds is
recorded with :func:`nblib.plots.show_number` under the key path given by the table's
``metrics_key`` column (or the ``key`` argument), so :func:`nblib.run.report.finish`
refuses a run whose figure and metrics disagree. Runs are named on the axes, never by
colour alone: beyond eight runs the run palette repeats.

This module gathers them in one namespace; each family lives in its own module:
``plots_common`` (suite names, colours, the rate bars), ``suite_plots`` (suite bars, task
heatmap), ``perturbation_plots``, ``difference_plots`` and ``profile_plots``.
"""

from nblib.plots import SINGLE_COLUMN_IN
from nblib.studies.comparison.difference_plots import caption_differences, plot_differences
from nblib.studies.comparison.perturbation_plots import caption_perturbations, plot_perturbations
from nblib.studies.comparison.plots_common import (
    INCOMPLETE_MARK,
    PUBLISHED_COLOUR,
    SMALL,
    SUITE_LABELS,
    suite_label,
)
from nblib.studies.comparison.profile_plots import (
    caption_performance_profiles,
    plot_performance_profiles,
)
from nblib.studies.comparison.suite_plots import (
    caption_suite_bars,
    caption_task_heatmap,
    plot_suite_bars,
    plot_task_heatmap,
)

__all__ = [
    "INCOMPLETE_MARK",
    "PUBLISHED_COLOUR",
    "SINGLE_COLUMN_IN",
    "SMALL",
    "SUITE_LABELS",
    "caption_differences",
    "caption_perturbations",
    "caption_performance_profiles",
    "caption_suite_bars",
    "caption_task_heatmap",
    "plot_differences",
    "plot_performance_profiles",
    "plot_perturbations",
    "plot_suite_bars",
    "plot_task_heatmap",
    "suite_label",
]
