"""Figures of the stages (:mod:`nblib.studies.probes.stages`): cosine-similarity heatmaps
per stage, the spread the verdict judges per stage (collapse) with the centred effective
rank, and a 2-D embedding (PCA or UMAP) of every stage coloured by task or timestep.

Each ``plot_*`` function takes arrays and tables (never reads a file) and returns
``(fig, axes)``, recording with :func:`nblib.plots.show_number` every number it draws that
metrics.json reports; each ``caption_*`` function writes that figure's caption.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from nblib.plots import DOUBLE_COLUMN_IN, colors_for, new_figure, show_number
from nblib.studies.probes.plots_common import FAIL, GREY, NEUTRAL, THRESHOLD, _log_ticks, _value
from nblib.studies.probes.stages import INPUT_STAGES

# Seed 001's collapsed VLM (mean pairwise cosine 0.997): a spread of about 0.003, drawn as
# a reference on the spread axis (a quoted number, not one this run measures).
SEED_001_VLM_SPREAD = 1 - 0.997


def _grid(n: int, cell: float = 1.6, extra: float = 0.55, **kw):
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    height = min(cell * rows + extra, 9.0)
    fig, axes = new_figure(
        ncols=cols, nrows=rows, width=DOUBLE_COLUMN_IN, height=height, squeeze=False, **kw
    )
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes


def _cosine_matrix(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    return unit @ unit.T


# --------------------------------------------------------------------------- heatmaps


def plot_cosine_heatmaps(
    representations: dict[str, np.ndarray],
    order: np.ndarray,
    groups: list,
    table: pd.DataFrame | None = None,
    collapse_spread: float | None = None,
):
    """Pairwise cosine similarity of the samples at every stage, samples sorted by ``order``
    (task, then timestep): a colour strip per task block on the left and top edges (the
    suite's task colours, named in the legend), one colour scale (-1..1), and the stage's
    spread (the number the verdict judges) in its title when ``table`` is given, the
    verdict's threshold ``collapse_spread`` above them."""
    from matplotlib.colors import ListedColormap

    fig, axes = _grid(len(representations))
    labels = np.asarray(groups)[order]
    tasks = list(dict.fromkeys(labels.tolist()))
    colours = colors_for(tasks, "task")
    strip = np.array([[tasks.index(t)] for t in labels])
    task_cmap = ListedColormap([colours[t] for t in tasks])
    n = len(labels)
    bounds = np.flatnonzero(labels[1:] != labels[:-1]) + 0.5
    image = None
    for ax, (name, x) in zip(axes.ravel(), representations.items(), strict=False):
        image = ax.imshow(
            _cosine_matrix(x[order]),
            vmin=-1,
            vmax=1,
            cmap="RdBu_r",
            interpolation="nearest",
            extent=(-0.5, n - 0.5, n - 0.5, -0.5),
        )
        pad = max(1.5, 0.05 * n)  # the task strips, outside the matrix
        kw = dict(cmap=task_cmap, vmin=0, vmax=len(tasks) - 1, interpolation="nearest")
        ax.imshow(strip, extent=(-0.5 - pad, -0.5, n - 0.5, -0.5), **kw)
        ax.imshow(strip.T, extent=(-0.5, n - 0.5, -0.5, -0.5 - pad), **kw)
        ax.set_xlim(-0.5 - pad, n - 0.5)
        ax.set_ylim(n - 0.5, -0.5 - pad)
        for b in bounds:
            ax.plot([b, b], [-0.5, n - 0.5], color="k", lw=0.3)
            ax.plot([-0.5, n - 0.5], [b, b], color="k", lw=0.3)
        spread = _value(table, name, "spread")
        title = name + (" (input)" if name in INPUT_STAGES else "")
        if spread is not None:
            show_number(ax, ("stages", name, "spread"), spread)
            title += f": spread {spread:.3g}"
        ax.set_title(title, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="cosine (uncentred)")
    if table is not None and collapse_spread is not None:
        show_number(fig, "collapse_spread", collapse_spread)
        fig.suptitle(
            f"the verdict calls a stage collapsed when its spread is below {collapse_spread:g}",
            fontsize=7,
        )
    handles = [Patch(color=colours[t], label=t) for t in tasks]
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(len(tasks), 5), fontsize=6,
        title="task blocks (left and top strips)", title_fontsize=6,
    )  # fmt: skip
    return fig, axes


def caption_cosine_heatmaps(table: pd.DataFrame, collapse_spread: float) -> str:
    learned = [s for s in table.index if s not in INPUT_STAGES]
    least = min(learned, key=lambda s: _value(table, s, "spread") or np.inf)
    return (
        "Cosine similarity between every pair of probe samples at each stage (rows and "
        "columns: samples sorted by task, then timestep; task blocks marked by the colour "
        "strips); dark red everywhere means the samples look alike, blocks along the "
        "diagonal mean tasks stay apart. Uncentred cosine is dominated by a shared offset, "
        "so the verdict reads the spread in each title: the least varied learned stage, "
        f"{least}, has {_value(table, least, 'spread'):.3g} against the collapse threshold "
        f"{collapse_spread:g}."
    )


