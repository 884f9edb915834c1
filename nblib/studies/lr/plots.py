"""Figures of the LR-schedule study (``03_lr_schedule_study``), each with its caption, one
module per figure:

* ``loss_curves`` (:mod:`~nblib.studies.lr.loss_plots`): the runs' loss curves (colour:
  schedule, line style: peak LR; imported logs: one colour per run) beside each run's
  improvement after warmup against the plateau threshold, as the verdict judges it;
* ``final_loss`` (:mod:`~nblib.studies.lr.final_loss_plots`): final loss against peak LR,
  one line per schedule, seeds as spread, the verdict's chosen configuration starred
  (imported logs: final loss per run);
* ``lr_range_test`` (:mod:`~nblib.studies.lr.range_plots`): the range test's loss against
  LR with its suggestions and the sweep's best peak LR;

their shared colours, line styles and axis labels in :mod:`~nblib.studies.lr.plots_common`.
This module holds what the notebook calls (each figure from the study's objects, the run
browser) and re-exports the plot and caption functions.

Each plot function takes tables and arrays (never reads a file), returns ``(fig, axes)``
and records with :func:`nblib.plots.show_number` every number it draws that
``metrics.json`` reports, at the path :func:`nblib.studies.lr.analysis.metrics` gives it.
The LR schedules themselves are inputs, not results: they are the grid table, not a figure.
"""

from __future__ import annotations

from nblib.studies.lr.analysis import best_run, run_smoothing
from nblib.studies.lr.final_loss_plots import caption_final_loss, plot_final_loss
from nblib.studies.lr.loss_plots import (
    STATUS_LEGEND,
    caption_loss_curves,
    plot_loss_curves,
    shared_warmup,
)
from nblib.studies.lr.plots_common import (
    LR_STYLES,
    NEUTRAL,
    PER_RUN,
    SCHEDULE_COLOURS,
    fmt_number,
    label_log_axis,
    run_style,
    schedule_colours,
    short,
)
from nblib.studies.lr.range_plots import caption_range_test, plot_range_test

__all__ = [
    "LR_STYLES",
    "NEUTRAL",
    "PER_RUN",
    "SCHEDULE_COLOURS",
    "STATUS_LEGEND",
    "caption_final_loss",
    "caption_loss_curves",
    "caption_range_test",
    "final_loss_figure",
    "fmt_number",
    "label_log_axis",
    "loss_figure",
    "plot_final_loss",
    "plot_loss_curves",
    "plot_range_test",
    "range_figure",
    "run_browser",
    "run_style",
    "schedule_colours",
    "shared_warmup",
    "short",
]


def loss_figure(loss_curves, runs, config, baseline=None, show=None, smoothing=None, specs=()):
    """:func:`plot_loss_curves` of the study's runs with their detectors, baseline, warmup
    and improvement after warmup."""
    return plot_loss_curves(
        loss_curves,
        runs,
        smoothing or config.smoothing,
        show=show,
        baseline=baseline,
        specs=specs,
        warmup=shared_warmup(config, specs),
        threshold=config.plateau_threshold,
        window=config.plateau_window,
    )


def final_loss_figure(runs, specs=(), ramp=None):
    """:func:`plot_final_loss` and its caption: ``(fig, axes, caption)``."""
    fig, ax = plot_final_loss(runs, specs, ramp)
    return fig, ax, caption_final_loss(runs, specs, ramp)


def range_figure(ramp, runs=None, specs=()):
    """:func:`plot_range_test` with the sweep's best peak LR, and its caption:
    ``(fig, axes, caption)``; ``(None, None, None)`` when no range test ran."""
    if ramp is None:
        return None, None, None
    spec_of = {s["run"]: s for s in specs}
    best = None if runs is None else best_run(runs)
    best_lr = spec_of[best]["lr"] if best in spec_of else None
    colour = None
    if best_lr is not None:
        colour = schedule_colours(s["schedule"] for s in specs)[spec_of[best]["schedule"]]
    peak_lrs = sorted({s["lr"] for s in specs})
    fig, ax = plot_range_test(ramp, best_lr, colour, peak_lrs)
    return fig, ax, caption_range_test(ramp, best_lr)


def run_browser(loss_curves, runs, config, baseline=None, specs=()):
    """ipywidgets (``interactive=True``): toggle runs and change the smoothing."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(loss_curves["run"]))
    # The curves smooth as the analysis does, over at most a tenth of a run's points, so
    # the slider stops at the widest window any run can use: every position redraws.
    widest = run_smoothing(10**9, int(loss_curves.groupby("run").size().max()))

    def show(selected, smoothing):
        loss_figure(loss_curves, runs, config, baseline, list(selected), smoothing, specs)
        plt.show()

    return w.interactive(
        show,
        selected=w.SelectMultiple(options=names, value=tuple(names), description="runs", rows=6),
        smoothing=w.IntSlider(
            value=min(config.smoothing, widest),
            min=1,
            max=max(widest, 1),
            description="smoothing",
            disabled=widest == 1,
        ),
    )
