"""Notebook 04's engine, the token compass (the engine contract of :mod:`nblib.studies`):
``study`` (config and steps), ``table`` (the token-table type), ``compass`` (the analysis
behind the verdict), ``frame_pairs`` (frames, flow and reference motion behind a token
table), ``evidence`` (verdict, metrics) and ``plots``."""

from nblib.studies.tokens import compass, frame_pairs, plots
from nblib.studies.tokens.evidence import TokensEvidence, evidence, metrics, verdict
from nblib.studies.tokens.study import (
    CompassConfig,
    CompassStudy,
    Tokens,
    Views,
    ablation_table,
    add_motion,
    analyse,
    cluster_counts,
    codebook_summary,
    compass_figures,
    describe,
    gallery,
    make_tokens,
    order_ablation,
    plot_codebook_usage,
    plotly_scatter,
    prepare,
    stride_check,
    stride_figure,
    training_figure,
    training_summary,
    umap_figures,
    usage,
    views_table,
)
from nblib.studies.tokens.table import TokenTable

__all__ = [
    "CompassConfig",
    "CompassStudy",
    "TokenTable",
    "Tokens",
    "TokensEvidence",
    "Views",
    "ablation_table",
    "add_motion",
    "analyse",
    "cluster_counts",
    "codebook_summary",
    "compass",
    "compass_figures",
    "describe",
    "evidence",
    "frame_pairs",
    "gallery",
    "make_tokens",
    "metrics",
    "order_ablation",
    "plot_codebook_usage",
    "plotly_scatter",
    "plots",
    "prepare",
    "stride_check",
    "stride_figure",
    "training_figure",
    "training_summary",
    "umap_figures",
    "usage",
    "verdict",
    "views_table",
]
