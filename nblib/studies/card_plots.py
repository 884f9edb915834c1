"""The figures of ``00_dataset_card`` and their captions, drawn from arrays and dicts only.

Each ``plot_*`` returns ``(fig, axes)`` sized for a paper and records with
:func:`nblib.plots.show_number` every number it draws that ``metrics.json`` reports (under
the keys of :func:`nblib.studies.card.metrics`); each ``caption_*`` beside it formats the
same numbers into the figure's one- or two-sentence caption.
"""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from nblib.plots import DOUBLE_COLUMN_IN, SINGLE_COLUMN_IN, color_for, colors_for, new_figure
from nblib.plots import show_number as _show

# Tasks with fewer demos than this are drawn grey with their n: a box of two is no spread.
FEW_DEMOS = 3
# Colour of outlines and labels that flag a problem (blocked view); Okabe-Ito vermillion is
# a task colour, so a neutral dark red keeps "flag" from reading as "push".
FLAG = "#B2182B"


def _pct(x: float) -> str:
    """A share as a percentage with precision that keeps small shares visible."""
    p = 100 * x
    return f"{p:.0f}%" if p >= 10 or p == 0 else f"{p:.1f}%"


# ----------------------------------------------------------------------------- lengths


def plot_episode_lengths(lengths: dict[str, list[int]]):
    """One row per task: every demo's length as a dot over a box (quartiles, whiskers at
    min and max), median and n written beside it. Tasks with fewer than ``FEW_DEMOS``
    demos are grey."""
    tasks = list(lengths)
    colours = colors_for(tasks, "task")
    fig, ax = new_figure(width=SINGLE_COLUMN_IN, height=0.8 + 0.32 * len(tasks))
    rng = np.random.default_rng(0)  # jitter only; the x positions are the data
    for row, task in enumerate(tasks):
        values = np.asarray(lengths[task], dtype=float)
        few = len(values) < FEW_DEMOS
        colour = "#999999" if few else colours[task]
        if not few:
            ax.boxplot(
                values,
                positions=[row],
                vert=False,
                whis=(0, 100),
                widths=0.55,
                showfliers=False,
                medianprops={"color": "black", "linewidth": 1.0},
                boxprops={"linewidth": 0.6},
                whiskerprops={"linewidth": 0.6},
                capprops={"linewidth": 0.6},
            )
        ax.scatter(
            values,
            row + rng.uniform(-0.18, 0.18, len(values)),
            s=6,
            color=colour,
            alpha=0.8,
            linewidths=0,
            zorder=3,
        )
        stats = ("episode_length", task)
        median = _show(ax, (*stats, "median"), float(np.median(values)))
        _show(ax, (*stats, "min"), int(values.min()))
        _show(ax, (*stats, "max"), int(values.max()))
        _show(ax, (*stats, "demos"), len(values))
        ax.annotate(
            f"{median:g} (n={len(values)})",
            (1.0, row),
            xycoords=("axes fraction", "data"),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=6,
            color="#555555" if few else "black",
        )
    ax.set_yticks(range(len(tasks)), tasks)
    for label, task in zip(ax.get_yticklabels(), tasks, strict=True):
        label.set_color("#999999" if len(lengths[task]) < FEW_DEMOS else "black")
    ax.set_ylim(len(tasks) - 0.5, -0.5)
    ax.set_xlabel("episode length (steps)")
    ax.grid(axis="y", visible=False)
    ax.set_title("median (n demos)", loc="right", fontsize=6, pad=2)
    return fig, ax


def caption_episode_lengths(lengths: dict[str, list[int]]) -> str:
    medians = {t: float(np.median(v)) for t, v in lengths.items()}
    short, long = min(medians, key=medians.get), max(medians, key=medians.get)
    demos, steps = sum(len(v) for v in lengths.values()), sum(sum(v) for v in lengths.values())
    return (
        f"Episode length of each of the {demos} demos ({steps} steps) per task: dots are "
        f"demos, boxes quartiles, whiskers min to max. Median lengths range from "
        f"{medians[short]:g} steps ({short}) to {medians[long]:g} ({long})."
    )


# ----------------------------------------------------------------------------- actions


