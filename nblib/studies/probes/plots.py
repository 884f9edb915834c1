"""Figures of the conditioning probes (``02_conditioning_probes``): cosine-similarity heatmaps
per stage, collapse metrics across stages, 2-D embeddings coloured by task or timestep, the
language-reliance bars and the head-isolation curves.

Each function takes arrays and tables (never reads a file) and returns ``(fig, axes)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib.plots import PALETTE, color_for, colors_for, new_figure

COLLAPSE_PANELS = (
    ("cos_mean", "mean pairwise cosine"),
    ("spread", "spread (varying energy)"),
    ("effective_rank_centered", "effective rank (centred)"),
    ("active_fraction", "active dims (fraction)"),
)


def _grid(n: int, width: float = 7.16, cell: float = 1.55, **kw):
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig, axes = new_figure(
        ncols=cols, nrows=rows, width=width, height=cell * rows + 0.3, squeeze=False, **kw
    )
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, axes


def _cosine_matrix(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    return unit @ unit.T


def plot_cosine_heatmaps(representations: dict[str, np.ndarray], order: np.ndarray, groups: list):
    """Pairwise cosine similarity of the samples at every stage, samples sorted by ``order``
    (task, then timestep), with the task boundaries drawn; one colour scale (-1..1)."""
    fig, axes = _grid(len(representations))
    image = None
    labels = np.asarray(groups)[order]
    bounds = np.flatnonzero(labels[1:] != labels[:-1]) + 0.5
    for ax, (name, x) in zip(axes.ravel(), representations.items(), strict=False):
        image = ax.imshow(
            _cosine_matrix(x[order]), vmin=-1, vmax=1, cmap="RdBu_r", interpolation="nearest"
        )
        for b in bounds:
            ax.axhline(b, color="k", lw=0.3)
            ax.axvline(b, color="k", lw=0.3)
        ax.set_title(name, fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="cosine")
    return fig, axes


def plot_collapse(table: pd.DataFrame, collapse_spread: float):
    """Per stage (pipeline order): mean pairwise cosine, spread (with the collapse line),
    effective rank and the fraction of active dimensions."""
    fig, axes = new_figure(ncols=len(COLLAPSE_PANELS), width=7.16, height=2.2, squeeze=False)
    x = np.arange(len(table))
    for ax, (col, label) in zip(axes[0], COLLAPSE_PANELS, strict=True):
        values = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)
        ax.bar(x, np.nan_to_num(values), color=PALETTE[0])
        ax.set_title(label, fontsize=6)
        ax.set_xticks(x, list(table.index), rotation=90, fontsize=5)
        if col == "spread":
            ax.set_yscale("log")
            ax.axhline(collapse_spread, color=PALETTE[3], lw=0.8, ls="--")
    return fig, axes


def plot_embeddings(points: dict[str, np.ndarray], values, title: str, categorical: bool = True):
    """A 2-D embedding per stage, coloured by ``values`` (one per sample): task names
    (categorical, the suite's colours) or timesteps (continuous)."""
    import matplotlib.pyplot as plt

    fig, axes = _grid(len(points))
    values = np.asarray(values)
    colours = colors_for(sorted(set(values.tolist()))) if categorical else None
    scatter = None
    for ax, (name, xy) in zip(axes.ravel(), points.items(), strict=False):
        if categorical:
            for label, colour in colours.items():
                sel = values == label
                ax.scatter(xy[sel, 0], xy[sel, 1], s=5, color=colour, label=str(label), lw=0)
        else:
            scatter = ax.scatter(xy[:, 0], xy[:, 1], s=5, c=values, cmap="viridis", lw=0)
        ax.set_title(name, fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
    if categorical:
        handles, labels = axes.ravel()[0].get_legend_handles_labels()
        fig.legend(
            handles, labels, loc="outside lower center", ncol=min(len(labels), 5), fontsize=5
        )
    elif scatter is not None:
        fig.colorbar(scatter, ax=axes.ravel().tolist(), shrink=0.6, label="timestep")
    fig.suptitle(title, fontsize=7)
    plt.setp(axes, aspect="auto")
    return fig, axes


def plot_language(table: pd.DataFrame, ignored_below: float | None = None):
    """Per instruction variant: its similarity in meaning to the original and how far the
    predicted actions move (action stds; dashed: the change below which the instruction
    counts as ignored)."""
    fig, (left, right) = new_figure(ncols=2, width=7.16, height=2.0)
    names = list(table.index)
    x = np.arange(len(names))
    left.bar(x, table["text_similarity"].astype(float), color=PALETTE[4])
    left.set_xticks(x, names, fontsize=6)
    left.set_ylabel("cosine to the original\n(all-MiniLM-L6-v2)")
    right.bar(x, table["action_change_std"].astype(float), color=PALETTE[3])
    right.set_xticks(x, names, fontsize=6)
    right.set_ylabel("action change (stds)")
    if ignored_below is not None:
        right.axhline(ignored_below, color=PALETTE[7], lw=0.8, ls="--")
    return fig, (left, right)


def plot_isolation(isolation: dict | None):
    """Loss curves of each head trained alone on random conditions -> random targets;
    nothing (None, None) for a plug-in, which has no isolation test."""
    if isolation is None:
        return None, None
    fig, axes = new_figure(ncols=len(isolation), width=7.16, height=2.0, squeeze=False)
    for ax, (kind, run) in zip(axes[0], isolation.items(), strict=True):
        steps, loss = run["history"].column("step"), run["history"].column("loss")
        colour = color_for(kind)
        ax.plot(steps, loss, color=colour, alpha=0.3, lw=0.6)
        if len(loss) >= 20:
            ax.plot(steps[19:], np.convolve(loss, np.ones(20) / 20, mode="valid"), color=colour)
        ax.set_yscale("log")
        ax.set_title(f"{kind} head alone: action MAE {run['mae']:.3f}", fontsize=6)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
    return fig, axes


# ----------------------------------------------------------------------------- the study's


def cosine_heatmaps(study, representations: dict[str, np.ndarray]):
    """:func:`plot_cosine_heatmaps` of the collected stages, samples by task then step."""
    from nblib.studies.probes.stages import sample_order

    return plot_cosine_heatmaps(representations, sample_order(study), study.info["task"].tolist())


def collapse_bars(table: pd.DataFrame, config):
    return plot_collapse(table, config.collapse_spread)


def embedding_figures(study, points_by_method: dict[str, dict[str, np.ndarray]]) -> dict:
    """The embeddings of every method, coloured by task and by timestep, by figure name."""
    out = {}
    for method, points in points_by_method.items():
        name = method.upper()
        out[f"{method}_by_task"] = plot_embeddings(
            points, study.info["task"], f"{name} per stage, coloured by task"
        )
        out[f"{method}_by_timestep"] = plot_embeddings(
            points, study.info["t"], f"{name} per stage, coloured by timestep", categorical=False
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
