"""Figures of the token compass (``04_token_compass``): compass, flow scatter, polar
histograms, codebook usage, embeddings, gallery, the stride check and a plotly scatter.

Each function takes tables and arrays (never reads a file) and returns ``(fig, axes)``
(the plotly one a plotly figure); saving goes through ``nblib.run.report.save``. A token
has the same colour in every figure (:func:`nblib.plots.category_colors`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from nblib.plots import PALETTE, category_colors, colors_for, new_figure
from nblib.studies.tokens.table import MOTION_LABELS, TokenTable


def plot_compass(
    table: TokenTable,
    motion: str = "flow",
    group: str = "dataset",
    min_count: int = 5,
    min_magnitude: float = 0.5,
    relative: bool = False,
):
    """One arrow per (token, dataset): the mean of the unit motion directions of the
    token's pairs (direction = the token's mean direction, length = its concentration R).

    ``relative=True`` draws the direction (unit length) of that mean minus the dataset's
    mean over all its pairs: what the token adds to the dataset's own average motion, the
    direction whose agreement across datasets the verdict judges (see
    :func:`nblib.studies.tokens.compass.analyse`). Pairs moving less than ``min_magnitude`` and cells with
    fewer than ``min_count`` pairs are left out."""
    df, ids, n_codes = table.df, table.ids, table.n_codes
    groups = sorted(df[group].unique())
    colours = colors_for(groups)
    cols = int(np.ceil(np.sqrt(n_codes)))
    rows = int(np.ceil(n_codes / cols))
    fig, axes = new_figure(ncols=cols, nrows=rows, width=7.16, height=1.5 * rows, squeeze=False)
    vec = table.motion(motion)
    length = np.hypot(vec[:, 0], vec[:, 1])
    moving = np.isfinite(length) & (length >= min_magnitude) & (length > 0)
    unit = np.zeros_like(vec)
    unit[moving] = vec[moving] / length[moving, None] * np.array([1.0, -1.0])  # up is up
    labels = df[group].to_numpy()
    offset = {
        g: unit[moving & (labels == g)].mean(axis=0)
        if relative and (moving & (labels == g)).any()
        else np.zeros(2)
        for g in groups
    }
    for code, ax in enumerate(axes.ravel()):
        ax.set_xlim(-1.1, 1.1)
        ax.set_ylim(-1.1, 1.1)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.add_patch(Circle((0, 0), 1, fill=False, lw=0.4, color="#999999"))
        if code >= n_codes:
            ax.axis("off")
            continue
        total = 0
        for g in groups:
            sel = (ids == code) & (labels == g) & moving
            total += int(sel.sum())
            if sel.sum() < min_count:
                continue
            x, y = unit[sel].mean(axis=0) - offset[g]
            if relative:  # direction only (the agreement ignores the length), kept visible
                norm = np.hypot(x, y)
                x, y = (x / norm, y / norm) if norm > 0 else (0.0, 0.0)
            ax.annotate(
                "",
                xy=(x, y),
                xytext=(0, 0),
                arrowprops={"arrowstyle": "->", "color": colours[g], "lw": 1.2},
            )
        ax.set_title(f"token {code} (n={total})", fontsize=6)
    handles = [Line2D([], [], color=colours[g], label=g) for g in groups]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(groups), fontsize=6)
    return fig, axes


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
        width=3.5 * min(max(len(groups), 1), 2),
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
        ax.set_title(f"{g} ({len(sel)} pairs, {outside} beyond the axes)", fontsize=6)
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
            fontsize=5,
            ncol=1 + len(used) // 17,
        )
    return fig, axes


def plot_polar_histograms(hist: np.ndarray):
    """Angular histogram (n_codes, n_bins) per token as small polar bar charts."""
    import matplotlib.pyplot as plt

    n_codes, n_bins = hist.shape
    cols = int(np.ceil(np.sqrt(n_codes)))
    rows = int(np.ceil(n_codes / cols))
    fig = plt.figure(figsize=(7.16, 1.6 * rows))
    theta = np.deg2rad(np.arange(n_bins) * 360 / n_bins)
    colours = category_colors(n_codes)
    axes = []
    for code in range(n_codes):
        ax = fig.add_subplot(rows, cols, code + 1, projection="polar")
        ax.bar(
            theta,
            hist[code],
            width=2 * np.pi / n_bins,
            color=colours[code],
            alpha=0.8,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"token {code} (n={int(round(hist[code].sum()))})", fontsize=6)
        axes.append(ax)
    return fig, axes


def plot_codebook_usage(counts: np.ndarray):
    fig, ax = new_figure(width=3.5, height=1.8)
    ax.bar(np.arange(len(counts)), counts, color=PALETTE[0])
    ax.set_xlabel("code")
    ax.set_ylabel("frame pairs")
    return fig, ax


def plot_embedding(points: np.ndarray, labels: np.ndarray, title: str, n_codes: int | None = None):
    """2-D embedding (e.g. UMAP) of vectors coloured by integer label (token id); with
    ``n_codes`` token c has the colour it has in the flow scatter and polar histograms."""
    labels = np.asarray(labels, dtype=np.int64)
    n = int(n_codes if n_codes is not None else labels.max() + 1)
    colours = category_colors(n)
    fig, ax = new_figure(width=3.5, height=3.0)
    few = len(points) < 100  # e.g. a codebook: big markers, each labelled with its id
    for lab in np.unique(labels):
        sel = labels == lab
        ax.scatter(
            points[sel, 0],
            points[sel, 1],
            s=30 if few else 4,
            alpha=0.7,
            color=colours[lab],
            label=str(lab),
        )
    if few:
        for (x, y), lab in zip(points, labels, strict=True):
            ax.annotate(str(lab), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=5)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(np.unique(labels)) <= 20 and not few:
        fig.legend(title="token", fontsize=5, ncol=2, markerscale=2, loc="outside right upper")
    return fig, ax


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
            first.set_title(pair["caption"], fontsize=5, loc="left")
            second.set_title(f"t+{pair['k']}", fontsize=5, loc="left")
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
    the hand went, dashed against where the actions commanded it (when known)."""
    fig, ax = new_figure(width=3.5, height=2.2)
    for camera, part in table.groupby("camera"):
        if part["median_error_deg"].isna().all():
            continue  # no reference motion in this camera
        colour = colors_for([camera])[camera]
        ax.plot(part["k"], part["median_error_deg"], marker="o", color=colour, label=camera)
        if "median_commanded_deg" in part and part["median_commanded_deg"].notna().any():
            ax.plot(
                part["k"],
                part["median_commanded_deg"],
                marker="s",
                ls="--",
                color=colour,
                label=f"{camera}, commanded",
            )
    ax.set_xscale("log", base=2)
    ks = sorted(table["k"].unique())
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("stride k (frames)")
    ax.set_ylabel("median angle (deg)\nflow vs hand motion")
    ax.legend()
    return fig, ax
