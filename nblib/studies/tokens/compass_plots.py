"""The verdict's figures of the token compass (``04_token_compass``), each with its
caption: the compass (per token, the mean motion direction in each dataset and its
concentration R) and the cross-camera agreement of what each shared token adds to its
camera's own motion.

Each function takes tables and arrays (never reads a file) and returns ``(fig, axes)``;
every number drawn that metrics.json reports is recorded with
:func:`nblib.plots.show_number`. Helpers of the compass panels live here; those shared
with the other figures in :mod:`~nblib.studies.tokens.plots_common`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from nblib.plots import DOUBLE_COLUMN_IN, new_figure, show_number
from nblib.studies.tokens.plots_common import FEW_PAIRS, _dataset_colours, _label, _short


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
