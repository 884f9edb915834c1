"""Figures of the LIBERO comparison (``05_libero_comparison``): grouped success-rate bars
with interval whiskers, the per-task heatmap, the perturbation breakdown, the paired
differences and performance profiles.

Each function takes tables (never reads a file) and a ``colours`` mapping method → colour,
built once per study so a method has one colour in every figure; it returns ``(fig, axes)``.
Rates are percentages.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from nblib.plots import DOUBLE_COLUMN_IN, SINGLE_COLUMN_IN, new_figure

SUITE_LABELS = {
    "libero_spatial": "Spatial",
    "libero_object": "Object",
    "libero_goal": "Goal",
    "libero_10": "Long (10)",
    "libero_90": "90",
    "average": "Average",
}


def suite_label(suite: str) -> str:
    return SUITE_LABELS.get(suite, suite)


def plot_suite_bars(table: pd.DataFrame, colours: dict[str, str], title: str | None = None):
    """Grouped bars: one group per suite, one bar per method, whiskers from ``ci_low`` to
    ``ci_high``. ``table``: columns ``method, suite, success_rate, ci_low, ci_high`` and
    optionally ``kind`` (``run`` or ``published``; published bars are hatched)."""
    suites = list(dict.fromkeys(table["suite"]))
    methods = list(dict.fromkeys(table["method"]))
    # Each suite holds only the methods that have it, side by side and centred, so a suite
    # that two runs evaluated is not padded with empty slots for every other method.
    present = {
        s: [m for m in methods if ((table.suite == s) & (table.method == m)).any()] for s in suites
    }
    width = 0.8 / max(max(len(v) for v in present.values()), 1)
    fig, ax = new_figure(width=DOUBLE_COLUMN_IN, height=3.0)
    x = np.arange(len(suites))
    for method in methods:
        part = table[table["method"] == method].set_index("suite").reindex(suites)
        rate = part["success_rate"].to_numpy(float)
        low = part["ci_low"].to_numpy(float)
        high = part["ci_high"].to_numpy(float)
        published = "kind" in part and (part["kind"] == "published").any()
        offset = np.array(
            [
                x[j] + width * (present[s].index(method) - (len(present[s]) - 1) / 2)
                if method in present[s]
                else np.nan
                for j, s in enumerate(suites)
            ]
        )
        ax.bar(
            offset,
            rate,
            width * 0.92,
            color=colours[method],
            label=method,
            hatch="///" if published else None,
            edgecolor="white" if published else None,
            linewidth=0,
        )
        _whiskers(ax, offset, rate, low, high)
    ax.set_xticks(x, [suite_label(s) for s in suites])
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, 105)
    # below the axes: inside, it would hide the bars it names
    ax.legend(
        fontsize=5,
        ncol=min(4, len(methods)),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        frameon=False,
    )
    if title:
        ax.set_title(title)
    return fig, ax


def _whiskers(ax, x, rate, low, high) -> None:
    """Interval whiskers from ``low`` to ``high`` at the bars ``x``; none where unknown."""
    has = np.isfinite(low) & np.isfinite(high) & np.isfinite(rate)
    ax.errorbar(
        x[has],
        rate[has],
        yerr=[rate[has] - low[has], high[has] - rate[has]],
        fmt="none",
        ecolor="black",
        elinewidth=0.6,
        capsize=1.2,
    )


def plot_task_heatmap(matrix: pd.DataFrame, max_label: int = 48):
    """Success rate (%) per task (rows, grouped by suite) and run (columns), annotated;
    grey where a run did not evaluate a task."""
    values = matrix.to_numpy(dtype=float)
    rows, cols = values.shape
    height = min(1.0 + 0.16 * rows, 9.0)
    fig, ax = new_figure(width=DOUBLE_COLUMN_IN, height=height)
    masked = np.ma.masked_invalid(values)
    cmap = _heatmap_cmap()
    image = ax.imshow(masked, aspect="auto", cmap=cmap, vmin=0, vmax=100)
    for r in range(rows):
        for c in range(cols):
            if np.isfinite(values[r, c]):
                ax.text(
                    c,
                    r,
                    f"{values[r, c]:.0f}",
                    ha="center",
                    va="center",
                    fontsize=4.5,
                    color="white" if values[r, c] < 55 else "black",
                )
    labels = [
        f"{suite_label(suite)} · {textwrap.shorten(task, max_label, placeholder='…')}"
        for suite, task in matrix.index
    ]
    ax.set_yticks(range(rows), labels, fontsize=4.5)
    ax.set_xticks(range(cols), list(matrix.columns), rotation=20, ha="right", fontsize=5)
    ax.grid(False)
    colourbar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    colourbar.set_label("success rate (%)")
    return fig, ax


def _heatmap_cmap():
    import matplotlib as mpl

    return mpl.colormaps["viridis"].with_extremes(bad="#dddddd")


def plot_perturbations(table: pd.DataFrame, totals: pd.DataFrame, colours: dict[str, str]):
    """Left: success rate per perturbation category and method (bars, whiskers where
    ``ci_low``/``ci_high`` are known). Right: per method the plain mean over categories and
    the variant-weighted total, side by side. ``table``: ``method, perturbation,
    success_rate[, ci_low, ci_high]``; ``totals``: ``method, mean_plain, total_weighted``."""
    categories = list(dict.fromkeys(table["perturbation"]))
    methods = list(dict.fromkeys(table["method"]))
    fig, (ax, ax_total) = new_figure(
        ncols=2, width=DOUBLE_COLUMN_IN, height=2.6, gridspec_kw={"width_ratios": [3, 1]}
    )
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(categories))
    for i, method in enumerate(methods):
        part = table[table["method"] == method].set_index("perturbation").reindex(categories)
        rate = part["success_rate"].to_numpy(float)
        offset = x - 0.4 + width * (i + 0.5)
        ax.bar(offset, rate, width * 0.92, color=colours[method], label=method, linewidth=0)
        if "ci_low" in part:
            _whiskers(
                ax, offset, rate, part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float)
            )
    ax.set_xticks(x, categories, rotation=20, ha="right")
    ax.set_ylabel("success rate (%)")
    ax.set_ylim(0, 105)
    ax.legend(
        fontsize=4.5,
        ncol=min(3, len(methods)),
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        frameon=False,
    )
    # Totals: per method a solid bar (variant-weighted, LIBERO-Plus's definition) over a
    # hatched one (plain mean over categories); the method is in the colour and the legend.
    y = np.arange(len(totals))
    method_colours = [colours[m] for m in totals["method"]]
    ax_total.barh(y - 0.2, totals["total_weighted"], 0.38, color=method_colours)
    ax_total.barh(
        y + 0.2, totals["mean_plain"], 0.38, color=method_colours, hatch="///", edgecolor="white"
    )
    ax_total.set_yticks(y, ["" for _ in y])
    ax_total.set_xlabel("total (%)")
    ax_total.set_xlim(0, 100)
    ax_total.invert_yaxis()
    ax_total.set_title("weighted (solid) · plain mean (hatched)", fontsize=5)
    return fig, (ax, ax_total)


def plot_differences(table: pd.DataFrame, colours: dict[str, str]):
    """Forest plot: each pair's difference, run minus reference (percentage points), per
    suite and overall, with its bootstrap interval; filled markers where significant.
    ``table``: ``run, reference, scope, diff, ci_low, ci_high, significant``."""
    rows = list(table.itertuples(index=False))
    fig, ax = new_figure(width=DOUBLE_COLUMN_IN * 0.6, height=0.9 + 0.18 * len(rows))
    for y, row in enumerate(rows):
        colour = colours[row.run]
        ax.plot([row.ci_low, row.ci_high], [y, y], color=colour, lw=1.0)
        ax.plot(
            row.diff,
            y,
            "o",
            color=colour,
            mfc=colour if row.significant else "white",
            ms=4,
        )
    ax.axvline(0, color="black", lw=0.6)
    labels = [f"{r.run} − {r.reference} · {suite_label(r.scope)}" for r in rows]
    ax.set_yticks(range(len(rows)), labels, fontsize=5)
    ax.invert_yaxis()
    ax.set_xlabel("difference, run − reference (pp)")
    return fig, ax


def plot_performance_profiles(
    table: pd.DataFrame,
    colours: dict[str, str],
    xlabel: str = r"threshold $\tau$",
    ylabel: str = r"fraction of scores $> \tau$",
):
    """Performance profiles (Agarwal et al. 2021): per method, the fraction of scores above
    each threshold tau as a line, its bootstrap band shaded. ``table``: the columns of
    :func:`nblib.metrics.success.performance_profiles` (``method, tau, profile, ci_low,
    ci_high``; tau in the scores' unit, the rest fractions in [0, 1]). A curve that stays
    higher for longer is better at every level of performance, not only on average."""
    fig, ax = new_figure(width=SINGLE_COLUMN_IN, height=2.4)
    for method, part in table.groupby("method", sort=False):
        tau = part["tau"].to_numpy(float)
        ax.plot(tau, part["profile"].to_numpy(float), color=colours[method], lw=1.0, label=method)
        ax.fill_between(
            tau,
            part["ci_low"].to_numpy(float),
            part["ci_high"].to_numpy(float),
            color=colours[method],
            alpha=0.2,
            linewidth=0,
        )
    ax.set_xlim(table["tau"].min(), table["tau"].max())
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=5, frameon=False)
    return fig, ax
