"""Figures of the LR-schedule study (``03_lr_schedule_study``), each with its caption:

* ``loss_curves``: the runs' loss curves (colour: schedule, line style: peak LR; imported
  logs: one colour per run) beside each run's improvement after warmup against the
  plateau threshold, as the verdict judges it;
* ``final_loss``: final loss against peak LR, one line per schedule, seeds as spread, the
  verdict's chosen configuration starred (imported logs: final loss per run);
* ``lr_range_test``: the range test's loss against LR with its suggestions and the sweep's
  best peak LR.

Each plot function takes tables and arrays (never reads a file), returns ``(fig, axes)``
and records with :func:`nblib.plots.show_number` every number it draws that
``metrics.json`` reports, at the path :func:`nblib.studies.lr.analysis.metrics` gives it.
The LR schedules themselves are inputs, not results: they are the grid table, not a figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from nblib.metrics.curves import smooth
from nblib.plots import (
    DOUBLE_COLUMN_IN,
    PALETTES,
    SINGLE_COLUMN_IN,
    colors_for,
    new_figure,
    show_number,
)
from nblib.studies.lr.analysis import (
    best_run,
    learning_status,
    line_names,
    lr_key,
    lr_response,
    run_smoothing,
)

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


def _at_step(steps: np.ndarray, values: np.ndarray, step: float) -> tuple[float, float]:
    """(step, value) of the last finite point at or before ``step`` (the first finite
    point when none is before it)."""
    ok = np.isfinite(values)
    if not ok.any():
        return float(step), float("nan")
    idx = np.flatnonzero(ok & (steps <= step))
    i = idx[-1] if len(idx) else np.flatnonzero(ok)[0]
    return float(steps[i]), float(values[i])


def _number(row, key) -> float | None:
    value = row[key]
    return None if value is None or pd.isna(value) else float(value)


# ----------------------------------------------------------------------------- loss curves


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


# ----------------------------------------------------------------- final loss vs peak LR


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


# ----------------------------------------------------------------------------- range test


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


# ----------------------------------------------------------------------------- the study's


def shared_warmup(config, specs=()) -> int | None:
    """The warmup every run shares (a live grid's single warmup, or the imported logs'
    ``log_warmup_steps``), None when they differ or it is unknown (0)."""
    warmups = {s["warmup_steps"] for s in specs} if specs else {config.log_warmup_steps}
    return next(iter(warmups)) or None if len(warmups) == 1 else None


def loss_figure(loss_curves, runs, config, baseline=None, show=None, smoothing=None, specs=()):
    """:func:`plot_loss_curves` of the study's runs with their detectors, baseline, warmup
    and improvement after warmup."""
    return plot_loss_curves(
        loss_curves,
        runs,
        smoothing or config.smoothing,
        show=show,
        baseline=baseline,
        specs=specs,
        warmup=shared_warmup(config, specs),
        threshold=config.plateau_threshold,
        window=config.plateau_window,
    )


def final_loss_figure(runs, specs=(), ramp=None):
    """:func:`plot_final_loss` and its caption: ``(fig, axes, caption)``."""
    fig, ax = plot_final_loss(runs, specs, ramp)
    return fig, ax, caption_final_loss(runs, specs, ramp)


def range_figure(ramp, runs=None, specs=()):
    """:func:`plot_range_test` with the sweep's best peak LR, and its caption:
    ``(fig, axes, caption)``; ``(None, None, None)`` when no range test ran."""
    if ramp is None:
        return None, None, None
    spec_of = {s["run"]: s for s in specs}
    best = None if runs is None else best_run(runs)
    best_lr = spec_of[best]["lr"] if best in spec_of else None
    colour = None
    if best_lr is not None:
        colour = schedule_colours(s["schedule"] for s in specs)[spec_of[best]["schedule"]]
    peak_lrs = sorted({s["lr"] for s in specs})
    fig, ax = plot_range_test(ramp, best_lr, colour, peak_lrs)
    return fig, ax, caption_range_test(ramp, best_lr)


def run_browser(loss_curves, runs, config, baseline=None, specs=()):
    """ipywidgets (``interactive=True``): toggle runs and change the smoothing."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(loss_curves["run"]))
    # The curves smooth as the analysis does, over at most a tenth of a run's points, so
    # the slider stops at the widest window any run can use: every position redraws.
    widest = run_smoothing(10**9, int(loss_curves.groupby("run").size().max()))

    def show(selected, smoothing):
        loss_figure(loss_curves, runs, config, baseline, list(selected), smoothing, specs)
        plt.show()

    return w.interactive(
        show,
        selected=w.SelectMultiple(options=names, value=tuple(names), description="runs", rows=6),
        smoothing=w.IntSlider(
            value=min(config.smoothing, widest),
            min=1,
            max=max(widest, 1),
            description="smoothing",
            disabled=widest == 1,
        ),
    )
