"""Figures of the token compass (``04_token_compass``): compass, flow scatter, polar
histograms, codebook usage, embeddings, gallery, the stride check and a plotly scatter.

Each function takes tables and arrays (never reads a file) and returns ``(fig, axes)``
(the plotly one a plotly figure); saving goes through ``nblib.run.report.save``. A token
has the same colour in every figure (:func:`nblib.plots.category_colors`).
"""

from __future__ import annotations

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from nblib.plots import (
    DOUBLE_COLUMN_IN,
    SINGLE_COLUMN_IN,
    category_colors,
    color_for,
    colors_for,
    new_figure,
    show_number,
    use_style,
)
from nblib.studies.tokens.table import MOTION_LABELS, TokenTable


def _dataset_colours(datasets) -> dict:
    """The datasets of notebook 04 are cameras (or tasks): camera colours when they are."""
    return colors_for(sorted(datasets), kind="camera")


def _short(name: str) -> str:
    return {"behindGripper": "wrist"}.get(str(name), str(name))


def _label(name: str) -> str:
    short = _short(name)
    return name if short == name else f"{name} ({short})"


# Tokens with fewer moving pairs than this are drawn pale: their direction is a guess.
FEW_PAIRS = 20


def _compass_axes(ax, rings: bool = True) -> None:
    ax.set_xlim(-1.12, 1.12)
    ax.set_ylim(-1.12, 1.12)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.add_patch(Circle((0, 0), 1, fill=False, lw=0.5, color="#999999"))
    if rings:
        ax.add_patch(Circle((0, 0), 0.5, fill=False, lw=0.4, ls="--", color="#bbbbbb"))
    ax.plot([-1, 1], [0, 0], color="#dddddd", lw=0.4, zorder=0)
    ax.plot([0, 0], [-1, 1], color="#dddddd", lw=0.4, zorder=0)


def _arrow(ax, x: float, y: float, colour: str, **kw) -> None:
    ax.annotate(
        "",
        xy=(x, y),
        xytext=(0, 0),
        arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.3, "mutation_scale": 7, **kw},
    )


def _drawn_tokens(cells: pd.DataFrame, min_count: int) -> tuple[list[int], list[int]]:
    """Tokens with >= min_count moving pairs in some dataset: those in two or more
    datasets (compared by the verdict) first, then the others, each in id order."""
    counted = cells[cells["n"] >= min_count].groupby("token")["dataset"].nunique()
    shared = sorted(int(t) for t in counted.index[counted >= 2])
    alone = sorted(int(t) for t in counted.index[counted == 1])
    return shared, alone


def _not_drawn(cells: pd.DataFrame, n_codes: int, drawn: list[int], min_count: int) -> str:
    totals = cells.groupby("token")["n"].sum()
    left = [c for c in range(n_codes) if c not in drawn]
    if not left:
        return ""
    parts = [f"{c} (n={int(totals.get(c, 0))})" for c in left]
    return f"not drawn, < {min_count} moving pairs in every dataset: tokens " + ", ".join(parts)


def _interval(summary_value: float, estimate) -> str:
    if estimate is None:
        return f"{summary_value:.3f}"
    return f"{estimate.value:.3f} [{estimate.low:.3f}, {estimate.high:.3f}]"