def plot_action_histograms(
    values: dict[str, np.ndarray],
    names: list[str],
    saturation: dict[str, dict],
    bins: int = 40,
):
    """One panel per action dimension: per task, the share of its steps in each bin
    (log scale, so rare values stay visible beside the spikes), and the share of all
    steps saturated at -1 and +1 (``saturation``, see ``card.saturated_actions``) written
    at each limit with a marker on the axis where that share is not zero."""
    tasks = list(values)
    colours = colors_for(tasks, "task")
    fig, axes = new_figure(
        ncols=len(names), nrows=1, width=DOUBLE_COLUMN_IN, height=2.3, squeeze=False
    )
    edges = np.linspace(-1, 1, bins + 1)
    for i, (ax, name) in enumerate(zip(axes[0], names, strict=True)):
        for task in tasks:
            column = values[task][:, i]
            counts, _ = np.histogram(np.clip(column, -1, 1), bins=edges)
            share = 100 * counts / max(len(column), 1)
            ax.stairs(np.where(share > 0, share, np.nan), edges, color=colours[task], label=task)
        ax.set_yscale("log")
        ax.set_ylim(0.05, 300)
        ax.yaxis.set_major_locator(FixedLocator([0.1, 1, 10, 100]))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_xlim(-1.12, 1.12)
        ax.set_xticks([-1, -0.5, 0, 0.5, 1])
        ax.set_title(name)
        ax.set_xlabel("action value")
        sat = saturation[name]
        for side, x, ha in (("share_at_minus_1", -1, "left"), ("share_at_plus_1", 1, "right")):
            share = _show(ax, ("saturated_actions", name, side), sat[side])
            ax.text(
                x,
                0.97,
                f"{_pct(share)} at {x:+d}",
                transform=ax.get_xaxis_transform(),
                ha=ha,
                va="top",
                fontsize=6,
                color=FLAG if share > 0 else "#555555",
            )
            if share > 0:
                ax.plot(
                    [x],
                    [0],
                    marker="^",
                    color=FLAG,
                    ms=5,
                    clip_on=False,
                    zorder=4,
                    transform=ax.get_xaxis_transform(),
                )
        if i == 0:
            ax.set_ylabel("% of the task's steps")
    handles, labels = axes[0][0].get_legend_handles_labels()
    marker = axes[0][0].plot([], [], "^", color=FLAG, ms=5, label="steps at the ±1 limit")[0]
    fig.legend(
        [*handles, marker],
        [*labels, "share of all steps at ±1 (marked where > 0)"],
        loc="outside lower center",
        ncol=min(len(labels) + 1, 6),
        fontsize=6,
        handlelength=1.2,
        columnspacing=1.0,
    )
    return fig, axes


def caption_action_histograms(saturation: dict[str, dict]) -> str:
    shares = {(n, side): s[side] for n, s in saturation.items() for side in s if side != "steps"}
    (name, side), top = max(shares.items(), key=lambda kv: kv[1])
    limit = "+1" if side == "share_at_plus_1" else "-1"
    steps = next(iter(saturation.values()))["steps"]
    return (
        f"Distribution of each action dimension over the {steps} steps, per task (share of "
        f"the task's steps per bin, log scale). The share of all steps saturated at the ±1 "
        f"clip limits is written at each limit; the largest is {_pct(top)} of {name} at "
        f"{limit}."
    )


# ----------------------------------------------------------------------------- frames


def plot_frame_grid(
    rows: list[tuple],
    camera: str,
    blocked: dict | None = None,
):
    """One row per demo: ``(label, steps, frames[, blocked_steps])`` with frames (H, W, 3)
    uint8. Steps in ``blocked_steps`` are outlined and titled "blocked"; ``blocked`` (the
    camera's entry of ``metrics["blocked_frames"]``) is summarised in the title."""
    n_frames = max(len(r[2]) for r in rows)
    fig, axes = new_figure(
        ncols=n_frames,
        nrows=len(rows),
        width=DOUBLE_COLUMN_IN,
        height=min(1.12 * len(rows) + 0.4, 9.0),
        squeeze=False,
    )
    tasks = [r[0].split("\n")[0] for r in rows]
    colours = colors_for(tasks, "task")
    for row_axes, row, task in zip(axes, rows, tasks, strict=True):
        label, steps, frames = row[:3]
        bad = set(row[3]) if len(row) > 3 else set()
        for ax in row_axes:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
        for ax, t, frame in zip(row_axes, steps, frames, strict=False):
            ax.imshow(frame)
            if t in bad:
                for spine in ax.spines.values():
                    spine.set_visible(True)
                    spine.set_color(FLAG)
                    spine.set_linewidth(2.0)
                ax.set_title(f"t={t} blocked", fontsize=6, pad=1, color=FLAG, weight="bold")
            else:
                ax.set_title(f"t={t}", fontsize=6, pad=1)
        row_axes[0].set_ylabel(label, fontsize=6, color=colours[task])
    title = f"camera: {camera}"
    if blocked is not None:
        frames_n = _show(fig, ("blocked_frames", camera, "frames"), blocked["frames"])
        demos_n = _show(fig, ("blocked_frames", camera, "demos"), blocked["demos"])
        title += (
            f" — {frames_n} blocked frames in {demos_n} demos (first: {blocked['first']})"
            if frames_n
            else " — no blocked frame"
        )
    fig.suptitle(title, fontsize=8, color=color_for(camera, "camera"))
    return fig, axes