# --------------------------------------------------------------------------- collapse


def plot_collapse(table: pd.DataFrame, collapse_spread: float, found: dict | None = None):
    """Left, what the verdict judges: per stage (pipeline order) its spread with the 95 %
    bootstrap interval, on a log axis, the collapse threshold drawn and labelled, and
    1 - mean pairwise cosine beside it (the same quantity for equal-norm rows: why a mean
    cosine of 0.97 is not collapse); collapsed stages (``found``, the verdict's
    :func:`nblib.studies.probes.collapse`) are marked when there are any, raw images greyed
    (never judged). Right, the centred effective rank: in how many directions the samples
    vary, not how much (the verdict does not read it)."""
    fig, (left, right) = new_figure(
        ncols=2, width=DOUBLE_COLUMN_IN, height=3.0, gridspec_kw={"width_ratios": [3, 2]}
    )
    stages = list(table.index)
    x = np.arange(len(stages))
    found = found or {}
    collapsed, uncertain = set(found.get("collapsed", [])), set(found.get("uncertain", []))
    show_number(left, "collapse_spread", collapse_spread)
    floor = collapse_spread / 10
    for i, stage in enumerate(stages):
        spread = _value(table, stage, "spread")
        if spread is None:  # every row zero: nothing varies
            left.plot(i, floor, marker="v", color=FAIL, ms=5)
            continue
        show_number(left, ("stages", stage, "spread"), spread)
        judged = stage not in INPUT_STAGES
        colour = FAIL if stage in collapsed else (NEUTRAL if judged else GREY)
        left.bar(i, spread, color=colour, width=0.7, hatch=None if judged else "//",
                 edgecolor="white" if judged else "#888888", lw=0)  # fmt: skip
        low, high = _value(table, stage, "spread_low"), _value(table, stage, "spread_high")
        if low is not None and high is not None:
            show_number(left, ("stages", stage, "spread_low"), low)
            show_number(left, ("stages", stage, "spread_high"), high)
            left.errorbar(i, spread, yerr=[[spread - low], [high - spread]], color="k",
                          lw=0.8, capsize=2)  # fmt: skip
        cos = _value(table, stage, "cos_mean")
        if cos is not None and 1 - cos > 0:
            show_number(left, ("stages", stage, "cos_mean"), cos)
            left.plot(i + 0.28, 1 - cos, marker="D", ms=3, color="#0072B2", lw=0)
        label = f"{spread:.3f}" if spread < 0.1 else f"{spread:.2f}"
        top = max(spread, high if high is not None else spread)  # above the whisker
        left.annotate(label, (i, top), xytext=(0, 2), textcoords="offset points",
                      ha="center", va="bottom", fontsize=6)  # fmt: skip
    left.set_yscale("log")
    values = pd.to_numeric(table["spread"], errors="coerce")
    bottom = min(SEED_001_VLM_SPREAD / 2, floor, float(np.nanmin(values)) / 2)
    left.set_ylim(bottom, 2.0)
    _log_ticks(left)
    left.axhline(collapse_spread, color=THRESHOLD, lw=0.9, ls="--")
    left.axhline(SEED_001_VLM_SPREAD, color="#888888", lw=0.7, ls=":")
    left.set_xticks(x, stages, rotation=35, ha="right", fontsize=6.5)
    left.set_ylabel("spread (share of energy\nthat differs between samples)")
    judged = "collapsed: " + ", ".join(sorted(collapsed)) if collapsed else "none collapsed"
    left.set_title(f"what the verdict judges: spread, 95 % CI ({judged})", fontsize=7)
    handles = [
        Line2D([], [], color=THRESHOLD, ls="--", label=f"collapsed below {collapse_spread:g} "
               f"(≈ mean cosine {1 - collapse_spread:g})"),
        Line2D([], [], color="#888888", ls=":", label="seed 001's collapsed VLM (cosine 0.997)"),
        Line2D([], [], color="#0072B2", marker="D", ms=3, lw=0,
               label="1 − mean pairwise cosine (≈ spread)"),
        Patch(facecolor=GREY, hatch="//", edgecolor="#888888", label="input pixels: not judged"),
    ]  # fmt: skip
    if collapsed:
        handles.append(Patch(color=FAIL, label="collapsed (whole CI below threshold)"))
    if uncertain:
        handles.append(Line2D([], [], lw=0, label="CI straddles: " + ", ".join(sorted(uncertain))))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=6)

    ranks = pd.to_numeric(table["effective_rank_centered"], errors="coerce")
    for i, stage in enumerate(stages):
        rank = _value(table, stage, "effective_rank_centered")
        if rank is None:
            continue
        show_number(right, ("stages", stage, "effective_rank_centered"), rank)
        judged = stage not in INPUT_STAGES
        right.bar(i, rank, color=NEUTRAL if judged else GREY, width=0.7,
                  hatch=None if judged else "//", edgecolor="#888888", lw=0)  # fmt: skip
    learned = [s for s in stages if s not in INPUT_STAGES and np.isfinite(ranks[s])]
    if learned:
        low = min(learned, key=lambda s: ranks[s])
        spread = _value(table, low, "spread")
        verdict = "collapsed" if low in collapsed else "not collapsed"
        text = f"{low}: {ranks[low]:.2f} directions,\nlow-dimensional but {verdict}"
        if spread is not None:
            text += f"\n(spread {spread:.3f} vs {collapse_spread:g})"
        right.annotate(text, (stages.index(low), ranks[low]), xytext=(0.98, 0.97),
                       textcoords="axes fraction", ha="right", va="top", fontsize=6,
                       arrowprops=dict(arrowstyle="->", lw=0.6))  # fmt: skip
    right.set_ylim(0, float(np.nanmax(ranks)) * 1.45 + 0.5)
    right.set_xticks(x, stages, rotation=35, ha="right", fontsize=6.5)
    right.set_ylabel("centred effective rank")
    right.set_title("in how many directions they differ (not judged)", fontsize=7)
    return fig, (left, right)


