"""The LIBERO comparison's performance profiles (Agarwal et al. 2021): per run, the
fraction of its tasks above each success threshold with a bootstrap band; with its
caption."""

from __future__ import annotations

import pandas as pd

from nblib.plots import DOUBLE_COLUMN_IN, new_figure
from nblib.studies.comparison.plots_common import SMALL


def plot_performance_profiles(
    table: pd.DataFrame,
    colours: dict[str, str],
    xlabel: str = r"threshold $\tau$",
    ylabel: str = r"fraction of scores $> \tau$",
    counts: dict[str, int] | None = None,
):
    """Performance profiles (Agarwal et al. 2021): per method, the fraction of scores above
    each threshold tau as a line, its bootstrap band shaded; the legend (right of the
    axes) names each method with its number of scores (``counts``). ``table``: the columns
    of :func:`nblib.metrics.success.performance_profiles` (``method, tau, profile, ci_low,
    ci_high``; tau in the scores' unit, the rest fractions in [0, 1]). A curve that stays
    higher for longer is better at every level of performance, not only on average."""
    fig, ax = new_figure(width=DOUBLE_COLUMN_IN, height=2.6)
    methods = list(dict.fromkeys(table["method"]))
    styles = ["-", "--", ":", "-."]
    for i, (method, part) in enumerate(table.groupby("method", sort=False)):
        tau = part["tau"].to_numpy(float)
        label = method if not counts else f"{method} ({counts.get(method, '?')} tasks)"
        # runs with the same profile would hide each other: the line style tells them apart
        ax.plot(
            tau,
            part["profile"].to_numpy(float),
            color=colours[method],
            lw=1.0,
            ls=styles[(i // 8) % len(styles)] if len(methods) > 8 else "-",
            label=label,
            drawstyle="steps-post",
        )
        ax.fill_between(
            tau,
            part["ci_low"].to_numpy(float),
            part["ci_high"].to_numpy(float),
            color=colours[method],
            alpha=0.12,
            linewidth=0,
            step="post",
        )
    ax.set_xlim(table["tau"].min(), table["tau"].max())
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=SMALL, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig, ax


def caption_performance_profiles(table: pd.DataFrame) -> str:
    at_half = (
        table[table["tau"] <= 0.5].groupby("method", sort=False)["profile"].last()
        if len(table)
        else pd.Series(dtype=float)
    )
    best = at_half.idxmax() if len(at_half) else None
    tail = (
        f"; at τ = 0.5, {best} has {100 * at_half.max():.0f} % of its tasks above" if best else ""
    )
    return (
        "Performance profiles: per run, the fraction of its tasks whose success rate exceeds "
        "τ, with a band from resampling each task's episodes; higher for longer is better"
        + tail
        + "."
    )
