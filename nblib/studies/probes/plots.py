"""Figures of the conditioning probes (``02_conditioning_probes``): cosine-similarity heatmaps
per stage, the spread the verdict judges per stage, PCA of every stage coloured by task or
timestep, where the instruction's effect is lost, the wiring checks and the heads alone.

Each ``plot_*`` function takes arrays and tables (never reads a file) and returns
``(fig, axes)``; it records with :func:`nblib.plots.show_number` every number it draws that
metrics.json reports, at that number's path there. Each ``caption_*`` function beside it
writes the figure's caption from the same inputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from nblib.plots import (
    DOUBLE_COLUMN_IN,
    SINGLE_COLUMN_IN,
    color_for,
    colors_for,
    new_figure,
    show_number,
)
from nblib.studies.probes.language import LANGUAGE_TOL, reliance
from nblib.studies.probes.stages import INPUT_STAGES

# Seed 001's collapsed VLM (mean pairwise cosine 0.997): a spread of about 0.003, drawn as
# a reference on the spread axis (a quoted number, not one this run measures).
SEED_001_VLM_SPREAD = 1 - 0.997
NEUTRAL = "#4d4d4d"  # bars of one series: no colour meaning beyond "measured"
GREY = "#bbbbbb"  # inputs, shown but not judged
THRESHOLD = "#D55E00"  # every threshold line of this notebook's figures
FAIL = "#D55E00"
# A constant predictor of N(0, 1) targets (predicting 0) scores E|x| = sqrt(2 / pi).
CONSTANT_MAE = float(np.sqrt(2 / np.pi))


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


def _value(table: pd.DataFrame | None, stage: str, column: str) -> float | None:
    if table is None or column not in table.columns or stage not in table.index:
        return None
    value = pd.to_numeric(table.loc[stage, column], errors="coerce")
    return float(value) if np.isfinite(value) else None


def _log_ticks(ax, axis: str = "y") -> None:
    """Labelled ticks at every decade and at 2 and 5 times it, so a log axis reads."""
    from matplotlib.ticker import LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(base=10, subs=(1.0,), numticks=12))
    target.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0), numticks=12))
    target.set_minor_formatter(NullFormatter())


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


# --------------------------------------------------------------------------- language


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


# --------------------------------------------------------------------------- wiring


def plot_wiring(checks: pd.DataFrame):
    """The pipeline checks: per module the gradient norm after one backward pass of the
    policy's loss (log axis; a frozen module's zero gradient marked at the axis, as it
    should be), failed checks marked, and the LoRA check's numbers in the title."""
    rows = checks[checks["name"] != "lora"] if "name" in checks else checks.iloc[0:0]
    lora = checks[checks["name"] == "lora"] if "name" in checks else checks.iloc[0:0]
    height = 1.1 + 0.25 * max(len(rows), 1)
    fig, ax = new_figure(width=SINGLE_COLUMN_IN, height=min(height, 9.0))
    names = list(rows["name"])
    y = np.arange(len(names))[::-1]
    norms = rows["grad_norm"].astype(float).to_numpy()
    positive = norms[norms > 0]
    floor = positive.min() / 30 if len(positive) else 1e-3
    labels = []
    for yi, (_, row) in zip(y, rows.iterrows(), strict=True):
        name, norm, ok = row["name"], float(row["grad_norm"]), bool(row["ok"])
        show_number(ax, ("wiring", name, "grad_norm"), norm)
        trains = float(row["trainable"]) > 0
        colour = NEUTRAL if ok else FAIL
        if norm > 0:
            ax.barh(yi, norm, left=floor, color=colour, height=0.6)
            ax.annotate(f"{norm:.3g}", (norm, yi), xytext=(2, 0), textcoords="offset points",
                        va="center", fontsize=6)  # fmt: skip
        else:
            ax.plot(floor, yi, marker="o", ms=3.5, color=colour, mfc="white")
            ax.annotate("0" if trains else "0, as a frozen module should", (floor, yi),
                        xytext=(4, 0), textcoords="offset points", va="center",
                        fontsize=6)  # fmt: skip
        state = "trainable" if trains else "frozen"
        labels.append(f"{name} ({state})" + ("" if ok else " ✗"))
    ax.set_xscale("log")
    _log_ticks(ax, "x")
    top = positive.max() * 30 if len(positive) else 1.0
    ax.set_xlim(floor / 1.5, top)
    ax.set_yticks(y, labels, fontsize=6.5)
    ax.set_xlabel("gradient norm (one backward pass)")
    ax.grid(axis="y", visible=False)
    failed = int((~checks["ok"].astype(bool)).sum())
    head = f"{len(checks) - failed} of {len(checks)} checks pass"
    if len(lora):
        row = lora.iloc[0]
        adapters = float(row.get("adapters", 0) or 0)
        if adapters:
            show_number(ax, ("wiring", "lora", "adapters"), adapters)
            show_number(ax, ("wiring", "lora", "output_change"), float(row["output_change"]))
            show_number(ax, ("wiring", "lora", "with_gradient"), float(row["with_gradient"]))
            head += (
                f"\nLoRA: output changes {float(row['output_change']):.2g} when zeroed;"
                f"\n{int(row['with_gradient'])} of {int(adapters)} adapters get a gradient"
                + ("" if bool(row["ok"]) else " ✗")
            )
        else:
            head += "\nLoRA: the policy has no adapters to check"
    if failed:
        head = head.replace("checks pass", "checks pass (✗: failed)", 1)
    ax.set_title(head, fontsize=7)
    return fig, ax


