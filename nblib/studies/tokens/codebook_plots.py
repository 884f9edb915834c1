"""Figures of what the latent-action model learned (``04_token_compass``), each with its
caption where the notebook shows one: its training (reconstruction against copying the
frame, codebook perplexity), the codebook's usage per dataset, the similarity of its
vectors, and 2-D embeddings coloured by token.

Each function takes tables and arrays (never reads a file) and returns ``(fig, axes)``;
every number drawn that metrics.json reports is recorded with
:func:`nblib.plots.show_number`.
"""

from __future__ import annotations

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd

from nblib.plots import (
    DOUBLE_COLUMN_IN,
    SINGLE_COLUMN_IN,
    category_colors,
    color_for,
    new_figure,
    show_number,
)
from nblib.studies.tokens.plots_common import _dataset_colours, _label


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
