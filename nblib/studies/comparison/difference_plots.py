"""The LIBERO comparison's paired differences: a forest plot of each run minus its
reference per suite and overall, intervals widened for the multiple comparisons and
markers filled where the corrected test rejects; with its caption."""

from __future__ import annotations

import pandas as pd

from nblib.plots import DOUBLE_COLUMN_IN, MAX_HEIGHT_IN, new_figure, show_number
from nblib.studies.comparison.plots_common import SMALL, _key, _short, suite_label


def plot_differences(table: pd.DataFrame, colours: dict[str, str], alpha: float = 0.05):
    """Forest plot: each shown pair's difference, run minus reference (percentage points),
    per suite and overall, with the bootstrap interval widened for the multiple
    comparisons (``ci_low_adjusted``/``ci_high_adjusted`` at ``confidence_adjusted``); a
    filled marker where the corrected test rejects (``significant``), open where it does
    not, a diamond where the widened interval and the corrected test still disagree; the
    difference, interval and corrected p printed at the right.
    ``table``: ``run, reference, scope, diff, ci_low_adjusted, ci_high_adjusted,
    confidence_adjusted, p_adjusted, significant, comparisons``, optionally
    ``metrics_key``."""
    rows = list(table.itertuples(index=False))
    references = list(dict.fromkeys(table["reference"]))
    fig, ax = new_figure(width=DOUBLE_COLUMN_IN, height=min(1.0 + 0.15 * len(rows), MAX_HEIGHT_IN))
    texts = []
    disagree = False
    for y, row in enumerate(rows):
        colour = colours[row.run]
        low, high = row.ci_low_adjusted, row.ci_high_adjusted
        excludes = low > 0 or high < 0
        odd = bool(excludes) != bool(row.significant)
        disagree |= odd
        ax.plot([low, high], [y, y], color=colour, lw=1.0)
        ax.plot(
            row.diff,
            y,
            "D" if odd else "o",
            color=colour,
            mfc=colour if row.significant else "white",
            mec="black" if odd else colour,
            ms=4,
        )
        p = "n/a" if pd.isna(row.p_adjusted) else f"{row.p_adjusted:.2g}"
        texts.append(f"{row.diff:+.1f} [{low:+.1f}, {high:+.1f}]  p = {p}".replace("-", "−"))
        key = _key(getattr(row, "metrics_key", None))
        if key is not None:
            show_number(ax, (*key, "diff"), row.diff)
            show_number(ax, (*key, "ci_low_adjusted"), low)
            show_number(ax, (*key, "ci_high_adjusted"), high)
            if not pd.isna(row.p_adjusted):
                show_number(ax, (*key, "p_adjusted"), row.p_adjusted)
    ax.axvline(0, color="black", lw=0.6)
    if len(references) == 1:
        labels = [f"{_short(r.run, 30)} · {suite_label(r.scope)}" for r in rows]
        ax.set_title(f"against {references[0]}", loc="left", fontsize=7)
    else:
        labels = [
            f"{_short(r.run, 26)} − {_short(r.reference, 26)} · {suite_label(r.scope)}"
            for r in rows
        ]
    ax.set_yticks(range(len(rows)), labels, fontsize=SMALL)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("difference, run − reference (pp)")
    ax.set_xlim(-105, 105)
    # the numbers as right-hand tick labels, so the layout makes room for them
    right = ax.secondary_yaxis("right")
    right.set_yticks(range(len(rows)), texts, fontsize=SMALL)
    right.tick_params(length=0)
    ax.set_title("diff [interval] (pp), corrected p", fontsize=SMALL, loc="right")
    confidence = float(table["confidence_adjusted"].iloc[0]) if len(table) else 0.95
    m = int(table["comparisons"].iloc[0]) if len(table) else 1
    _difference_legend(ax, alpha, confidence, m, disagree)
    return fig, ax


def _difference_legend(ax, alpha, confidence, m, disagree) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], ls="", marker="o", color="black", ms=4, label=f"corrected p < {alpha:g}"),
        Line2D([], [], ls="", marker="o", mfc="white", color="black", ms=4, label="not"),
        Line2D(
            [],
            [],
            color="black",
            lw=1,
            label=f"{100 * confidence:.2f} % interval (Bonferroni over {m} comparisons)",
        ),
    ]
    if disagree:
        handles.append(
            Line2D([], [], ls="", marker="D", mfc="white", mec="black", ms=4, label="disagree")
        )
    ax.legend(
        handles=handles,
        fontsize=SMALL,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0 + 0.12 / max(ax.figure.get_size_inches()[1], 1)),
        ncol=len(handles),
        frameon=False,
        handletextpad=0.3,
        columnspacing=0.8,
    )


def caption_differences(table: pd.DataFrame, correction: str, hidden: int = 0) -> str:
    """Caption naming the largest corrected difference shown and how many differ."""
    shown = len(table)
    significant = int(table["significant"].sum()) if shown else 0
    lead = (
        "Paired differences of task-averaged success rates (run − reference, pp), per suite "
        "and overall, with intervals at the Bonferroni level of the comparisons (paired "
        "bootstrap, or Newcombe's score interval where the bootstrap collapses); "
        f"filled: the {correction}-corrected Cochran–Mantel–Haenszel test rejects "
        f"({significant} of {shown} shown"
        + (f"; {hidden} other pairs in the tables" if hidden else "")
        + ")"
    )
    if shown:
        top = table.loc[table["diff"].abs().idxmax()]
        lead += (
            f"; largest: {top['run']} − {top['reference']} ({suite_label(top['scope'])}) "
            f"{top['diff']:+.1f} pp [{top['ci_low_adjusted']:+.1f}, "
            f"{top['ci_high_adjusted']:+.1f}]"
        )
    return lead + "."