def caption_wiring(checks: pd.DataFrame) -> str:
    failed = checks.loc[~checks["ok"].astype(bool), "check"].tolist()
    verdict = "every check passes" if not failed else "failed: " + "; ".join(failed)
    return (
        "Is the pipeline wired as configured? Gradient norm of each module after one "
        "backward pass of the policy's loss (log axis): trainable modules must get one, "
        "frozen ones none (0 at the axis); the title gives the LoRA check (the output must "
        f"change when the adapters are zeroed, and each must get a gradient). Here {verdict}."
    )


# --------------------------------------------------------------------------- heads alone


def plot_isolation(isolation: dict | None):
    """Left, the training loss of each head trained alone on random conditions -> random
    targets (raw, and a 20-step trailing mean; log axis); right, the action MAE of its
    predictions on those targets against a constant predictor's. Nothing (None, None) for
    a plug-in, which has no isolation test."""
    if isolation is None:
        return None, None
    fig, (left, right) = new_figure(
        ncols=2, width=DOUBLE_COLUMN_IN, height=2.2, gridspec_kw={"width_ratios": [3, 2]}
    )
    colours = {kind: color_for(kind, "run") for kind in isolation}
    for kind, run in isolation.items():
        steps, loss = run["history"].column("step"), run["history"].column("loss")
        first, final = float(run["first_loss"]), float(run["final_loss"])
        show_number(left, ("head_isolation", kind, "first_loss"), first)
        show_number(left, ("head_isolation", kind, "final_loss"), final)
        left.plot(steps, loss, color=colours[kind], alpha=0.3, lw=0.6)
        if len(loss) >= 20:
            smooth = np.convolve(loss, np.ones(20) / 20, mode="valid")
            left.plot(steps[19:], smooth, color=colours[kind],
                      label=f"{kind}: loss {first:.3g} → {final:.2g}")  # fmt: skip
        else:
            left.plot([], [], color=colours[kind], label=f"{kind}: loss {first:.3g} → {final:.2g}")
    left.set_yscale("log")
    _log_ticks(left)
    left.set_xlabel("step")
    left.set_ylabel("training loss (20-step mean)")
    left.legend(fontsize=6, loc="lower left")
    left.set_title("each head alone on random targets", fontsize=7)
    kinds = list(isolation)
    for i, kind in enumerate(kinds):
        mae = float(isolation[kind]["mae"])
        show_number(right, ("head_isolation", kind, "mae"), mae)
        right.bar(i, mae, color=colours[kind], width=0.6)
        right.plot(i, mae, marker="_", ms=14, mew=1.5, color=colours[kind])  # seen at ~0 too
        right.annotate(f"{mae:.3g}", (i, mae), xytext=(0, 2), textcoords="offset points",
                       ha="center", fontsize=6)  # fmt: skip
    right.axhline(CONSTANT_MAE, color=THRESHOLD, ls="--", lw=0.9)
    right.annotate(f"constant predictor {CONSTANT_MAE:.2f}", (0.5, CONSTANT_MAE),
                   xycoords=("axes fraction", "data"), xytext=(0, 2), ha="center",
                   textcoords="offset points", color=THRESHOLD, fontsize=6)  # fmt: skip
    right.set_ylim(0, CONSTANT_MAE * 1.25)
    right.set_xticks(range(len(kinds)), [f"{k} head" for k in kinds])
    right.set_ylabel("action MAE on its targets")
    right.set_title("can it fit them?", fontsize=7)
    return fig, (left, right)


