"""Figures of the conditioning probes (``02_conditioning_probes``): cosine-similarity heatmaps
per stage, the spread the verdict judges per stage, PCA of every stage coloured by task or
timestep, where the instruction's effect is lost, the wiring checks and the heads alone.

Each ``plot_*`` function takes arrays and tables (never reads a file) and returns
``(fig, axes)``; it records with :func:`nblib.plots.show_number` every number it draws that
metrics.json reports, at that number's path there. Each ``caption_*`` function beside it
writes the figure's caption from the same inputs.

The drawing lives beside each engine module: :mod:`~nblib.studies.probes.stage_plots`
(heatmaps, collapse, embeddings), :mod:`~nblib.studies.probes.language_plots` (the
instruction probe) and :mod:`~nblib.studies.probes.wiring_plots` (wiring checks, heads
alone), with what they share in :mod:`~nblib.studies.probes.plots_common`; every
``plot_*`` / ``caption_*`` function is importable from here too. This module holds the
figures drawn from a study (``cosine_heatmaps``, ``collapse_bars``, ``embedding_figures``,
``stage_browser``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib.studies.probes.language_plots import caption_language, plot_language
from nblib.studies.probes.plots_common import FAIL, GREY, NEUTRAL, THRESHOLD
from nblib.studies.probes.stage_plots import (
    SEED_001_VLM_SPREAD,
    caption_collapse,
    caption_cosine_heatmaps,
    caption_embeddings,
    plot_collapse,
    plot_cosine_heatmaps,
    plot_embeddings,
)
from nblib.studies.probes.wiring_plots import (
    CONSTANT_MAE,
    caption_isolation,
    caption_wiring,
    plot_isolation,
    plot_wiring,
)

__all__ = [
    "CONSTANT_MAE",
    "FAIL",
    "GREY",
    "NEUTRAL",
    "SEED_001_VLM_SPREAD",
    "THRESHOLD",
    "caption_collapse",
    "caption_cosine_heatmaps",
    "caption_embeddings",
    "caption_isolation",
    "caption_language",
    "caption_wiring",
    "collapse_bars",
    "cosine_heatmaps",
    "embedding_figures",
    "plot_collapse",
    "plot_cosine_heatmaps",
    "plot_embeddings",
    "plot_isolation",
    "plot_language",
    "plot_wiring",
    "stage_browser",
]


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
