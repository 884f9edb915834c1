"""Figures of the LR-schedule study (``03_lr_schedule_study``): the schedules' LR curves, the
loss curves overlaid (raw and smoothed, log scale) with plateau and divergence markers, and
the LR range test with its suggestions.

Each function takes tables and arrays (never reads a file) and returns ``(fig, axes)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib.metrics.curves import smooth
from nblib.plots import DOUBLE_COLUMN_IN, PALETTE, colors_for, new_figure


def plot_lr_curves(preview: pd.DataFrame):
    """LR against step for every run (tidy run, step, lr)."""
    runs = list(dict.fromkeys(preview["run"]))
    colours = colors_for(runs)
    fig, ax = new_figure(width=DOUBLE_COLUMN_IN, height=2.2)
    for run in runs:
        part = preview[preview["run"] == run]
        ax.plot(part["step"], part["lr"], color=colours[run], label=run, lw=1.0)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.legend(fontsize=5, ncol=2, loc="lower center")
    return fig, ax


def plot_loss_curves(
    curves: pd.DataFrame,
    runs: pd.DataFrame | None = None,
    smoothing: int = 20,
    show=None,
    baseline: float | None = None,
):
    """Loss against step for every run (or the ``show`` subset), raw (faint) and smoothed
    (trailing mean of ``smoothing`` points), log scale. With the analysis table ``runs``:
    a dot where a plateau begins, a cross where a run diverged; with ``baseline``: the
    loss of a predictor of the mean action, dashed."""
    names = [r for r in dict.fromkeys(curves["run"]) if show is None or r in show]
    colours = colors_for(names)
    fig, ax = new_figure(width=DOUBLE_COLUMN_IN, height=2.8)
    for run in names:
        part = curves[curves["run"] == run]
        steps, loss = part["step"].to_numpy(), part["loss"].to_numpy(dtype=float)
        colour = colours[run]
        ax.plot(steps, loss, color=colour, alpha=0.25, lw=0.5)
        finite = np.isfinite(loss)
        if finite.any():
            ax.plot(steps[finite], smooth(loss[finite], smoothing), color=colour, lw=1.0, label=run)
        if runs is None or run not in runs.index:
            continue
        row = runs.loc[run]
        if row["plateau_step"] is not None and not pd.isna(row["plateau_step"]):
            at = np.searchsorted(steps[finite], row["plateau_step"])
            at = min(at, finite.sum() - 1)
            y = smooth(loss[finite], smoothing)[at]
            ax.plot(steps[finite][at], y, "o", color=colour, ms=4, mec="k", mew=0.5)
        if row["diverged"]:
            last = loss[finite][-1] if finite.any() else np.nan
            ax.plot(row["divergence_step"], last, "x", color=colour, ms=6, mew=1.5)
    if baseline is not None:
        ax.axhline(baseline, color="0.4", ls="--", lw=0.8, label="mean action (baseline)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=5, ncol=2)
    ax.set_title("o: plateau begins   x: diverged", fontsize=6, loc="right")
    return fig, ax


def plot_range_test(result: dict):
    """Loss against LR (log) of the range test, with the suggested LRs marked."""
    fig, ax = new_figure(width=3.5, height=2.4)
    ax.plot(result["lr"], result["loss"], color=PALETTE[0], lw=0.8)
    marks = (
        ("steepest", "steepest descent", PALETTE[2]),
        ("minimum", "minimum", PALETTE[3]),
        ("min_fraction", "minimum / 10", PALETTE[1]),
    )
    for key, label, colour in marks:
        value = result.get(key)
        if value is not None and np.isfinite(value):
            ax.axvline(value, color=colour, ls="--", lw=0.8, label=f"{label}: {value:.2g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=5)
    return fig, ax


# ----------------------------------------------------------------------------- the study's


def loss_figure(loss_curves, runs, config, baseline=None, show=None, smoothing=None):
    """:func:`plot_loss_curves` of the study's runs with their detectors and baseline."""
    return plot_loss_curves(
        loss_curves, runs, smoothing or config.smoothing, show=show, baseline=baseline
    )


def schedule_figure(preview):
    """:func:`plot_lr_curves` of a live sweep's schedules; None for imported logs."""
    return (None, None) if preview is None else plot_lr_curves(preview)


def range_figure(ramp):
    """:func:`plot_range_test`; None when no range test ran."""
    return (None, None) if ramp is None else plot_range_test(ramp)


def run_browser(loss_curves, runs, config, baseline=None):
    """ipywidgets (``interactive=True``): toggle runs and change the smoothing."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(loss_curves["run"]))

    def show(selected, smoothing):
        loss_figure(loss_curves, runs, config, baseline, show=list(selected), smoothing=smoothing)
        plt.show()

    return w.interactive(
        show,
        selected=w.SelectMultiple(options=names, value=tuple(names), description="runs", rows=6),
        smoothing=w.IntSlider(value=config.smoothing, min=1, max=100, description="smoothing"),
    )
