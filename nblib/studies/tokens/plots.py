"""Figures of the token compass (``04_token_compass``), by family:

* :mod:`~nblib.studies.tokens.compass_plots`: the verdict's figures, the compass and the
  cross-camera agreement;
* :mod:`~nblib.studies.tokens.motion_plots`: the pairs' motion by token (flow scatter,
  polar histograms, gallery, plotly scatter) and the stride check;
* :mod:`~nblib.studies.tokens.codebook_plots`: what the latent-action model learned
  (training, codebook usage and similarity, embeddings);
* :mod:`~nblib.studies.tokens.plots_common`: the helpers they share.

This module gathers their public names, so ``plots.plot_compass`` and the like keep
working. Each function takes tables and arrays (never reads a file) and returns
``(fig, axes)`` (the plotly one a plotly figure); saving goes through
``nblib.run.report.save``. A token has the same colour in every figure
(:func:`nblib.plots.category_colors`).
"""

from nblib.studies.tokens.codebook_plots import (
    caption_codebook_similarity,
    caption_codebook_usage,
    caption_latent_training,
    plot_codebook_similarity,
    plot_codebook_usage,
    plot_embedding,
    plot_latent_training,
)
from nblib.studies.tokens.compass_plots import (
    caption_compass,
    caption_compass_relative,
    plot_compass,
    plot_compass_relative,
)
from nblib.studies.tokens.motion_plots import (
    HOVER_COLUMNS,
    caption_flow_scatter,
    caption_polar_histograms,
    caption_stride_effect,
    plot_flow_scatter,
    plot_gallery,
    plot_polar_histograms,
    plot_stride_effect,
    plotly_scatter,
    stride_records,
)
from nblib.studies.tokens.plots_common import FEW_PAIRS

__all__ = [
    "FEW_PAIRS",
    "HOVER_COLUMNS",
    "caption_codebook_similarity",
    "caption_codebook_usage",
    "caption_compass",
    "caption_compass_relative",
    "caption_flow_scatter",
    "caption_latent_training",
    "caption_polar_histograms",
    "caption_stride_effect",
    "plot_codebook_similarity",
    "plot_codebook_usage",
    "plot_compass",
    "plot_compass_relative",
    "plot_embedding",
    "plot_flow_scatter",
    "plot_gallery",
    "plot_latent_training",
    "plot_polar_histograms",
    "plot_stride_effect",
    "plotly_scatter",
    "stride_records",
]
