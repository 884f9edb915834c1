"""Figures of the doctor's dynamics checks (notebook 06): the dataset's hand actions
against its end-effector motion beside the simulator's measured response, gripper commands
against the opening they lead to on both sides, and the dataset's state over the
simulator's per dimension.

The figure contract of :mod:`nblib.studies.doctor.plots` (``(None, None)`` when there is
nothing to draw).
"""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import NullFormatter

from nblib.plots import DOUBLE_COLUMN_IN, color_for, new_figure, show_number

AXES = ("x", "y", "z")
SIM = "#000000"  # the simulator's measured response, in every panel
REFERENCE = "#888888"  # the x1 line and other references
MISMATCH = "#D55E00"


def _path(result, *keys) -> tuple[str, ...]:
    return ("checks", result.check, "evidence", *keys)


def _empty(result) -> bool:
    return result.status == "skipped" or not result.artifacts


# ---------------------------------------------------------------- action_representation


def figure_action_representation(result):
    """Top row: per hand axis, the dataset's action against its end-effector motion in
    the next step (mm, in the simulator's units) with the simulator's measured response
    (late in its held commands, and the line Δ = gain · action when it is a delta
    space); bottom row: the action against the
    next position, the relation absolute targets would show."""
    if _empty(result):
        return None, None
    ev, art = result.evidence, result.artifacts
    fig, axes = new_figure(ncols=3, nrows=2, width=DOUBLE_COLUMN_IN, height=4.2, squeeze=False)
    scale = np.array([ev["eef_scale"][a] for a in AXES])
    delta_mm = art["delta"] / scale * 1000
    next_m = art["next"] / scale
    line = np.linspace(-1, 1, 3)
    for i, axis in enumerate(AXES):
        colour = color_for(axis, "dim")
        top, bottom = axes[0, i], axes[1, i]
        top.scatter(
            art["action"][:, i],
            delta_mm[:, i],
            s=3,
            alpha=0.35,
            color=colour,
            linewidths=0,
            label="dataset",
            rasterized=True,
        )
        probe = art["sim_samples"][i]
        top.scatter(
            probe[:, 0],
            probe[:, 1] * 1000,
            s=9,
            marker="x",
            color=SIM,
            linewidths=0.7,
            label="simulator (held commands +1, 0, −1)",
        )
        if ev["sim_kind"] == "delta":  # a gain line only where the motion follows the command
            gain = show_number(top, _path(result, "sim_gain", axis), ev["sim_gain"][axis])
            top.plot(
                line,
                gain * 1000 * line,
                color=SIM,
                lw=0.8,
                ls="--",
                label="simulator: Δ = gain · action",
            )
        r = show_number(top, _path(result, "corr_delta", axis), ev["corr_delta"][axis])
        top.set_title(f"{axis}: r(action, Δeef) = {r:.2f}")
        top.set_xlabel(f"action {axis}")
        bottom.scatter(
            art["action"][:, i],
            next_m[:, i],
            s=3,
            alpha=0.35,
            color=colour,
            linewidths=0,
            rasterized=True,
        )
        r = show_number(bottom, _path(result, "corr_next", axis), ev["corr_next"][axis])
        bottom.set_title(f"{axis}: r(action, next eef) = {r:.2f}")
        bottom.set_xlabel(f"action {axis}")
    axes[0, 0].set_ylabel("Δeef per step (mm)")
    axes[1, 0].set_ylabel("next eef position (m)")
    fig.legend(
        *axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=3, markerscale=1.5
    )
    return fig, axes


def caption_action_representation(result) -> str:
    ev = result.evidence
    if _empty(result):
        return f"action_representation: {result.detail}"
    return (
        "The dataset's hand actions against the end-effector's motion in the next step (top) "
        "and its next position (bottom), per axis, with the simulator's measured response to "
        f"held pushes (black). The data's actions are {ev['data_kind']} (R² with the motion "
        f"{ev['r2_delta']:.2f}, with the next position {ev['r2_next']:.2f}); the simulator's "
        f"({ev['sim_task']}) are {ev['sim_kind']}: {result.status}."
    )


