"""Notebook 03's ``final_loss`` figure and its caption: final loss against peak LR, one
line per schedule, seeds as spread, the verdict's chosen configuration starred and the
range test's steepest-descent LR marked (imported logs: final loss per run)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from nblib.plots import SINGLE_COLUMN_IN, new_figure, show_number
from nblib.studies.lr.analysis import best_run, line_names, lr_key, lr_response
from nblib.studies.lr.plots_common import (
    NEUTRAL,
    PER_RUN,
    _number,
    fmt_number,
    label_log_axis,
    run_style,
    schedule_colours,
    short,
)


def plot_final_loss(runs: pd.DataFrame, specs=(), ramp: dict | None = None):
    """Final smoothed loss against peak LR (log-log), one line per schedule (through the
    mean over seeds, seeds as dots with a min-max bar), the verdict's best run starred,
    diverged points as crosses on the top edge, the range test's steepest-descent LR
    dotted. Imported logs (no grid): the final loss of each run instead."""
    if not specs:
        return _plot_final_loss_by_run(runs)
    response = lr_response(specs, runs)
    # the legend goes above the axes (one row per line and mark): grow with it
    rows = response["line"].nunique() + 3
    fig, ax = new_figure(width=SINGLE_COLUMN_IN, height=min(1.9 + 0.12 * rows, 9.0))
    spec_of = {s["run"]: s for s in specs}
    lines = line_names(specs)
    colours = schedule_colours(s["schedule"] for s in specs)
    # several lines of one schedule (e.g. two warmups) share its colour: dash the others
    dashes, per_schedule = {}, {}
    for line, schedule in zip(response["line"], response["schedule"], strict=True):
        if line not in dashes:
            dashes[line] = ("-", "--", ":", "-.")[per_schedule.get(schedule, 0) % 4]
            per_schedule[schedule] = per_schedule.get(schedule, 0) + 1
    losses = []
    diverged_any = False
    for line, part in response.groupby("line", sort=False):
        colour = colours[part["schedule"].iloc[0]]
        ok = part[part["seeds"] > 0].sort_values("lr")
        for _, row in ok.iterrows():
            show_number(
                fig, ("final_loss_by_peak_lr", line, lr_key(row["lr"]), "mean"), row["mean"]
            )
            if row["seeds"] > 1:
                for key in ("min", "max"):
                    show_number(fig, ("final_loss_by_peak_lr", line, lr_key(row["lr"]), key),
                                row[key])  # fmt: skip
                ax.plot([row["lr"]] * 2, [row["min"], row["max"]], color=colour, lw=1.6,
                        alpha=0.5, solid_capstyle="butt")  # fmt: skip
        ax.plot(ok["lr"], ok["mean"], color=colour, ls=dashes[line], lw=1.1, marker="o",
                ms=3, label=short(line, 44))  # fmt: skip
        losses.extend(ok["min"].tolist() + ok["max"].tolist())
        for _, row in part[part["diverged"] > 0].iterrows():
            diverged_any = True
            ax.plot(row["lr"], 0.97, "X", color=colour, ms=6, mec="k", mew=0.5,
                    transform=ax.get_xaxis_transform(), clip_on=False)  # fmt: skip
    seeds = [r for r in runs.index if r in spec_of and not runs.loc[r, "diverged"]]
    if len({spec_of[r]["seed"] for r in seeds}) > 1:  # the seeds themselves, faint
        for run in seeds:
            final = show_number(fig, (PER_RUN, run, "final_loss"), runs.loc[run, "final_loss"])
            ax.plot(spec_of[run]["lr"], final, ".", ms=3,
                    color=colours[spec_of[run]["schedule"]], alpha=0.7)  # fmt: skip
    best = best_run(runs)
    if best is not None and best in spec_of:
        lr = show_number(fig, "best_peak_lr", spec_of[best]["lr"])
        final = show_number(fig, "best_final_loss", float(runs.loc[best, "final_loss"]))
        ax.plot(lr, final, "*", ms=10, color=colours[spec_of[best]["schedule"]], mec="k",
                mew=0.6, zorder=5,
                label=f"verdict's best: {short(lines[best], 40)} {fmt_number(lr)} ({final:.3g})")  # fmt: skip
    steepest = (ramp or {}).get("steepest")
    if steepest:
        show_number(fig, ("range_test", "steepest"), steepest)
        ax.axvline(steepest, color=NEUTRAL, ls=":", lw=0.9,
                   label=f"range test steepest descent {fmt_number(steepest)}")  # fmt: skip
    if diverged_any:
        ax.plot([], [], "X", color="w", mec="k", mew=0.5, ms=6, label="diverged (top edge)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    grid_lrs = sorted({s["lr"] for s in specs})
    lo_x, hi_x = min(grid_lrs + ([steepest] if steepest else [])), max(grid_lrs)
    ax.set_xlim(lo_x / 1.6, hi_x * 1.6)
    ax.xaxis.set_major_locator(FixedLocator(grid_lrs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_number(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    if losses:
        lo, hi = min(losses), max(losses)
        ax.set_ylim(lo / 1.2, hi * 1.2)
        label_log_axis(ax.yaxis, lo / 1.2, hi * 1.2)
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel("final smoothed training loss")
    fig.legend(fontsize=6, loc="outside upper center", handlelength=2.4)
    return fig, ax


def _plot_final_loss_by_run(runs: pd.DataFrame):
    """Imported logs: final smoothed loss per run (log), lowest first, the best starred,
    diverged runs named in their row."""
    names = list(runs.index)
    styles = run_style(names, ())
    order = sorted(
        names,
        key=lambda r: (bool(runs.loc[r, "diverged"]), _number(runs.loc[r], "final_loss") or np.inf),
    )
    height = min(1.0 + 0.17 * len(order), 9.0)
    fig, ax = new_figure(width=SINGLE_COLUMN_IN, height=max(height, 2.0))
    best = best_run(runs)
    values = []
    for y, run in enumerate(order):
        row = runs.loc[run]
        if row["diverged"]:
            text = f"diverged at step {int(row['divergence_step'])}"
            ax.text(0.02, y, text, transform=ax.get_yaxis_transform(), va="center", fontsize=6)
            continue
        final = _number(row, "final_loss")
        if final is None or final <= 0:
            continue
        show_number(fig, (PER_RUN, run, "final_loss"), final)
        values.append(final)
        star = run == best
        ax.plot(final, y, "*" if star else "o", ms=9 if star else 4,
                color=styles[run]["color"], mec="k" if star else styles[run]["color"],
                mew=0.6)  # fmt: skip
    if best is not None:
        show_number(fig, "best_final_loss", float(runs.loc[best, "final_loss"]))
    ax.set_yticks(range(len(order)), [styles[r]["label"] for r in order], fontsize=6)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="y", visible=False)
    ax.set_xscale("log")
    if values:
        lo, hi = min(values) / 1.2, max(values) * 1.2
        ax.set_xlim(lo, hi)
        label_log_axis(ax.xaxis, lo, hi)
    ax.set_xlabel("final smoothed training loss")
    return fig, ax


def caption_final_loss(runs, specs=(), ramp: dict | None = None) -> str:
    """The caption of ``final_loss``: how to read it, the chosen configuration and its
    loss, whether it sits at the edge of the grid, and how it compares with the range
    test's suggestion."""
    best = best_run(runs)
    if not specs:
        text = "Final smoothed training loss of each imported run, lowest first (log scale)"
        if best is None:
            return text + "; every run diverged."
        return text + f"; the star marks the lowest, {best} at {runs.loc[best, 'final_loss']:.3g}."
    spec_of = {s["run"]: s for s in specs}
    seeds = len({s["seed"] for s in specs})
    text = (
        "Final smoothed training loss against peak LR, one line per schedule"
        + (
            f" through the mean of {seeds} seeds (dots: seeds, bars: min-max)"
            if seeds > 1
            else " (one seed per point)"
        )  # fmt: skip
    )
    if best is None or best not in spec_of:
        return text + "; every run diverged."
    lr, final = spec_of[best]["lr"], float(runs.loc[best, "final_loss"])
    text += (
        f"; the star is the verdict's chosen configuration, {line_names(specs)[best]} at peak "
        f"LR {fmt_number(lr)} (final loss {final:.3g})"
    )
    grid = sorted({s["lr"] for s in specs})
    if len(grid) > 1 and lr in (grid[0], grid[-1]):
        edge = "largest" if lr == grid[-1] else "smallest"
        text += f". It is the {edge} peak LR tried, so the best LR may lie beyond the grid"
    steepest = (ramp or {}).get("steepest")
    if steepest:
        text += (
            f"; the range test's steepest-descent LR (dotted, {fmt_number(steepest)}) is "
            f"{lr / steepest:.2g}x {'below' if lr > steepest else 'above'} it"
        )
    return text + "."