def plot_compass(
    cells: pd.DataFrame,
    per_token: dict,
    summary: dict,
    n_codes: int,
    estimate=None,
    consistent: float = 0.5,
    min_count: int = 5,
):
    """Per token with moving pairs, an arrow per dataset from the same origin: the mean of
    the unit motion directions of its pairs (direction: where the token moves, length: its
    concentration R; circle R = 1, dashed R = 0.5), with each dataset's n and R under it
    and, for tokens in two or more datasets, the largest angle between their arrows. The
    header carries the verdict's first number, the concentration the tokens add (R per
    token against R of all motion, ``estimate`` its interval) and its CONSISTENT bar.

    ``cells`` from :func:`nblib.studies.tokens.compass.compass_cells`, ``per_token`` from
    :func:`~nblib.studies.tokens.compass.per_token` (as in metrics.json), ``summary`` the
    across-datasets summary. Tokens with fewer than ``min_count`` moving pairs in every
    dataset are listed, not drawn."""
    shared, alone = _drawn_tokens(cells, min_count)
    drawn = shared + alone
    colours = _dataset_colours(cells["dataset"].unique())
    datasets = sorted(colours)
    cols = max(min(6, len(drawn)), 1)
    rows = max(int(np.ceil(len(drawn) / cols)), 1)
    fig, axes = new_figure(
        ncols=cols, nrows=rows, width=DOUBLE_COLUMN_IN, height=1.55 * rows + 0.75, squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    for i, (code, ax) in enumerate(zip(drawn, axes.ravel(), strict=False)):
        ax.axis("on")
        _compass_axes(ax)
        info = per_token[str(code)]
        lines = []
        for d in datasets:
            n = info["pairs"].get(d, 0)
            if n >= min_count:
                r = show_number(
                    ax, ("per_token", str(code), "resultant_length", d), info["resultant_length"][d]
                )
                angle = np.radians(info["angle_deg"][d])
                few = sum(info["pairs"].values()) < FEW_PAIRS
                _arrow(
                    ax, r * np.cos(angle), r * np.sin(angle), colours[d], alpha=0.35 if few else 1
                )
                lines.append((f"{_short(d)} n={n:,} R={r:.2f}", colours[d]))
            else:
                lines.append(
                    (f"{_short(d)} n={n} (not drawn)" if n else f"{_short(d)}: none", "#888888")
                )
            if n:
                show_number(ax, ("per_token", str(code), "pairs", d), n)
        title = f"token {code}" + (
            f" (< {FEW_PAIRS} pairs)" if sum(info["pairs"].values()) < FEW_PAIRS else ""
        )
        if info.get("compared"):
            gap = show_number(
                ax, ("per_token", str(code), "angle_between_deg"), info["angle_between_deg"]
            )
            title += f": {gap:.0f}° apart"
        ax.set_title(
            title, fontsize=7, pad=2, color="#000000" if info.get("compared") else "#444444"
        )
        for j, (text, colour) in enumerate(lines):
            ax.text(
                0.5,
                -0.04 - 0.13 * j,
                text,
                transform=ax.transAxes,
                ha="center",
                va="top",
                fontsize=6,
                color=colour,
            )
        if i == 0:
            ax.text(0.72, 0.72, "R=1", fontsize=6, color="#777777", ha="left", va="bottom")
            ax.text(0.36, 0.36, "0.5", fontsize=6, color="#999999", ha="left", va="bottom")
    adjusted = summary["direction_resultant_length_adjusted"]
    show_number(fig, "direction_resultant_length_adjusted", adjusted)
    if estimate is not None:
        show_number(fig, "direction_resultant_length_adjusted_low", estimate.low)
        show_number(fig, "direction_resultant_length_adjusted_high", estimate.high)
    raw = show_number(
        fig,
        ("across_datasets", "direction_resultant_length"),
        summary["direction_resultant_length"],
    )
    pooled = show_number(
        fig,
        ("across_datasets", "direction_resultant_length_pooled"),
        summary["direction_resultant_length_pooled"],
    )
    fig.suptitle(
        f"Verdict's concentration: R per token {raw:.2f} vs {pooled:.2f} for all motion → "
        f"{_interval(adjusted, estimate)} (CONSISTENT needs ≥ {consistent}).\n"
        f"Tokens {', '.join(map(str, shared)) or 'none'}: in {len(datasets)} datasets; the rest in one.",
        fontsize=7,
    )
    handles = [Line2D([], [], color=colours[d], label=_label(d)) for d in datasets]
    footer = _not_drawn(cells, n_codes, drawn, min_count)
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=len(datasets) + 1,
        fontsize=6,
        title=("arrow: mean direction, length R. " + footer)
        if footer
        else "arrow: mean direction, length R",
        title_fontsize=6,
    )
    return fig, axes


def caption_compass(summary: dict, per_token: dict, estimate=None, consistent: float = 0.5) -> str:
    """The compass's caption, with the verdict's concentration and the angles between
    datasets of the shared tokens."""
    gaps = [
        f"{t}: {e['angle_between_deg']:.0f}°" for t, e in per_token.items() if e.get("compared")
    ]
    return (
        "Mean motion direction of each token's moving frame pairs per camera (arrow; length = "
        "resultant length R, 1 = all pairs move the same way; up is up in the image). "
        f"The tokens add {_interval(summary['direction_resultant_length_adjusted'], estimate)} "
        f"concentration beyond all motion (bar {consistent}); angle between the cameras' "
        f"arrows of the shared tokens: {', '.join(gaps) or 'none shared'}."
    )


