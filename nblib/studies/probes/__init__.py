"""Notebook 02's engine, the conditioning probes (the engine contract of
:mod:`nblib.studies`): ``study`` (config, set-up), ``stages`` (representations per stage
and their collapse), ``language`` (does the instruction matter), ``wiring`` (LoRA and
gradient checks, the heads alone), ``evidence`` (verdict and metrics) and ``plots``."""

from nblib.studies.probes import plots
from nblib.studies.probes.evidence import ProbesEvidence, evidence, metrics, verdict
from nblib.studies.probes.language import (
    LANGUAGE_TOL,
    LanguageReliance,
    instruction_attention,
    instruction_variants,
    language_reliance,
    mi_estimate,
    reliance,
)
from nblib.studies.probes.plots import (
    collapse_bars,
    cosine_heatmaps,
    embedding_figures,
    plot_wiring,
    stage_browser,
)
from nblib.studies.probes.stages import (
    collapse,
    collect,
    embeddings,
    pca_variance,
    summaries,
)
from nblib.studies.probes.study import STAGES, ProbesConfig, ProbesStudy, describe, prepare
from nblib.studies.probes.wiring import head_isolation, pipeline_checks

__all__ = [
    "LANGUAGE_TOL",
    "STAGES",
    "LanguageReliance",
    "ProbesConfig",
    "ProbesEvidence",
    "ProbesStudy",
    "collapse",
    "collapse_bars",
    "collect",
    "cosine_heatmaps",
    "describe",
    "embedding_figures",
    "embeddings",
    "evidence",
    "head_isolation",
    "instruction_attention",
    "instruction_variants",
    "language_reliance",
    "metrics",
    "mi_estimate",
    "pca_variance",
    "plot_wiring",
    "pipeline_checks",
    "plots",
    "prepare",
    "reliance",
    "stage_browser",
    "summaries",
    "verdict",
]
