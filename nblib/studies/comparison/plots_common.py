"""What every figure of the LIBERO comparison shares: the suites' display names, the
colour of published baselines and the † of an interrupted run, the smallest text size,
and the horizontal rate bars (with their intervals, printed values and ``metrics_key``
records, see :mod:`nblib.studies.comparison.plots`) that the suite and perturbation
figures are made of."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from nblib.plots import show_number

SUITE_LABELS = {
    "libero_spatial": "Spatial",
    "libero_object": "Object",
    "libero_goal": "Goal",
    "libero_10": "Long (10)",
    "libero_90": "90",
    "average": "Average",
}
#: Colour of published baselines: not runs of this study, so one neutral grey (hatched).
PUBLISHED_COLOUR = "#9E9E9E"
#: Marks a run that did not finish (only its finished episodes count).
INCOMPLETE_MARK = "†"
SMALL = 6  # pt: the smallest text a printed figure may carry (nblib.plots.MIN_FONT_PT)


def suite_label(suite: str) -> str:
    return SUITE_LABELS.get(suite, suite)


def _key(value) -> tuple | None:
    """A ``metrics_key`` cell as a show_number path (None: the number is not in metrics)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return tuple(value)


def _zero_marker(ax, y, x0: float, colour: str) -> None:
    """A 0 % bar has no area: a short thick tick at 0 shows that the rate was measured."""
    ax.plot(
        [x0], [y], marker="D", ms=3.5, mfc=colour, mec="black", mew=0.5, zorder=4, clip_on=False
    )


def _hbar_rows(ax, rows: pd.DataFrame, value_x: float) -> None:
    """Horizontal bars, one per row of ``rows`` (top to bottom): ``rate, ci_low, ci_high,
    colour, hatch, label, text`` and optional ``metrics_key``; whiskers where the interval
    is known, a tick for 0 %, ``text`` printed at ``value_x``."""
    y = np.arange(len(rows))
    for i, row in enumerate(rows.itertuples(index=False)):
        outlined = row.colour == PUBLISHED_COLOUR  # published: hatched outline, no fill
        ax.barh(
            i,
            row.rate,
            0.72,
            color="white" if outlined else row.colour,
            hatch=row.hatch or None,
            edgecolor=PUBLISHED_COLOUR if outlined else ("white" if row.hatch else row.colour),
            linewidth=0.6 if outlined else 0,
        )
        if row.rate == 0:
            _zero_marker(ax, i, 0.0, row.colour)
        if np.isfinite(row.ci_low) and np.isfinite(row.ci_high):
            ax.errorbar(
                row.rate,
                i,
                xerr=[[row.rate - row.ci_low], [row.ci_high - row.rate]],
                fmt="none",
                ecolor="black",
                elinewidth=0.6,
                capsize=1.2,
            )
        ax.text(value_x, i, row.text, va="center", ha="left", fontsize=SMALL)
        key = _key(getattr(row, "metrics_key", None))
        if key is not None:
            show_number(ax, (*key, "success_rate"), row.rate)
            if np.isfinite(row.ci_low):
                show_number(ax, (*key, "ci_low"), row.ci_low)
                show_number(ax, (*key, "ci_high"), row.ci_high)
    ax.set_yticks(y, list(rows["label"]), fontsize=SMALL)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="y", visible=False)


def _rate_axis(ax, with_label: bool) -> float:
    """x from 0 to 100 % with room right of 100 for the printed values; returns where the
    values are printed."""
    ax.set_xlim(0, 150)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.spines["bottom"].set_bounds(0, 100)
    if with_label:
        ax.set_xlabel("success rate (%)")
    return 104.0


def _short(name: str, width: int) -> str:
    return textwrap.shorten(str(name), width, placeholder="…") if len(name) > width else name