# ---------------------------------------------------------------- gripper_polarity


def figure_gripper_polarity(result):
    """Left: the simulator's gripper opening from a reset under +1 held, then -1 held.
    Right: per gripper command, how open the gripper ends up, on both sides (1 open, 0
    closed): the simulator's settled opening from open and from closed (black; apart
    where a command only holds the gripper) and the fraction of the dataset's steps after
    which its gripper stays open (markers sized by steps)."""
    if _empty(result):
        return None, None
    ev, art = result.evidence, result.artifacts
    fig, (left, right) = new_figure(ncols=2, width=DOUBLE_COLUMN_IN, height=2.8)
    plus, minus = art["sim_trace_plus"], art["sim_trace_minus"]
    steps = np.arange(len(plus) + len(minus) - 1)
    trace = np.concatenate([plus, minus[1:]])
    left.axvspan(0, len(plus) - 1, color="#eeeeee", lw=0)
    left.plot(steps, trace, color=SIM)
    top = max(trace.max(), 1e-9)
    left.text(1, 0.04 * top, "command +1", fontsize=7)
    left.text(len(plus), 0.04 * top, "command −1", fontsize=7)
    left.set_ylim(0, top * 1.08)
    left.set_xlabel("simulator step from reset")
    left.set_ylabel("gripper opening")
    left.set_title(f"simulator ({ev['sim_task']}): closes with {ev['sim_closes_with']}1")

    lo, hi = ev["sim_closed_level"], ev["sim_open_level"]
    for key, style, label in (
        ("sim_from_open", "-", "from open"),
        ("sim_from_closed", "--", "from closed"),
    ):
        settled = (np.asarray(art[key]) - lo) / max(hi - lo, 1e-12)
        right.plot(
            art["sim_levels"],
            settled,
            color=SIM,
            ls=style,
            marker="o",
            ms=2.5,
            lw=1.0,
            label=f"simulator, settled {label}",
        )
    jitter = np.random.default_rng(0).uniform(-0.02, 0.02, len(art["data_command"]))
    colour = color_for("gripper", "dim")
    right.scatter(
        art["data_command"] + jitter,
        art["data_opening"],
        s=2,
        alpha=0.3,
        color=colour,
        linewidths=0,
        rasterized=True,
        label="dataset, opening next step",
    )
    steps = np.asarray(art["data_level_steps"], dtype=float)
    sizes = 12 + 60 * steps / steps.max()
    # levels whose steps the two sides read oppositely are ringed in the mismatch colour
    opposite = np.asarray(art["data_level_wrong"]) > 0
    right.scatter(
        art["data_levels"],
        1 - np.asarray(art["data_level_closes"]),
        s=sizes,
        facecolors="none",
        edgecolors=np.where(opposite, MISMATCH, colour),
        linewidths=np.where(opposite, 1.6, 1.0),
        label="dataset, fraction of steps staying open",
    )
    right.axhline(0.5, color=REFERENCE, lw=0.6, ls=":")
    share = show_number(right, _path(result, "disagreement"), ev["disagreement"])
    right.set_title(
        f"read oppositely: {share:.0%} of the dataset's steps",
        color=MISMATCH if result.status == "mismatch" else "black",
    )
    right.set_xlabel("gripper command")
    right.set_ylabel("open (1) … closed (0)")
    right.set_ylim(-0.08, 1.25)
    fig.legend(
        *right.get_legend_handles_labels(), loc="outside lower center", ncol=2, markerscale=1.5
    )
    return fig, (left, right)


def caption_gripper_polarity(result) -> str:
    ev = result.evidence
    if _empty(result):
        return f"gripper_polarity: {result.detail}"
    return (
        "Gripper commands and the opening they lead to: the simulator under +1 then −1 held "
        "from a reset (left), and per command how open the gripper ends up in the simulator "
        "and in the dataset (right). The dataset closes with "
        f"{ev['data_close_command']:+.2f} in [{ev['data_range'][0]:g}, {ev['data_range'][1]:g}], "
        f"the simulator with {ev['sim_closes_with']}1; {ev['disagreement']:.0%} of the "
        f"dataset's steps carry a command the two sides read oppositely: {result.status}."
    )


