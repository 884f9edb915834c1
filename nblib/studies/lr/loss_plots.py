"""Notebook 03's ``loss_curves`` figure and its caption: the runs' loss curves (colour:
schedule, line style: peak LR; imported logs: one colour per run) with the detectors'
marks, beside each run's improvement after warmup against the plateau threshold, as the
verdict judges it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from nblib.metrics.curves import smooth
from nblib.plots import DOUBLE_COLUMN_IN, new_figure, show_number
from nblib.studies.lr.analysis import best_run, learning_status, run_smoothing
from nblib.studies.lr.plots_common import (
    NEUTRAL,
    PER_RUN,
    _number,
    fmt_number,
    label_log_axis,
    run_style,
    short,
)


def _at_step(steps: np.ndarray, values: np.ndarray, step: float) -> tuple[float, float]:
    """(step, value) of the last finite point at or before ``step`` (the first finite
    point when none is before it)."""
    ok = np.isfinite(values)
    if not ok.any():
        return float(step), float("nan")
    idx = np.flatnonzero(ok & (steps <= step))
    i = idx[-1] if len(idx) else np.flatnonzero(ok)[0]
    return float(steps[i]), float(values[i])


def plot_loss_curves(
    curves: pd.DataFrame,
    runs: pd.DataFrame | None = None,
    smoothing: int = 20,
    show=None,
    baseline: float | None = None,
    specs=(),
    warmup: int | None = None,
    threshold: float | None = None,
    window: int | None = None,
):
    """Left: loss against step of every run (or the ``show`` subset), raw (faint) and
    smoothed (trailing mean of ``smoothing`` points, at most a tenth of a run's points,
    as the analysis smooths), log scale; colour per schedule and line style per peak LR
    (``specs`` of a live sweep), one colour per run for imported logs. With the analysis
    table ``runs``: a dot where a plateau begins and a cross where a run diverged (each
    only when some run has one) and a star at the verdict's best run's final loss; with
    ``baseline`` the mean-action predictor's loss; ``warmup`` shaded. Right (with ``runs``
    and ``threshold``): each run's improvement per ``window`` steps after warmup with its
    95 % interval against the plateau threshold, marked as the verdict counts it."""
    names = [r for r in dict.fromkeys(curves["run"]) if show is None or r in show]
    styles = run_style(names, specs)
    gains = runs is not None and threshold is not None
    fig, axes = new_figure(
        ncols=2 if gains else 1,
        width=DOUBLE_COLUMN_IN,
        # tall enough for one row per run in the improvement panel (6 pt labels)
        height=min(max(2.9, 1.3 + 0.13 * len(names)), 9.0) if gains else 2.9,
        squeeze=False,
        gridspec_kw={"width_ratios": [1.75, 1]} if gains else None,
    )
    ax = axes[0, 0]
    marks = {"plateau": False, "diverged": False}
    low, high = np.inf, 0.0
    for run in names:
        part = curves[curves["run"] == run]
        steps, loss = part["step"].to_numpy(), part["loss"].to_numpy(dtype=float)
        style = styles[run]
        finite = np.isfinite(loss) & (loss > 0)  # a log axis has no place for 0
        ax.plot(steps[finite], loss[finite], color=style["color"], alpha=0.2, lw=0.4)
        if not finite.any():
            continue
        low, high = min(low, loss[finite].min()), max(high, loss[finite].max())
        level = smooth(loss[finite], run_smoothing(smoothing, len(loss)))
        # gids name the artists a reader (or a test) can find again by run
        ax.plot(
            steps[finite],
            level,
            color=style["color"],
            ls=style["ls"],
            lw=1.1,
            gid=f"smoothed:{run}",
        )
        if runs is None or run not in runs.index:
            continue
        row = runs.loc[run]
        plateau = _number(row, "plateau_step")
        if plateau is not None and not row["diverged"]:
            x, y = _at_step(steps[finite], level, plateau)
            ax.plot(
                x,
                y,
                "o",
                color=style["color"],
                ms=4,
                mec="k",
                mew=0.6,
                zorder=4,
                gid=f"plateau:{run}",
            )
            show_number(fig, (PER_RUN, run, "plateau_step"), plateau)
            marks["plateau"] = True
        if row["diverged"] and _number(row, "divergence_step") is not None:
            at = float(row["divergence_step"])
            # the smoothed loss at the divergence step: where the run broke, not its end
            _, y = _at_step(steps[finite], level, at)
            ax.plot(
                at,
                y,
                "X",
                color=style["color"],
                ms=6,
                mec="k",
                mew=0.6,
                zorder=4,
                gid=f"diverged:{run}",
            )
            show_number(fig, (PER_RUN, run, "divergence_step"), at)
            marks["diverged"] = True
    best = None if runs is None else best_run(runs)  # the verdict's, drawn if shown
    if best is not None and best in names:
        final = show_number(fig, "best_final_loss", float(runs.loc[best, "final_loss"]))
        end = curves.loc[curves["run"] == best, "step"].max()
        ax.plot(end, final, "*", color=styles[best]["color"], ms=9, mec="k", mew=0.6, zorder=5)
    if warmup:
        ax.axvspan(0, warmup, color="0.92", lw=0, zorder=0)
    if baseline is not None:
        show_number(fig, "mean_action_loss", baseline)
        ax.axhline(baseline, color=NEUTRAL, ls=(0, (6, 2)), lw=0.8)
        high = max(high, baseline)
    ax.set_yscale("log")
    if np.isfinite(low):
        label_log_axis(ax.yaxis, low, high)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    handles = _curve_legend(styles, names, marks, best, runs, baseline, warmup)
    if gains:
        handles += _plot_gains(axes[0, 1], runs, names, styles, threshold, window)
    # one legend over both panels: inside the axes it hid curves, above one panel it
    # squeezed that panel
    fig.legend(
        handles=handles,
        ncol=4,
        fontsize=6,
        loc="outside upper center",
        handlelength=2.4,
        columnspacing=1.2,
    )
    return fig, axes[0]


def _curve_legend(styles, names, marks, best, runs, baseline, warmup) -> list:
    """Legend handles: schedules by colour and peak LRs by line style (imported logs: runs
    by colour), then only the markers and lines actually drawn."""
    handles, seen = [], set()
    for run in names:
        group = styles[run]["group"]
        if group not in seen:
            seen.add(group)
            label = short(group, 30)
            handles.append(Line2D([], [], color=styles[run]["color"], lw=1.5, label=label))
    settings = {}
    for run in names:
        if styles[run]["setting"]:
            settings.setdefault(styles[run]["setting"], styles[run]["ls"])
    for setting, ls in settings.items():
        handles.append(Line2D([], [], color="k", ls=ls, lw=1.1, label=setting))
    if marks["plateau"]:
        handles.append(_marker("o", "plateau begins"))
    if marks["diverged"]:
        handles.append(_marker("X", "diverged"))
    if best is not None and best in names:
        loss = float(runs.loc[best, "final_loss"])
        handles.append(_marker("*", f"lowest final loss {loss:.3g}", ms=8))
    if baseline is not None:
        handles.append(
            Line2D([], [], color=NEUTRAL, ls=(0, (6, 2)), lw=0.8,
                   label=f"mean-action predictor {baseline:.3g}")
        )  # fmt: skip
    if warmup:
        from matplotlib.patches import Patch

        handles.append(Patch(color="0.92", label=f"warmup ({warmup} steps)"))
    return handles


def _marker(marker: str, label: str, ms: float = 5) -> Line2D:
    return Line2D([], [], ls="", marker=marker, color="w", mec="k", mew=0.6, ms=ms, label=label)


# How the verdict counts a run (analysis.learning_status) -> marker fill and legend text.
STATUS_LEGEND = {
    "learning": ("o", True, "interval above threshold: learning"),
    "uncertain": ("o", False, "interval straddles threshold"),
    "stalled": ("s", False, "below threshold: stalled"),
}


def _plot_gains(ax, runs, names, styles, threshold, window) -> list:
    """Each run's improvement per window after warmup (%, 95 % bootstrap interval), the
    plateau threshold as a labelled line; diverged or unjudged runs named in their row.
    Returns the legend handles of what it drew."""
    fig = ax.figure
    status = learning_status(runs, threshold)
    rows = [r for r in names if r in runs.index]
    shown = set()
    for y, run in enumerate(rows):
        row, colour = runs.loc[run], styles[run]["color"]
        gain = None if row["diverged"] else _number(row, "gain")
        if gain is None:
            if row["diverged"]:
                text = f"diverged at step {int(row['divergence_step'])}"
            else:
                # the verdict then goes by the plateau detector: say how it counted
                text = "too short for an interval: " + (
                    "stalled" if status[run] == "stalled" else "counted as learning"
                )
            ax.text(0.02, y, text, transform=ax.get_yaxis_transform(), va="center", fontsize=6,
                    color="0.25", bbox={"fc": "w", "ec": "none", "pad": 0.5})  # fmt: skip
            continue
        lo, hi = _number(row, "gain_low"), _number(row, "gain_high")
        for key, value in (("gain", gain), ("gain_low", lo), ("gain_high", hi)):
            show_number(fig, (PER_RUN, run, key), value)
        marker, filled, _ = STATUS_LEGEND[status[run]]
        ax.plot([100 * lo, 100 * hi], [y, y], color=colour, lw=1.4, solid_capstyle="butt")
        ax.plot(100 * gain, y, marker, ms=4.5, color=colour if filled else "w", mec=colour,
                mew=1.0)  # fmt: skip
        shown.add(status[run])
    show_number(fig, "plateau_threshold", threshold)
    ax.axvline(100 * threshold, color=NEUTRAL, ls="--", lw=0.8)
    ax.set_yticks(range(len(rows)), [styles[r]["label"] for r in rows], fontsize=6)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="y", visible=False)
    per = f"{window} steps" if window else "window"
    ax.set_xlabel(f"loss improvement per {per}\nafter warmup (%, 95 % CI)")
    left, right = ax.get_xlim()
    ax.set_xlim(min(left, 0.0), max(right, 100 * threshold * 1.5))
    handles = [
        _status_handle(*STATUS_LEGEND[k])
        for k in ("learning", "uncertain", "stalled")
        if k in shown
    ]
    handles.append(
        Line2D([], [], color=NEUTRAL, ls="--", lw=0.8,
               label=f"plateau threshold {fmt_number(100 * threshold)} %")
    )  # fmt: skip
    return handles


def _status_handle(marker, filled, label) -> Line2D:
    return Line2D([], [], ls="", marker=marker, ms=4.5, color="k" if filled else "w", mec="k",
                  label=label)  # fmt: skip


def shared_warmup(config, specs=()) -> int | None:
    """The warmup every run shares (a live grid's single warmup, or the imported logs'
    ``log_warmup_steps``), None when they differ or it is unknown (0)."""
    warmups = {s["warmup_steps"] for s in specs} if specs else {config.log_warmup_steps}
    return next(iter(warmups)) or None if len(warmups) == 1 else None


def caption_loss_curves(runs, config, baseline=None, specs=()) -> str:
    """One or two sentences under ``loss_curves``: how to read it and the verdict's count
    of runs learning past warmup, the best final loss and the detectors that fired."""
    warmup = shared_warmup(config, specs)
    status = learning_status(runs, config.plateau_threshold)
    n, learning = len(runs), sum(s == "learning" for s in status.values())
    best = best_run(runs)
    encoding = "colour: schedule, line style: peak LR" if specs else "one colour per imported run"
    text = (
        f"Left: training loss of the {n} runs against step, log scale (faint: raw; "
        f"solid: trailing mean; {encoding})"
        + (f", the mean-action predictor at {baseline:.3g} dashed" if baseline is not None else "")
        + (", warmup shaded" if warmup else "")
        + f"; right: each run's loss improvement per {config.plateau_window} steps after "
        f"warmup with its 95 % bootstrap interval against the {config.plateau_threshold:g} "
        f"({100 * config.plateau_threshold:g} %) plateau threshold. "
        f"{learning} of {n} runs count as learning past warmup"
    )
    short_runs = sum(
        s == "learning" and (runs.loc[r, "gain"] is None or pd.isna(runs.loc[r, "gain"]))
        for r, s in status.items()
    )
    if short_runs:
        text += f" ({short_runs} too short for an interval, judged by the plateau detector)"
    if best is not None:
        text += f"; the lowest final smoothed loss, {runs.loc[best, 'final_loss']:.3g}, is {best}"
    events = []
    plateaued = int((runs["plateau_step"].notna() & ~runs["diverged"]).sum())
    diverged = int(runs["diverged"].sum())
    events.append(f"{plateaued} plateaued (dots)" if plateaued else "no run plateaued")
    events.append(f"{diverged} diverged (crosses)" if diverged else "none diverged")
    return text + "; " + ", ".join(events) + "."