def plot_compass_relative(
    cells: pd.DataFrame,
    per_token: dict,
    summary: dict,
    estimate=None,
    consistent: float = 0.5,
    inconsistent: float = 0.2,
    min_count: int = 5,
):
    """The verdict's agreement. Top: per token seen in two or more datasets, the direction
    of what it adds to each dataset's own motion (its mean unit direction minus the
    dataset's over all pairs; unit arrows: the agreement takes directions only). Bottom:
    per token the agreement of those directions (filled; with two datasets cos(angle/2))
    and of the plain ones (open), against the shuffled-token chance and the levels at
    which the chance-corrected agreement reaches ``consistent`` / ``inconsistent``; the
    diamond is the verdict's row-weighted agreement with its interval."""
    shared, _ = _drawn_tokens(cells, min_count)
    colours = _dataset_colours(cells["dataset"].unique())
    datasets = sorted(colours)
    cols = max(min(8, len(shared)), 1)
    rows = max(int(np.ceil(len(shared) / cols)), 1)
    fig = new_figure(width=DOUBLE_COLUMN_IN, height=1.25 * rows + 0.45 + 0.22 * len(shared) + 1.0)[
        0
    ]
    fig.delaxes(fig.axes[0])
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.05 * rows + 0.3, 0.22 * len(shared) + 1.15])
    axes = np.atleast_1d(top.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes:
        ax.axis("off")
    for code, ax in zip(shared, axes, strict=False):
        ax.axis("on")
        _compass_axes(ax, rings=False)
        part = cells[(cells["token"] == code) & (cells["n"] >= min_count)]
        for _, row in part.iterrows():
            angle = np.radians(row["rel_angle_deg"])
            _arrow(ax, np.cos(angle), np.sin(angle), colours[row["dataset"]])
        gap = show_number(
            fig,
            ("per_token", str(code), "centred_angle_between_deg"),
            per_token[str(code)]["centred_angle_between_deg"],
        )
        ax.set_title(f"token {code}: {gap:.0f}° apart", fontsize=7, pad=2)
    top.suptitle(
        "What each shared token adds to its camera's own mean motion (the directions the verdict compares)",
        fontsize=7,
    )
    ax = bottom.subplots()
    chance = show_number(fig, ("across_datasets", "agreement_chance"), summary["agreement_chance"])
    level = {k: chance + k * (1.0 - chance) for k in (consistent, inconsistent)}
    y = np.arange(len(shared))[::-1]
    for yi, code in zip(y, shared, strict=True):
        info = per_token[str(code)]
        a = show_number(fig, ("per_token", str(code), "agreement"), info["agreement"])
        ax.plot([a], [yi], "o", color="#333333", ms=4)
        ax.plot([info["plain_agreement"]], [yi], "o", mfc="none", color="#333333", ms=4)
        n = " / ".join(f"{_short(d)} {info['pairs'].get(d, 0):,}" for d in datasets)
        ax.text(1.005, yi, f"n: {n}", va="center", fontsize=6, transform=ax.get_yaxis_transform())
    mean = show_number(fig, ("across_datasets", "agreement"), summary["agreement"])
    yd = -1
    if estimate is not None:
        lo, hi = (chance + v * (1.0 - chance) for v in (estimate.low, estimate.high))
        ax.plot([lo, min(hi, 1.0)], [yd, yd], color="#000000", lw=1.2)
        show_number(fig, "agreement_adjusted_low", estimate.low)
        show_number(fig, "agreement_adjusted_high", estimate.high)
    ax.plot([mean], [yd], "D", color="#000000", ms=5)
    adjusted = show_number(fig, "agreement_adjusted", summary["agreement_adjusted"])
    ax.axvline(chance, color="#999999", ls=":", lw=0.9)
    ax.axvline(level[inconsistent], color="#777777", ls="--", lw=0.8)
    ax.axvline(level[consistent], color="#000000", ls="--", lw=0.8)
    ax.set_yticks([*y, yd], [f"token {c}" for c in shared] + ["all (verdict)"])
    ax.set_ylim(yd - 0.7, len(shared) - 0.3)
    ax.set_xlim(
        max(0.0, min(chance, *(per_token[str(c)]["plain_agreement"] for c in shared), 1.0) - 0.05),
        1.0,
    )
    ax.set_xlabel("agreement of the cameras' directions (1 = identical)")
    if len(datasets) == 2:  # agreement = cos(angle / 2): the angle between the two cameras
        sec = ax.secondary_xaxis(
            "top",
            functions=(
                lambda a: 2 * np.degrees(np.arccos(np.clip(a, -1, 1))),
                lambda d: np.cos(np.radians(np.asarray(d)) / 2),
            ),
        )
        sec.set_xlabel("angle between the two cameras (deg)", fontsize=7)
        sec.set_xticks([0, 30, 45, 60, 75, 90, 120])
    rows_compared = show_number(fig, ("across_datasets", "rows_compared"), summary["rows_compared"])
    moving = show_number(
        fig, ("across_datasets", "rows_with_direction"), summary["rows_with_direction"]
    )
    handles = [
        Line2D([], [], ls="", marker="o", color="#333333", label="centred (verdict)"),
        Line2D([], [], ls="", marker="o", mfc="none", color="#333333", label="plain"),
        Line2D(
            [],
            [],
            ls="",
            marker="D",
            color="#000000",
            label=f"all: {mean:.3f} → {_interval(adjusted, estimate)}",
        ),
        Line2D([], [], ls=":", color="#999999", label=f"shuffled tokens {chance:.2f}"),
        Line2D([], [], ls="--", color="#000000", label=f"corrected {consistent} (CONSISTENT)"),
        Line2D([], [], ls="--", color="#777777", label=f"corrected {inconsistent} (INCONSISTENT)"),
    ]
    bottom.legend(
        handles=handles,
        loc="outside left center",
        fontsize=6,
        title=(
            f"{len(shared)} tokens, {rows_compared:,} of\n{moving:,} moving pairs ({rows_compared / moving:.0%})"
        ),
        title_fontsize=6,
    )
    return fig, (axes, ax)


def caption_compass_relative(summary: dict, estimate=None, consistent: float = 0.5) -> str:
    share = summary["rows_compared"] / summary["rows_with_direction"]
    return (
        "Cross-camera agreement, as the verdict measures it: for each token both cameras use, the "
        "direction it adds to its camera's mean motion (top) and how well the cameras agree on "
        f"it (bottom; open: plain directions). Agreement {summary['agreement']:.3f} against "
        f"{summary['agreement_chance']:.3f} for shuffled tokens gives "
        f"{_interval(summary['agreement_adjusted'], estimate)} chance-corrected (bar {consistent}), "
        f"over {summary['codes_compared']} tokens holding {share:.0%} of the moving pairs."
    )


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


def plot_codebook_usage(counts: pd.DataFrame, summary: dict):
    """Frame pairs per code and dataset (``counts``: codes x datasets), bars side by side
    in the dataset colours on a log scale (a code used twice stays visible), every code
    ticked; dead codes marked ×. Perplexity and active codes from the across-datasets
    ``summary`` (as in metrics.json) in the title."""
    n_codes = len(counts)
    datasets = list(counts.columns)
    colours = _dataset_colours(datasets)
    fig, ax = new_figure(width=SINGLE_COLUMN_IN, height=2.3)
    width = 0.8 / max(len(datasets), 1)
    x = np.arange(n_codes)
    for j, d in enumerate(datasets):
        values = counts[d].to_numpy()
        ax.bar(
            x - 0.4 + width * (j + 0.5),
            np.where(values > 0, values, np.nan),
            width,
            color=colours[d],
            label=_label(d),
        )
    dead = [c for c in range(n_codes) if counts.iloc[c].sum() == 0]
    ax.plot(dead, [0.7] * len(dead), "x", color="#777777", ms=4, label="dead code")
    ax.set_yscale("log")
    ax.set_ylim(0.5, max(float(counts.to_numpy().max()), 1) * 2.5)
    ax.set_yticks([1, 10, 100, 1000, 10000][: 2 + int(np.log10(max(counts.to_numpy().max(), 1)))])
    ax.set_yticklabels([f"{int(t):,}" for t in ax.get_yticks()])
    ax.minorticks_off()
    ax.set_xticks(x, [str(c) for c in x], fontsize=6)
    for c in dead:
        ax.get_xticklabels()[c].set_color("#999999")
    ax.set_xlim(-0.6, n_codes - 0.4)
    ax.set_xlabel("code")
    ax.set_ylabel("frame pairs")
    perplexity = show_number(fig, "codebook_perplexity", summary["codebook_perplexity"])
    active = show_number(
        fig, ("across_datasets", "codebook_active_codes"), summary["codebook_active_codes"]
    )
    ax.set_title(f"perplexity {perplexity:.1f} of {n_codes}, {int(active)} codes used", fontsize=7)
    ax.legend(fontsize=6, loc="upper right", ncol=1)
    return fig, ax


def caption_codebook_usage(counts: pd.DataFrame, summary: dict) -> str:
    shared = int((counts > 0).sum(axis=1).ge(2).sum())
    return (
        f"Frame pairs per code and camera (log scale; × = dead code). {summary['codebook_active_codes']} "
        f"of {len(counts)} codes are used (perplexity {summary['codebook_perplexity']:.1f}); "
        f"{shared} of them by more than one camera, the others by one camera only."
    )


def plot_codebook_similarity(codebook: np.ndarray, counts: np.ndarray):
    """Cosine similarity between the codebook vectors (codes x codes, -1..1), dead codes'
    labels grey: which codes the model treats as alike."""
    vectors = np.asarray(codebook, dtype=float)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sim = unit @ unit.T
    n = len(sim)
    fig, ax = new_figure(width=SINGLE_COLUMN_IN, height=3.0)
    image = ax.imshow(sim, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.grid(False)
    ticks = np.arange(n)
    ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=6)
    ax.set_yticks(ticks, [str(t) for t in ticks], fontsize=6)
    for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        for c, label in enumerate(labels):
            if counts[c] == 0:
                label.set_color("#aaaaaa")
    ax.set_xlabel("code (grey: dead)")
    ax.set_ylabel("code")
    fig.colorbar(image, ax=ax, label="cosine similarity", shrink=0.85)
    return fig, ax


def caption_codebook_similarity(codebook: np.ndarray) -> str:
    vectors = np.asarray(codebook, dtype=float)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sim = unit @ unit.T
    off = sim[~np.eye(len(sim), dtype=bool)]
    return (
        f"Cosine similarity between the {len(sim)} codebook vectors (red alike, blue opposite); "
        f"off-diagonal similarities run from {off.min():.2f} to {off.max():.2f}."
    )


def plot_latent_training(history, codebook_size: int, smooth: int = 20):
    """What the latent-action model learned: reconstruction error of frame t+k against
    copying frame t (below the copy line the tokens carry motion), and the
    codebook's perplexity and active codes per batch against the codebook size."""
    steps = history.column("step")
    fig, (ax_rec, ax_code) = new_figure(ncols=2, width=DOUBLE_COLUMN_IN, height=2.2)

    def smoothed(values):
        if len(values) < smooth:
            return steps, values
        kernel = np.ones(smooth) / smooth
        return steps[smooth - 1 :], np.convolve(values, kernel, mode="valid")

    run = color_for("latent actions", kind="run")
    ax_rec.plot(*smoothed(history.column("recon")), color=run, label="reconstruction (tokens)")
    ax_rec.plot(*smoothed(history.column("copy")), color="#777777", ls="--", label="copy frame t")
    # linear: the errors span a factor of ~2-3, where a log axis labels one or two ticks
    ax_rec.yaxis.set_major_formatter(mticker.FormatStrFormatter("%.4f"))
    ax_rec.set_xlabel("step")
    ax_rec.set_ylabel(f"MSE of frame t+k\n(mean of {smooth} batches)")
    ax_rec.legend(fontsize=6)
    ax_code.plot(*smoothed(history.column("perplexity")), color=run, label="perplexity")
    ax_code.plot(
        steps, history.column("active"), color=run, lw=0.6, alpha=0.5, label="active codes"
    )
    ax_code.axhline(
        codebook_size, color="#777777", ls="--", lw=0.8, label=f"codebook size {codebook_size}"
    )
    ax_code.set_ylim(0, codebook_size * 1.1)
    ax_code.set_xlabel("step")
    ax_code.set_ylabel("codes per batch")
    ax_code.legend(fontsize=6, loc="lower right")
    return fig, (ax_rec, ax_code)


def caption_latent_training(final: dict, codebook_size: int) -> str:
    return (
        "Training of the latent-action model: reconstruction error of frame t+k from frame t and "
        f"the tokens against copying frame t (left; final {final['recon']:.5f} vs "
        f"{final['copy']:.5f}), and codebook perplexity per batch (right; final "
        f"{final['perplexity']:.1f} of {codebook_size})."
    )


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
            ax.annotate(str(lab), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=6)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(np.unique(labels)) <= 20 and not few:
        fig.legend(
            title="token",
            fontsize=6,
            title_fontsize=6,
            ncol=2,
            markerscale=2,
            loc="outside right upper",
        )
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