# ---------------------------------------------------------------- state_units


def figure_state_units(result):
    """Left: the fitted scale of each proprio dimension (dataset over simulator, log axis,
    the x1 line). Right: the per-moment ratio dataset / simulator of each dimension
    (moments where the simulator's value is near 0 left out)."""
    if _empty(result):
        return None, None
    ev, art = result.evidence, result.artifacts
    names = list(art["names"])
    fig, (left, right) = new_figure(ncols=2, width=DOUBLE_COLUMN_IN, height=2.6)
    where = np.arange(len(names))
    colours = [MISMATCH if ev["dims"][n]["mismatch"] else "#4d4d4d" for n in names]
    heights = []
    for x, n in zip(where, names, strict=True):
        fit = ev["dims"][n]
        scale = show_number(left, _path(result, "dims", n, "scale"), fit["scale"])
        label = f"×{scale:.4g}"
        if fit["mismatch"] and abs(fit["offset"]) > 1e-6:
            label += (
                f"\n{show_number(left, _path(result, 'dims', n, 'offset'), fit['offset']):+.3g}"
            )
        heights.append(max(abs(scale), 1e-6))
        left.text(x, heights[-1] * 1.15, label, ha="center", va="bottom", fontsize=6)
    heights = np.asarray(heights)
    left.bar(where, heights, color=colours, width=0.6)
    left.axhline(1, color=REFERENCE, lw=0.8, ls="--")
    left.set_yscale("log")
    # whole decades, labelled at decades only: a reader compares orders of magnitude
    low = 10 ** np.floor(np.log10(min(heights.min(), 1.0) / 3))
    high = 10 ** np.ceil(np.log10(max(heights.max(), 1.0) * 10))
    left.set_ylim(low, high)
    left.yaxis.set_minor_formatter(NullFormatter())
    left.set_xticks(where, names, rotation=30, ha="right")
    left.set_ylabel("|scale|: dataset / simulator")
    left.set_title(f"fitted scale per dimension ({ev['moments']} moments)")

    data, sim = np.asarray(art["data"]), np.asarray(art["sim"])
    for i in range(len(names)):
        size = max(np.median(np.abs(sim[:, i])), sim[:, i].std(), 1e-9)
        usable = np.abs(sim[:, i]) > 0.05 * size
        ratio = np.abs(data[usable, i] / sim[usable, i])
        ratio = ratio[ratio > 0]
        jitter = np.random.default_rng(i).uniform(-0.18, 0.18, len(ratio))
        right.scatter(
            i + jitter, ratio, s=3, alpha=0.3, color=colours[i], linewidths=0, rasterized=True
        )
    right.axhline(1, color=REFERENCE, lw=0.8, ls="--")
    right.set_yscale("log")
    # at least a decade either side of x1: ratios of 1.00004 are agreement, not a trend
    shown = [r for c in right.collections for r in c.get_offsets()[:, 1]] or [1.0]
    right.set_ylim(min(0.1, min(shown) / 3), max(10.0, max(shown) * 3))
    right.yaxis.set_minor_formatter(NullFormatter())
    right.set_xticks(where, names, rotation=30, ha="right")
    right.set_ylabel("|dataset / simulator| per moment")
    right.set_title("ratio at each matching moment")
    return fig, (left, right)


def caption_state_units(result) -> str:
    ev = result.evidence
    if _empty(result):
        return f"state_units: {result.detail}"
    bad = ev["mismatched"]
    found = f"{', '.join(bad)} differ (red)" if bad else "every dimension sits on the ×1 line"
    return (
        "The dataset's proprio over the simulator's state at the same moments (demos reset "
        "with their seeds and replayed): the fitted scale per dimension (left, log axis) and "
        f"the ratio at each of {ev['moments']} moments (right); {found}: {result.status}."
    )
