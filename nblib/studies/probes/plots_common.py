"""What every figure of the conditioning probes shares: the colours (one neutral for
measured bars, grey for inputs that are not judged, one colour for thresholds and
failures), reading one stage's number from a table, and labelled log-axis ticks."""

from __future__ import annotations

import numpy as np
import pandas as pd

NEUTRAL = "#4d4d4d"  # bars of one series: no colour meaning beyond "measured"
GREY = "#bbbbbb"  # inputs, shown but not judged
THRESHOLD = "#D55E00"  # every threshold line of this notebook's figures
FAIL = "#D55E00"


def _value(table: pd.DataFrame | None, stage: str, column: str) -> float | None:
    if table is None or column not in table.columns or stage not in table.index:
        return None
    value = pd.to_numeric(table.loc[stage, column], errors="coerce")
    return float(value) if np.isfinite(value) else None


def _log_ticks(ax, axis: str = "y") -> None:
    """Labelled ticks at every decade and at 2 and 5 times it, so a log axis reads."""
    from matplotlib.ticker import LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(base=10, subs=(1.0,), numticks=12))
    target.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0), numticks=12))
    target.set_minor_formatter(NullFormatter())
