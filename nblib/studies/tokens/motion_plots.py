"""Figures of the frame pairs' motion by token (``04_token_compass``), each with its
caption where the notebook shows one: the flow scatter, the polar histograms, the gallery
of frame pairs per token, the plotly scatter, and the stride check (how far mean optical
flow agrees with the hand's motion) with its metrics.json records.

Each function takes tables and arrays (never reads a file) and returns ``(fig, axes)``
(the plotly one a plotly figure). A token has the same colour in every figure
(:func:`nblib.plots.category_colors`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from nblib.plots import (
    DOUBLE_COLUMN_IN,
    SINGLE_COLUMN_IN,
    category_colors,
    colors_for,
    new_figure,
    show_number,
    use_style,
)
from nblib.studies.tokens.plots_common import FEW_PAIRS, _label
from nblib.studies.tokens.table import MOTION_LABELS, TokenTable


def plot_flow_scatter(
    table: TokenTable,
    motion: str = "flow",
    group: str = "dataset",
    clip_percentile: float = 99.0,
    seed: int = 0,
):
    """Motion (dx, -dy so up is up) of every pair coloured by token, one panel per dataset.

    Points are drawn in random order, so no token hides under the ones drawn after it; the
    axes of each panel span the ``clip_percentile`` of its |motion| (datasets move by very
    different amounts) and the number of pairs beyond them is written in the panel."""
    df, ids, n_codes = table.df, table.ids, table.n_codes
    vec = table.motion(motion)
    ok = np.isfinite(vec).all(axis=1)
    groups = sorted(df.loc[ok, group].unique())
    fig, axes = new_figure(
        ncols=max(len(groups), 1),
        width=DOUBLE_COLUMN_IN if len(groups) > 1 else SINGLE_COLUMN_IN,
        height=3.2,
        squeeze=False,
    )
    colours = np.array(category_colors(n_codes), dtype=object)
    order = np.random.default_rng(seed).permutation(len(df))
    for ax, g in zip(axes[0], groups, strict=False):
        sel = order[ok[order] & (df[group].to_numpy()[order] == g)]
        ax.scatter(vec[sel, 0], -vec[sel, 1], s=2, alpha=0.5, c=list(colours[ids[sel]]), lw=0)
        lim = max(float(np.percentile(np.abs(vec[sel]), clip_percentile)) * 1.05, 1e-6)
        outside = int((np.abs(vec[sel]) > lim).any(axis=1).sum())
        ax.set_title(f"{_label(g)}: {len(sel):,} pairs, {outside} beyond the axes", fontsize=7)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.axhline(0, color="#999999", lw=0.4)
        ax.axvline(0, color="#999999", lw=0.4)
        ax.set_xlabel(f"{MOTION_LABELS[motion]}: right")
    axes[0, 0].set_ylabel(f"{MOTION_LABELS[motion]}: up")
    used = [c for c in range(n_codes) if (ids[ok] == c).any()]
    if len(used) <= 32:
        handles = [
            Line2D([], [], ls="", marker="o", ms=3, color=colours[c], label=str(c)) for c in used
        ]
        fig.legend(
            handles=handles,
            title="token",
            loc="outside right center",
            fontsize=6,
            title_fontsize=6,
            ncol=1 + len(used) // 17,
        )
    return fig, axes


def caption_flow_scatter(table: TokenTable, motion: str = "flow") -> str:
    groups = table.df["dataset"].nunique()
    return (
        f"{MOTION_LABELS[motion].capitalize()} of every frame pair (right / up in the image), one panel "
        f"per camera ({groups}), coloured by token (one colour per code in every figure): a token "
        "that means one motion is one coloured wedge from the centre."
    )


def plot_polar_histograms(hist: np.ndarray, min_pairs: int = FEW_PAIRS):
    """Per token with moving pairs, the share of its pairs per compass sector (``hist``:
    (n_codes, n_bins) counts, sector 0 centred on "right"), all on one radial scale so a
    token of 5 pairs does not look like one of 1,500; n in each title, tokens with fewer
    than ``min_pairs`` pairs grey, tokens without pairs listed, not drawn."""
    import matplotlib.pyplot as plt

    n_codes, n_bins = hist.shape
    totals = hist.sum(axis=1)
    drawn = [c for c in range(n_codes) if totals[c] > 0]
    cols = max(min(6, len(drawn)), 1)
    rows = max(int(np.ceil(len(drawn) / cols)), 1)
    use_style()
    fig = plt.figure(figsize=(DOUBLE_COLUMN_IN, 1.3 * rows + 0.45), layout="constrained")
    theta = np.deg2rad(np.arange(n_bins) * 360 / n_bins)
    colours = category_colors(n_codes)
    share = hist / np.maximum(totals, 1)[:, None]
    # The scale follows the tokens with enough pairs: a token of 2 pairs has 50-100 % sectors
    # that would shrink every other histogram to a dot (its bars are clipped instead).
    enough = [c for c in drawn if totals[c] >= min_pairs] or drawn
    top = max(float(share[enough].max()) if enough else 1.0, 1e-9)
    axes = []
    for i, code in enumerate(drawn):
        ax = fig.add_subplot(rows, cols, i + 1, projection="polar")
        few = totals[code] < min_pairs
        ax.bar(
            theta, share[code], width=2 * np.pi / n_bins, color="#bbbbbb" if few else colours[code]
        )
        ax.set_ylim(0, top)
        ax.set_xticks(np.deg2rad([0, 90, 180, 270]), ["→", "↑", "←", "↓"], fontsize=6)
        ax.set_yticks([top / 2, top], [f"{top / 2:.0%}", f"{top:.0%}"], fontsize=6, color="#777777")
        ax.tick_params(pad=0)
        ax.set_title(
            f"token {code} (n={int(totals[code]):,})" + (" few" if few else ""), fontsize=7, pad=3
        )
        axes.append(ax)
    empty = [str(c) for c in range(n_codes) if totals[c] == 0]
    note = f"; tokens {', '.join(empty)}: no moving pair" if empty else ""
    fig.suptitle(
        f"Share of each token's moving pairs per direction (one radial scale; grey: < {min_pairs} pairs, "
        f"clipped{note})",
        fontsize=7,
    )
    return fig, axes


def caption_polar_histograms(hist: np.ndarray) -> str:
    totals = hist.sum(axis=1)
    used = int((totals > 0).sum())
    return (
        f"Direction histograms of the {used} tokens with moving frame pairs (bars: share of the "
        "token's pairs per 22.5° sector, one radial scale for all; up is up in the image). A "
        "token that means one motion has one dominant sector; n runs from "
        f"{int(totals[totals > 0].min()):,} to {int(totals.max()):,} pairs per token."
    )


def plot_gallery(rows: list[tuple[int, list[dict]]], arrow_scale: float = 3.0):
    """Frame pairs per token, one row per token: ``rows`` = [(token, pairs)] where each pair
    is ``{"first", "second": (H, W, 3) uint8, "caption": str, "k": int, "flow": (2,) or
    None}``. Frame t, then frame t+k with the pair's mean flow drawn from the image centre
    (``arrow_scale`` times its length, white)."""
    per_token = max([len(pairs) for _, pairs in rows] + [1])
    # per pair: two image columns and a narrow gap column
    ratios = ([1, 1, 0.15] * per_token)[:-1]
    fig, axes = new_figure(
        ncols=len(ratios),
        nrows=len(rows),
        width=7.16,
        height=1.0 * len(rows) + 0.3,
        squeeze=False,
        gridspec_kw={"width_ratios": ratios, "wspace": 0.02},
    )
    for ax in axes.ravel():
        ax.axis("off")
    for row, (code, pairs) in zip(axes, rows, strict=True):
        for j, pair in enumerate(pairs):
            first, second = row[3 * j], row[3 * j + 1]
            first.imshow(pair["first"])
            second.imshow(pair["second"])
            first.set_title(pair["caption"], fontsize=6, loc="left")
            second.set_title(f"t+{pair['k']}", fontsize=6, loc="left")
            flow = pair.get("flow")
            if flow is not None and np.isfinite(flow).all():
                h, w = pair["second"].shape[:2]
                dx, dy = np.asarray(flow) * arrow_scale
                second.annotate(
                    "",
                    xy=(w / 2 + dx, h / 2 + dy),
                    xytext=(w / 2, h / 2),
                    arrowprops={"arrowstyle": "->", "color": "white", "lw": 1.0},
                )
        row[0].text(
            -0.08,
            0.5,
            f"token {code}",
            transform=row[0].transAxes,
            rotation=90,
            va="center",
            ha="right",
            fontsize=6,
        )
    return fig, axes


HOVER_COLUMNS = ("sample_id", "dataset", "demo", "t", "k", "task", "instruction")


def plotly_scatter(table: TokenTable, motion: str = "flow"):
    """Interactive scatter of motion coloured by token; hover shows the pair."""
    import plotly.express as px

    vec = table.motion(motion)
    data = table.df.assign(token=table.ids.astype(str), right=vec[:, 0], up=-vec[:, 1])
    return px.scatter(
        data,
        x="right",
        y="up",
        color="token",
        hover_data=[c for c in HOVER_COLUMNS if c in data.columns],
        labels={"right": f"{MOTION_LABELS[motion]}: right", "up": f"{MOTION_LABELS[motion]}: up"},
        width=600,
        height=500,
    )


def plot_stride_effect(table: pd.DataFrame):
    """Median angle between mean flow and the hand's motion per stride: solid against where
    the hand went, dashed against where the actions commanded it (when known); pairs per
    point written beside it, cameras without a reference named in the legend title. Shows
    metrics.json's ``flow_vs_reference`` (see :func:`stride_records`)."""
    fig, ax = new_figure(width=SINGLE_COLUMN_IN, height=2.3)
    missing = []
    for camera, part in table.groupby("camera", sort=False):
        if part["median_error_deg"].isna().all():
            missing.append(_label(camera))
            continue  # no reference motion in this camera
        colour = colors_for([camera], kind="camera")[camera]
        for row in part.itertuples():
            show_number(
                fig,
                ("flow_vs_reference", camera, str(row.k), "median_error_deg"),
                row.median_error_deg,
            )
            ax.annotate(
                f"n={row.pairs}",
                (row.k, row.median_error_deg),
                xytext=(0, -9),
                textcoords="offset points",
                fontsize=6,
                ha="center",
                color=colour,
            )
        ax.plot(
            part["k"],
            part["median_error_deg"],
            marker="o",
            color=colour,
            label=f"{camera}: where the hand went",
        )
        if "median_commanded_deg" in part and part["median_commanded_deg"].notna().any():
            for row in part.itertuples():
                show_number(
                    fig,
                    ("flow_vs_reference", camera, str(row.k), "median_commanded_deg"),
                    row.median_commanded_deg,
                )
            ax.plot(
                part["k"],
                part["median_commanded_deg"],
                marker="s",
                ls="--",
                color=colour,
                label=f"{camera}: where commanded",
            )
    ax.set_xscale("log", base=2)
    ks = sorted(table["k"].unique())
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("stride k (frames)")
    ax.set_ylabel("median angle (deg)\nflow vs hand motion")
    ax.set_ylim(0, None)
    title = f"no reference: {', '.join(missing)}" if missing else None
    ax.legend(fontsize=6, title=title, title_fontsize=6, loc="lower left")
    return fig, ax


def stride_records(table: pd.DataFrame) -> dict:
    """metrics.json's ``flow_vs_reference``: camera -> stride (text) -> the two medians and
    the pairs behind them (cameras without a reference left out)."""
    out: dict = {}
    for row in table.itertuples():
        if not np.isfinite(row.median_error_deg):
            continue
        entry = {"median_error_deg": float(row.median_error_deg), "pairs": int(row.pairs)}
        commanded = getattr(row, "median_commanded_deg", np.nan)
        if np.isfinite(commanded):
            entry["median_commanded_deg"] = float(commanded)
        out.setdefault(str(row.camera), {})[str(row.k)] = entry
    return out


def caption_stride_effect(table: pd.DataFrame, stride: int) -> str:
    ref = table[table["median_error_deg"].notna()]
    at = ref[ref["k"] == stride]
    value = (
        ""
        if at.empty
        else f"; at the notebook's k = {stride}: {at['median_error_deg'].iloc[0]:.1f}° ({at['camera'].iloc[0]})"
    )
    return (
        "How far mean optical flow can be trusted: median angle between a pair's flow and the "
        "end effector's motion projected into the camera, per stride k (solid: where the hand "
        f"went, dashed: where the actions commanded it){value}."
    )
