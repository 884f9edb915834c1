"""Figures of the doctor's policy checks (notebook 06): the policy's normalisation
statistics over the data's per dimension, and its chunks executed at several replans.

The figure contract of :mod:`nblib.studies.doctor.plots` (``(None, None)`` when there is
nothing to draw).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from nblib.plots import DOUBLE_COLUMN_IN, color_for, new_figure, show_number

MISMATCH = "#D55E00"
REFERENCE = "#888888"
DATA = "#009E73"  # the demonstrations' step changes
POLICY = "#4477AA"  # the policy under evaluation
FLOOR = 1e-8  # log axes: smaller errors are drawn at this floor
NOISE = 1e-5  # errors below this are float noise (float32 statistics read back)


def _plain_log(ax) -> None:
    """Log y ticks at 1, 2, 5 x 10^k labelled as plain numbers (0.02, not 2x10^-2)."""
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _path(result, *keys) -> tuple[str, ...]:
    return ("checks", result.check, "evidence", *(str(k) for k in keys))


def _number(ax, result, keys, value):
    """``value`` recorded as shown when metrics.json can hold it (finite)."""
    if value is None or not math.isfinite(value):
        return value
    return show_number(ax, _path(result, *keys), value)


# ----------------------------------------------------------------------- normalization


def figure_normalization(result):
    """Top: per dimension, the policy's std over the data's (log; 1 = equal). Bottom: the
    largest error its statistics make, in data scales (log), against the threshold.
    Dimensions above the threshold or with NaN/Inf statistics are drawn in vermillion."""
    ev = result.evidence
    if result.status == "skipped" or "actions" not in ev:
        return None, None
    fig, axes = new_figure(
        ncols=2, nrows=2, width=DOUBLE_COLUMN_IN, height=3.6, sharex="col", squeeze=False
    )
    threshold = show_number(fig, _path(result, "threshold"), ev["threshold"])
    for col, kind in enumerate(("actions", "state")):
        part = ev[kind]
        top, bottom = axes[0, col], axes[1, col]
        names, x = part["names"], np.arange(len(part["names"]))
        bad_stats = {dim for _, dim in part["nonfinite"]}
        if part["width_problem"]:
            for ax in (top, bottom):
                ax.text(0.5, 0.5, f"not compared:\n{part['width_problem']}", ha="center",
                        va="center", transform=ax.transAxes, fontsize=7, color=MISMATCH)  # fmt: skip
        for i, dim in enumerate(names):
            entry = part["dims"][dim]
            bad = dim in bad_stats or entry.get("error", 0.0) > threshold
            color = MISMATCH if bad else _dim_color(dim)
            ratio = entry.get("std_ratio")
            if ratio is not None and math.isfinite(ratio):
                _number(top, result, (kind, "dims", dim, "std_ratio"), ratio)
                top.scatter(i, ratio, s=22, color=color, zorder=3,
                            marker="D" if bad else "o")  # fmt: skip
            error = entry.get("error")
            if error is not None and math.isfinite(error):
                _number(bottom, result, (kind, "dims", dim, "error"), error)
                bottom.vlines(i, FLOOR, max(error, FLOOR), color=color, lw=1.0)
                bottom.scatter(i, max(error, FLOOR), s=22, color=color, zorder=3,
                               marker="D" if bad else "o")  # fmt: skip
            if dim in bad_stats or (error is not None and not math.isfinite(error)):
                for ax, height in ((top, 0.75), (bottom, 0.45)):
                    ax.annotate("NaN/Inf", (i, height), xycoords=("data", "axes fraction"),
                                ha="center", fontsize=6.5, color=MISMATCH)  # fmt: skip
        ratios = [e["std_ratio"] for e in part["dims"].values() if _finite(e.get("std_ratio"))]
        top.set_yscale("log")
        top.set_ylim(min(ratios + [0.5]) / 1.5, max(ratios + [2.0]) * 1.5)
        _plain_log(top)
        top.axhline(1.0, color=REFERENCE, lw=0.8, ls=":")
        top.set_title(f"{kind}: policy std / data std")
        errors = [e["error"] for e in part["dims"].values() if _finite(e.get("error"))]
        bottom.set_yscale("log")
        bottom.set_ylim(FLOOR / 3, max(errors + [10.0]) * 3)
        bottom.axhspan(FLOOR / 3, NOISE, color=REFERENCE, alpha=0.12, lw=0)
        bottom.text(-0.45, NOISE / 1.3, "float noise", ha="left", va="top",
                    fontsize=6.5, color="#555555")  # fmt: skip
        bottom.axhline(threshold, color=MISMATCH, lw=0.8, ls="--")
        bottom.text(len(names) - 0.5, threshold * 1.4, f"mismatch above {threshold:g}",
                    ha="right", va="bottom", fontsize=6.5, color=MISMATCH)  # fmt: skip
        bottom.set_xlim(-0.5, len(names) - 0.5)
        bottom.set_title(f"{kind}: error of the policy's statistics")
        bottom.set_xticks(x, names, rotation=30, ha="right")
    axes[0, 0].set_ylabel("ratio")
    axes[1, 0].set_ylabel("data scales")
    return fig, axes


def _dim_color(name: str) -> str:
    """The action-dimension colour of a state dimension that is one (eef_pos[0] is x,
    gripper_opening the gripper), so a figure's x is always the same colour."""
    base, _, index = name.partition("[")
    if "pos" in base and index[:1] in "012" and index[:1]:
        return color_for("xyz"[int(index[0])], "dim")
    return color_for("gripper" if "gripper" in name else name, "dim")


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def caption_normalization(result) -> str:
    ev = result.evidence
    return (
        f"Normalisation statistics the policy carries ({ev['source']}) against the data's "
        f"over {ev['reference']}, per action and state dimension. Top: std ratio (1 = "
        "equal). Bottom: the largest error the policy's statistics make on data within "
        f"±2 std (mean/std) or its bounds, in data scales; above {ev['threshold']:g} "
        f"(dashed) is a mismatch, drawn in vermillion. Largest: {ev['max_error']:.2g}; "
        f"{result.status}."
    )


