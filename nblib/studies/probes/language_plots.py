"""Figure of the instruction probe (:mod:`nblib.studies.probes.language`): where along
the pipeline the instruction's effect is lost, and how much the predicted actions change
when the instruction is replaced.

``plot_language`` takes tables (never reads a file) and returns ``(fig, axes)``, recording
with :func:`nblib.plots.show_number` every number it draws that metrics.json reports;
``caption_language`` writes its caption.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib.plots import DOUBLE_COLUMN_IN, colors_for, new_figure, show_number
from nblib.studies.probes.language import LANGUAGE_TOL, reliance
from nblib.studies.probes.plots_common import THRESHOLD, _log_ticks, _value


def plot_language(
    table: pd.DataFrame,
    ignored_below: float = LANGUAGE_TOL,
    change: dict | None = None,
    stages: pd.DataFrame | None = None,
):
    """Left, where the instruction's effect is lost: per stage (pipeline order) how far
    each variant moves the stage's embedding (1 - its mean cosine with the original's, log
    axis), beside how far the samples are from each other there (1 - mean pairwise cosine,
    grey, from ``stages``); a stage the instruction does not reach (e.g. proprio) is named.
    Right, the predicted actions: change per variant in action stds with its 95 %
    bootstrap interval (``change``, :class:`nblib.verdict.Estimate` per variant) on a log
    axis, the ``ignored_below`` threshold labelled, the variant's similarity in meaning to
    the original under its name."""
    fig, (left, right) = new_figure(
        ncols=2, width=DOUBLE_COLUMN_IN, height=2.9, gridspec_kw={"width_ratios": [3, 2]}
    )
    variants = list(table.index)
    colours = colors_for(variants, "run")
    stage_cols = [c for c in table.columns if c not in ("text_similarity", "action_change_std")]
    x = np.arange(len(stage_cols))
    untouched = []
    for j, stage in enumerate(stage_cols):
        moved = [1 - float(table.loc[v, stage]) for v in variants if pd.notna(table.loc[v, stage])]
        if not moved or max(moved) < 1e-9:
            untouched.append(j)
    for variant in variants:
        xs, ys = [], []
        for j, stage in enumerate(stage_cols):
            cos = table.loc[variant, stage]
            xs.append(j)
            if j in untouched or pd.isna(cos):  # a gap: proprio is a branch, not a step
                ys.append(np.nan)
                continue
            show_number(left, ("language", variant, stage), float(cos))
            ys.append(max(1 - float(cos), 1e-12))
        left.plot(xs, ys, marker="o", ms=3, color=colours[variant], label=variant)
    if stages is not None:
        xs, ys = [], []
        for j, stage in enumerate(stage_cols):
            cos = _value(stages, stage, "cos_mean")
            if cos is not None:
                show_number(left, ("stages", stage, "cos_mean"), cos)
                xs.append(j)
                ys.append(1 - cos)
        left.plot(xs, ys, color="#888888", lw=2.5, alpha=0.6, zorder=0,
                  label="between samples (1 − mean pairwise cosine)")  # fmt: skip
    left.set_yscale("log")
    _log_ticks(left)
    ticks = [s + ("\n(no text input)" if j in untouched else "") for j, s in enumerate(stage_cols)]
    left.set_xticks(x, ticks, rotation=35, ha="right", fontsize=6.5)
    left.set_ylabel("1 − cosine with the original\ninstruction's embedding")
    left.set_title("where the instruction's effect is lost", fontsize=7)
    fig.legend(handles=left.get_lines()[::-1], loc="outside lower center", ncol=5, fontsize=6)

    xr = np.arange(len(variants))
    for i, variant in enumerate(variants):
        value = float(table.loc[variant, "action_change_std"])
        show_number(right, ("language", variant, "action_change_std"), value)
        est = (change or {}).get(variant)
        if est is not None:
            show_number(right, ("language", variant, "action_change_low"), est.low)
            show_number(right, ("language", variant, "action_change_high"), est.high)
            right.errorbar(i, value, yerr=[[value - est.low], [est.high - value]],
                           color=colours[variant], lw=0.9, capsize=2)  # fmt: skip
        right.plot(i, value, marker="o", ms=4, color=colours[variant], lw=0)
        right.annotate(f"{value:.2g}", (i, value), xytext=(4, 0), textcoords="offset points",
                       va="center", fontsize=6)  # fmt: skip
    right.set_yscale("log")
    values = table["action_change_std"].astype(float)
    lows = [e.low for e in (change or {}).values()] or list(values)
    right.set_ylim(min(min(lows), ignored_below) / 3, max(float(values.max()), ignored_below) * 4)
    _log_ticks(right)
    right.axhline(ignored_below, color=THRESHOLD, ls="--", lw=0.9)
    right.annotate(f"ignored below {ignored_below:g} std", (0.02, ignored_below),
                   xycoords=("axes fraction", "data"), xytext=(0, 2),
                   textcoords="offset points", color=THRESHOLD, fontsize=6)  # fmt: skip
    labels = []
    for variant in variants:
        sim = float(table.loc[variant, "text_similarity"])
        show_number(right, ("language", variant, "text_similarity"), sim)
        labels.append(f"{variant}\ntext cos\n{sim:.2f}")
    right.set_xticks(xr, labels, fontsize=6)
    right.set_xlim(-0.5, len(variants) - 0.4)
    right.set_ylabel("action change (action stds)")
    words = reliance(change, ignored_below) if change else None
    right.set_title(
        f"the policy {words.split(' (')[0]} its instruction" if words else "predicted actions",
        fontsize=7,
    )
    return fig, (left, right)


def caption_language(table: pd.DataFrame, change: dict, ignored_below: float = LANGUAGE_TOL):
    worst = max(table.index, key=lambda v: float(table.loc[v, "action_change_std"]))
    e = change[worst]
    return (
        "The same observations with the instruction replaced (paraphrase, another task's, "
        "shuffled words, none). Left: how far each stage's embedding moves (1 − cosine with "
        "the original's), against how far samples are from each other there (grey): where "
        "the coloured lines fall far below the grey one the instruction no longer tells "
        "samples apart. Right: the change of the predicted actions with its 95 % bootstrap "
        f"interval; the largest, {worst}, is {e.value:.2g} [{e.low:.2g}, {e.high:.2g}] std "
        f"against the {ignored_below:g} std threshold: the policy {reliance(change, ignored_below)} "
        "its instruction."
    )