def caption_collapse(table: pd.DataFrame, collapse_spread: float, found: dict) -> str:
    least = found["least_spread"]
    collapsed = found["collapsed"]
    verdict = f"collapsed: {', '.join(collapsed)}" if collapsed else "no learned stage is collapsed"
    learned = [s for s in table.index if s not in INPUT_STAGES]
    alike = max(learned, key=lambda s: _value(table, s, "cos_mean") or -np.inf)
    return (
        "Left: per stage, the share of its energy that differs between samples (spread, 95 % "
        "bootstrap interval; log axis), the number the verdict judges against the dashed "
        f"threshold {collapse_spread:g}; the diamonds (1 − mean pairwise cosine) show the "
        f"same scale: {alike}'s mean cosine {_value(table, alike, 'cos_mean'):.3f} is a "
        f"spread of {_value(table, alike, 'spread'):.3f}. Right: the centred effective rank, "
        "how many directions the variation uses, not how much of it there is. "
        f"Here {verdict}; the least varied learned stage is {least} "
        f"({_value(table, least, 'spread'):.3f})."
    )


# --------------------------------------------------------------------------- PCA


def plot_embeddings(
    points: dict[str, np.ndarray],
    values,
    title: str,
    categorical: bool = True,
    variance: dict[str, np.ndarray] | None = None,
):
    """A 2-D embedding per stage, coloured by ``values`` (one per sample): task names
    (categorical, the suite's task colours) or timesteps (continuous). ``variance`` (per
    stage, the share of variance of the two axes: a PCA) labels the axes with it."""
    fig, axes = _grid(len(points))
    values = np.asarray(values)
    colours = colors_for(sorted(set(values.tolist())), "task") if categorical else None
    scatter = None
    for ax, (name, xy) in zip(axes.ravel(), points.items(), strict=False):
        if categorical:
            for label, colour in colours.items():
                sel = values == label
                ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=colour, label=str(label), lw=0)
        else:
            scatter = ax.scatter(xy[:, 0], xy[:, 1], s=6, c=values, cmap="viridis", lw=0)
        ax.set_title(name, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        if variance is not None and name in variance:
            pc1, pc2 = (float(v) for v in variance[name][:2])
            show_number(ax, ("pca_variance", name, "pc1"), pc1)
            show_number(ax, ("pca_variance", name, "pc2"), pc2)
            ax.set_xlabel(f"PC1 ({100 * pc1:.0f} %)", fontsize=6, labelpad=1)
            ax.set_ylabel(f"PC2 ({100 * pc2:.0f} %)", fontsize=6, labelpad=1)
    if categorical:
        handles, labels = axes.ravel()[0].get_legend_handles_labels()
        fig.legend(
            handles, labels, loc="outside lower center", ncol=min(len(labels), 5), fontsize=6,
            markerscale=1.5,
        )  # fmt: skip
    elif scatter is not None:
        fig.colorbar(scatter, ax=axes.ravel().tolist(), shrink=0.6, label="timestep")
    fig.suptitle(title, fontsize=8)
    return fig, axes


def caption_embeddings(method: str, colour: str, variance: dict | None, table=None) -> str:
    what = (
        "the first two principal components (share of the stage's variance on each axis)"
        if method == "pca"
        else "a UMAP (distances between clusters and their sizes carry no meaning)"
    )
    by = "task" if colour == "task" else "timestep within the episode"
    text = (
        f"Every probe sample at every stage projected on {what}, coloured by {by}: "
        "separated colours mean the stage still tells them apart."
    )
    if variance and "projector" in variance:
        text += (
            f" The projector's first component carries {100 * float(variance['projector'][0]):.0f} % "
            "of its variance."
        )
    return text
