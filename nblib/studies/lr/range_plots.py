"""Notebook 03's ``lr_range_test`` figure and its caption: the range test's loss against
LR with its suggestions, the sweep's best peak LR and the peak LRs swept."""

from __future__ import annotations

import numpy as np

from nblib.metrics.curves import smooth
from nblib.plots import SINGLE_COLUMN_IN, new_figure, show_number
from nblib.studies.lr.plots_common import NEUTRAL, fmt_number, label_log_axis


def plot_range_test(result: dict, best_lr: float | None = None, best_colour: str | None = None,
                    peak_lrs=()):  # fmt: skip
    """Loss against LR (log-log) of the range test: raw (faint) and the smoothed loss the
    suggestions read (each mean at its window's geometric-mean LR); the suggested peaks
    (steepest descent, a tenth of the minimum) dashed, the minimum dotted, the sweep's best
    peak LR solid in its schedule's colour, the swept peak LRs as ticks on the x axis."""
    fig, ax = new_figure(width=SINGLE_COLUMN_IN, height=3.2)
    lrs = np.asarray(result["lr"], dtype=float)
    loss = np.asarray(result["loss"], dtype=float)
    k = int(result.get("smoothing") or 1)
    ax.plot(lrs, loss, color="k", alpha=0.25, lw=0.5)
    if len(lrs) >= k:
        centre = np.exp(smooth(np.log(lrs), k))
        ax.plot(centre, smooth(loss, k), color="k", lw=1.1, label=f"loss (mean of {k} points)")
    marks = (
        ("steepest", "suggested: steepest descent,", "--", "#0072B2"),
        ("min_fraction", "suggested: a tenth of the minimum,", "--", "#D55E00"),
        ("minimum", "minimum of the smoothed loss,", ":", NEUTRAL),
    )
    for key, label, ls, colour in marks:
        value = result.get(key)
        if value is not None and np.isfinite(value):
            show_number(fig, ("range_test", key), value)
            ax.axvline(value, color=colour, ls=ls, lw=0.9, label=f"{label} {fmt_number(value)}")
    if best_lr is not None:
        show_number(fig, "best_peak_lr", best_lr)
        ax.axvline(best_lr, color=best_colour or "k", lw=1.4,
                   label=f"sweep's best peak LR, {fmt_number(best_lr)}")  # fmt: skip
    if len(peak_lrs):
        ax.plot(peak_lrs, [0.0] * len(peak_lrs), "^", color="k", ms=4, clip_on=False,
                transform=ax.get_xaxis_transform(), label="peak LRs swept")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    finite = loss[np.isfinite(loss) & (loss > 0)]
    if len(finite):
        label_log_axis(ax.yaxis, finite.min(), finite.max())
    if len(lrs):
        label_log_axis(ax.xaxis, lrs.min(), lrs.max())
    ax.set_xlabel("learning rate (exponential ramp)")
    ax.set_ylabel("training loss")
    # above the axes: inside, the legend hid the flat start of the curve
    fig.legend(fontsize=6, loc="outside upper center", ncol=1, handlelength=2.4)
    return fig, ax


def caption_range_test(result: dict, best_lr: float | None = None) -> str:
    """The caption of ``lr_range_test``: how to read it, its suggestions and how far the
    sweep's best peak LR is from them."""
    k = int(result.get("smoothing") or 1)
    text = (
        "LR range test: training loss while the LR grows exponentially (faint: raw; solid: "
        f"mean of {k} points, the curve the suggestions read); dashed: the suggested peak LRs"
    )
    s, f = result.get("steepest"), result.get("min_fraction")
    parts = []
    if s:
        parts.append(f"steepest descent {fmt_number(s)}")
    if f:
        parts.append(f"a tenth of the minimum {fmt_number(f)}")
    text += (" (" + ", ".join(parts) + ")") if parts else " (none: the loss never fell)"
    if best_lr is not None:
        text += f"; solid: the sweep's best peak LR {fmt_number(best_lr)}"
        if s:
            text += f", {best_lr / s:.2g}x the steepest-descent suggestion"
    return text + "."