def caption_frame_grid(camera: str, rows: int, frames: int, blocked: dict | None) -> str:
    text = (
        f"Camera {camera}: {frames} evenly spaced frames (t = step) of one random demo per "
        f"task, one row per demo ({rows} rows)."
    )
    if blocked is None:
        return text
    if not blocked["frames"]:
        return text + " No frame of this camera is blocked (dark, featureless or covered)."
    return text + (
        f" {blocked['frames']} of its frames ({_pct(blocked['share'])}) in {blocked['demos']} "
        f"demos show no scene (the view is covered or dark; first at {blocked['first']}); "
        f"those shown are outlined."
    )


# ----------------------------------------------------------------------------- leakage


def plot_leakage(nn_rms, threshold, near, warn, pairs, camera, exact):
    """Left: the nearest-training-frame RMS distance of every validation frame, the
    near-duplicate ``threshold`` and the near share ``near`` (an Estimate) against the
    ``warn`` level. Right: ``pairs`` of (val frame, title, train frame, title, rms), each
    with its absolute grey-level difference image."""
    n = max(len(pairs), 1)
    fig = new_figure(width=DOUBLE_COLUMN_IN, height=0.9 + 1.25 * n)[0]
    fig.clear()
    grid = fig.add_gridspec(n, 4, width_ratios=[2.2, 1, 1, 1.25])
    ax = fig.add_subplot(grid[:, 0])
    rms = np.asarray(nn_rms, dtype=float)
    thr = _show(ax, "leak_threshold", threshold)
    if rms.size:
        low = max(min(rms.min(), thr) / 2, 1e-2)
        edges = np.geomspace(low, max(rms.max(), thr) * 1.5, 30)
        val = color_for("val", "split")
        ax.hist(rms[rms >= thr], bins=edges, color=val, alpha=0.45, label="farther")
        ax.hist(rms[rms < thr], bins=edges, color=val, alpha=1.0, label="near-duplicate")
        ax.set_xscale("log")
        ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if edges[0] <= t <= edges[-1]]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.legend(loc="upper right", fontsize=6)
    ax.axvline(thr, color="black", linestyle="--", linewidth=0.9)
    ax.text(
        thr,
        0.98,
        f"threshold {thr:g} ",
        transform=ax.get_xaxis_transform(),
        ha="right",
        va="top",
        fontsize=6,
    )
    value = _show(ax, "leak_near_fraction", near.value)
    lo = _show(ax, "leak_near_fraction_low", near.low)
    hi = _show(ax, "leak_near_fraction_high", near.high)
    ex = _show(ax, "leak_exact", exact)
    ax.text(
        0.02,
        0.86,
        f"near-duplicates: {_pct(value)}\n95% CI [{_pct(lo)}, {_pct(hi)}]\n"
        f"WARN if CI reaches {_pct(warn)}\nbyte-identical: {ex:g}",
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize=6,
        bbox={"facecolor": "white", "edgecolor": "#cccccc", "linewidth": 0.5, "pad": 2},
    )
    ax.set_xlabel("RMS to nearest train frame (grey levels)")
    ax.set_ylabel(f"validation frames (n={rms.size})")
    ax.set_title(f"camera: {camera}", fontsize=8, color=color_for(camera, "camera"))
    image, diff_axes = None, []
    for row, (val, val_title, train, train_title, pair_rms) in enumerate(pairs):
        diff = np.abs(_grey(val) - _grey(train))
        for col, (img, title) in enumerate(
            ((val, val_title), (train, train_title), (diff, f"|val − train|, RMS {pair_rms:.2f}"))
        ):
            a = fig.add_subplot(grid[row, col + 1])
            if col < 2:
                a.imshow(img)
            else:
                image = a.imshow(img, cmap="magma", vmin=0, vmax=32)
                diff_axes.append(a)
            a.set_title(title, fontsize=6, pad=2)
            a.set_xticks([])
            a.set_yticks([])
            a.grid(False)
    if image is not None:
        bar = fig.colorbar(image, ax=diff_axes, shrink=0.6, pad=0.03)
        bar.set_label("grey levels", fontsize=6)
        bar.ax.tick_params(labelsize=6)
    if not pairs:
        ax.text(0.5, 0.5, "no validation frames", transform=ax.transAxes, ha="center")
    return fig, fig.axes


def _grey(frame: np.ndarray) -> np.ndarray:
    return np.asarray(frame, dtype=np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def caption_leakage(near, threshold, warn, val_frames, camera, exact) -> str:
    side = "below" if near.below(warn) else "reaching"
    return (
        f"Left: distance of each of the {val_frames} validation frames of camera {camera} to "
        f"its nearest training frame (RMS grey-level difference of 32×32 thumbnails); "
        f"right: the closest pairs and their difference images. {_pct(near.value)} of "
        f"validation frames are near-duplicates (RMS under {threshold:g} grey levels; 95% CI "
        f"[{_pct(near.low)}, {_pct(near.high)}], {side} the {_pct(warn)} WARN level) and "
        f"{exact} are byte-identical."
    )