def caption_isolation(isolation: dict | None) -> str | None:
    if isolation is None:  # a plug-in: no figure
        return None
    parts = ", ".join(f"{k} {v['mae']:.3g}" for k, v in isolation.items())
    return (
        "Seed 001's test 3: each head trained alone to map random conditions to random "
        "targets (left: training loss, log axis; right: action MAE of its predictions, "
        f"dashed: a constant predictor's {CONSTANT_MAE:.2f}). Action MAE: {parts}; a head "
        "well below the dashed line can map unique conditions to targets."
    )


# ----------------------------------------------------------------------------- the study's


def cosine_heatmaps(study, representations: dict[str, np.ndarray], table=None):
    """:func:`plot_cosine_heatmaps` of the collected stages, samples by task then step."""
    from nblib.studies.probes.stages import sample_order

    groups = study.info["task"].tolist()
    threshold = study.config.collapse_spread
    return plot_cosine_heatmaps(representations, sample_order(study), groups, table, threshold)


def collapse_bars(table: pd.DataFrame, config):
    """:func:`plot_collapse` with the verdict's collapse judgement of ``table``."""
    from nblib.studies.probes.stages import collapse

    return plot_collapse(table, config.collapse_spread, collapse(table, config))


def embedding_figures(
    study, points_by_method: dict[str, dict[str, np.ndarray]], variance: dict | None = None
) -> dict:
    """The embeddings of every method, coloured by task and by timestep: figure name ->
    ((fig, axes), caption). ``variance``: :func:`nblib.studies.probes.pca_variance`."""
    out = {}
    for method, points in points_by_method.items():
        name = method.upper()
        var = variance if method == "pca" else None
        out[f"{method}_by_task"] = (
            plot_embeddings(points, study.info["task"], f"{name} per stage, by task", True, var),
            caption_embeddings(method, "task", var),
        )
        out[f"{method}_by_timestep"] = (
            plot_embeddings(points, study.info["t"], f"{name} per stage, by timestep", False, var),
            caption_embeddings(method, "timestep", var),
        )
    return out


def stage_browser(study, points_by_method: dict[str, dict[str, np.ndarray]]):
    """ipywidgets (``interactive=True``): pick a stage, an embedding and a colouring."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    methods = list(points_by_method)
    stages = list(points_by_method[methods[0]])

    def show(stage: str, method: str, colour: str):
        values = study.info["task"] if colour == "task" else study.info["t"]
        plot_embeddings(
            {stage: points_by_method[method][stage]},
            values,
            f"{method.upper()} of {stage}",
            categorical=colour == "task",
        )
        plt.show()

    return w.interactive(
        show,
        stage=w.Dropdown(options=stages, value=stages[-1], description="stage"),
        method=w.Dropdown(options=methods, value=methods[0], description="embedding"),
        colour=w.Dropdown(options=["task", "timestep"], value="task", description="colour"),
    )
