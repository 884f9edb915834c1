"""Shared drawing of notebook 03's figures (:mod:`nblib.studies.lr.plots` lists them): one
colour per schedule and one line style per peak LR in every figure, the neutral colour of
reference lines, number and log-axis labels, the short run labels, and the metrics.json
path prefix of per-run numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from nblib.plots import PALETTES, colors_for
from nblib.studies.lr.analysis import line_names

# Peak LRs in increasing order get these line styles (dotted: lowest, solid: highest of
# three); more LRs cycle through dash patterns.
LR_STYLES = (":", "--", "-", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
# One "run" colour per schedule in every figure of notebook 03, whatever the grid holds
# (hashed colours gave cosine_with_min_lr black, the colour of the line-style legend).
_RUN = dict(
    zip(("blue", "red", "green", "yellow", "cyan", "purple"), PALETTES["run"], strict=False)
)
SCHEDULE_COLOURS = {
    "cosine": _RUN["blue"],
    "cosine_with_min_lr": _RUN["red"],
    "linear": _RUN["green"],
    "warmup_stable_decay": _RUN["purple"],
    "constant": _RUN["yellow"],
    "cosine_with_restarts": _RUN["cyan"],
}
NEUTRAL = "0.35"  # reference lines that are not runs (baseline, threshold, suggestions)
PER_RUN = "per_run"  # metrics.json's per-run numbers (analysis.metrics)


# ----------------------------------------------------------------------------- helpers


def fmt_number(value: float) -> str:
    """A tick or legend number: plain between 0.01 and 1000 ("0.05"), else short
    scientific ("1e-4", "3e-4")."""
    if value == 0 or 0.01 <= abs(value) < 1000:
        return f"{value:g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def label_log_axis(axis, lo: float, hi: float) -> None:
    """Labelled ticks on a log axis spanning ``lo``..``hi``: decades, else 1-2-5, 1-2-3-5
    or every integer multiple per decade, the coarsest that labels at least three ticks;
    plain numbers, no minor labels."""
    lo, hi = max(float(lo), 1e-300), max(float(hi), 1e-300)
    first, last = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
    # the coarsest ladder that still labels three ticks (a narrow range needs 1-2-3-5)
    for subs in ((1,), (1, 2, 5), (1, 2, 3, 5), (1, 2, 3, 5, 7), tuple(range(1, 10))):
        ticks = [m * 10.0**e for e in range(first, last + 1) for m in subs]
        ticks = [t for t in ticks if lo <= t <= hi]
        if len(ticks) >= 3:
            break
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt_number(v)))
    axis.set_minor_formatter(NullFormatter())


def schedule_colours(schedules) -> dict[str, str]:
    """Schedule -> its colour (:data:`SCHEDULE_COLOURS`; a schedule it does not know gets
    a "run" colour of its own)."""
    names = list(dict.fromkeys(schedules))
    other = colors_for([n for n in names if n not in SCHEDULE_COLOURS], "run")
    return {n: SCHEDULE_COLOURS.get(n, other.get(n)) for n in names}


def short(name: str, width: int = 26) -> str:
    """``name`` cut in the middle to ``width`` characters (the end of a W&B run name, its
    timestamp, is what tells runs apart)."""
    if len(name) <= width:
        return name
    keep = width - 1
    return name[: keep // 2] + "…" + name[-(keep - keep // 2) :]


def run_style(names: list[str], specs) -> dict[str, dict]:
    """Per run: ``color`` (one per schedule, kind "run"; imported logs: one per run),
    ``ls`` (line style per peak LR), ``label`` (short row label) and the legend ``group``
    / ``setting`` it belongs to."""
    spec_of = {s["run"]: s for s in specs}
    if not all(n in spec_of for n in names):  # imported logs: the run is the identity
        colours = colors_for(names, "run")
        return {
            n: {"color": colours[n], "ls": "-" if i < 8 else "--", "label": short(n),
                "group": n, "setting": None}
            for i, n in enumerate(names)
        }  # fmt: skip
    lines = line_names([spec_of[n] for n in names])
    colours = schedule_colours(spec_of[n]["schedule"] for n in names)
    lrs = sorted({spec_of[n]["lr"] for n in names})
    seeded = len({spec_of[n]["seed"] for n in names}) > 1
    styles = {}
    for n in names:
        spec = spec_of[n]
        label = f"{lines[n]} {fmt_number(spec['lr'])}" + (f" s{spec['seed']}" if seeded else "")
        styles[n] = {
            "color": colours[spec["schedule"]],
            "ls": LR_STYLES[lrs.index(spec["lr"]) % len(LR_STYLES)],
            "label": short(label, 40),
            "group": spec["schedule"],
            "setting": f"peak LR {fmt_number(spec['lr'])}",
        }
    return styles


def _number(row, key) -> float | None:
    value = row[key]
    return None if value is None or pd.isna(value) else float(value)