# --------------------------------------------------------------------- chunk_execution


def figure_chunk_execution(result):
    """(a) Success per replan. (b) Mean boundary jump per replan against the demos'
    step-change band (interquartile, shaded; mean, solid) and the flag line (dashed). (c)
    The first episode's executed actions at the largest replan run, with its chunk
    boundaries."""
    ev = result.evidence
    if result.status == "skipped" or not ev.get("replans"):
        return None, None
    fig, axes = new_figure(ncols=3, width=DOUBLE_COLUMN_IN, height=2.5)
    success, jumps, trace = axes
    rows = ev["replans"]
    keys = list(rows)
    beyond = [str(v) for v in ev["beyond_chunk"]]
    x = np.arange(len(keys) + len(beyond))
    for i, key in enumerate(keys):
        row = rows[key]
        k = _number(success, result, ("replans", key, "successes"), row["successes"])
        n = _number(success, result, ("replans", key, "episodes"), row["episodes"])
        success.bar(i, k / n if n else 0.0, width=0.6, color=POLICY)
        success.text(i, k / n + 0.03 if n else 0.03, f"{k}/{n}", ha="center", fontsize=7)
    for i in range(len(keys), len(keys) + len(beyond)):  # run as the chunk's length
        success.text(i, 0.5, f"beyond the\nchunk: runs\nas {ev['chunk_length']}", ha="center",
                     va="center", fontsize=6.5, color=MISMATCH)  # fmt: skip
    success.set_xticks(x, keys + beyond)
    success.set_ylim(0, 1.15)
    success.set_xlabel("replan (actions per chunk)")
    success.set_ylabel("success rate")
    success.set_title("(a) closed-loop success")

    band = ev["data_band"]
    jumps.axhspan(band[0], band[1], color=DATA, alpha=0.18, lw=0, label="demos: IQR")
    data_step = _number(jumps, result, ("data_step",), ev["data_step"])
    jumps.axhline(data_step, color=DATA, lw=1.0, label="demos: mean")
    limit = _number(jumps, result, ("jump_limit",), ev["jump_limit"])
    jumps.axhline(limit, color=MISMATCH, lw=0.8, ls="--",
                  label=f"{ev['factor']:g}x reference")  # fmt: skip
    values = [_number(jumps, result, ("replans", k, "boundary_jump"), rows[k]["boundary_jump"])
              for k in keys]  # fmt: skip
    jumps.plot(x[: len(keys)], values, color=POLICY, lw=1.0, zorder=2)
    for i, key in enumerate(keys):
        bad = int(key) in ev["flagged"]
        jumps.scatter(i, values[i], s=24, zorder=3, marker="D" if bad else "o",
                      color=MISMATCH if bad else POLICY)  # fmt: skip
    jumps.set_yscale("log")
    low = min([band[0], data_step] + [v for v in values if v > 0]) / 2
    # headroom above the highest line: the legend sits there, clear of the data (log axis)
    jumps.set_ylim(low, max(values + [limit]) * 40)
    _plain_log(jumps)
    jumps.set_xticks(x, keys + beyond)
    jumps.set_xlabel("replan (actions per chunk)")
    jumps.set_ylabel("mean |Δ action| at a boundary")
    jumps.set_title("(b) jump at chunk boundaries")
    jumps.legend(loc="upper left", fontsize=6.5)

    shown = _trace_replan(result)
    if shown is not None:
        actions, starts = result.artifacts["traces"][shown]
        names = ev.get("action_names") or [f"a[{i}]" for i in range(actions.shape[1])]
        for d in range(actions.shape[1]):
            name = names[d] if d < len(names) else f"a[{d}]"
            trace.plot(actions[:, d], lw=0.9, color=color_for(name, "dim"), label=name)
        trace.set_title(f"(c) executed, replan {shown}")
        # a band above the traces for the legend, one row when it fits
        low, high = float(np.nanmin(actions)), float(np.nanmax(actions))
        span = high - low or 1.0
        rows = 1 if actions.shape[1] <= 4 else 2
        bottom, top = low - 0.05 * span, high + (0.3 + 0.15 * rows) * span
        trace.set_ylim(bottom, top)
        # chunk boundaries span the traces only, not the legend's band
        reach = (high + 0.05 * span - bottom) / (top - bottom)
        for t in starts:
            trace.axvline(t - 0.5, ymax=reach, color=REFERENCE, lw=0.4, ls=":")
        ncol = -(-actions.shape[1] // rows)
        trace.legend(loc="upper center", fontsize=6, ncol=ncol, columnspacing=0.8,
                     handlelength=1.2)  # fmt: skip
    trace.set_xlabel("step")
    trace.set_ylabel("action")
    return fig, axes


def _trace_replan(result):
    """The largest replan whose first episode's trace was kept."""
    traces = result.artifacts.get("traces") or {}
    usable = [r for r, (actions, _) in traces.items() if len(actions) > 1]
    return max(usable) if usable else None


def caption_chunk_execution(result) -> str:
    ev = result.evidence
    rows = ev["replans"]
    shown = _trace_replan(result)
    return (
        f"Chunk execution on {', '.join(ev['tasks'])}: the policy's chunks of "
        f"{ev['chunk_length']} actions executed {', '.join(rows)} at a time. (a) Success "
        "(successes / episodes). (b) Mean action change at chunk boundaries (diamonds: "
        f"flagged) against the demos' one-step changes (green) and {ev['factor']:g}x the "
        f"reference step {ev['reference_step']:.3f} (dashed). (c) The executed actions of "
        f"one episode at replan {shown}, dotted lines at chunk boundaries. Supported replan: "
        f"{ev['supported_replan']}; {result.status}."
    )
