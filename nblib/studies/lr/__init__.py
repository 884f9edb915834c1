"""Notebook 03's engine, the LR-schedule study (the engine contract of
:mod:`nblib.studies`): ``study`` (config, grid, schedules), ``sweep`` (the runs trained or
the logs read, the range test, the mean-action baseline), ``analysis`` (detectors,
suggestions, matched steps, verdict, metrics) and ``plots``."""

from nblib.studies.lr import plots
from nblib.studies.lr.analysis import (
    LREvidence,
    analyse,
    best_run,
    evidence,
    learning_status,
    lr_response,
    matched_pivot,
    matched_table,
    metrics,
    suggest,
    verdict,
)
from nblib.studies.lr.plots import (
    caption_loss_curves,
    final_loss_figure,
    loss_figure,
    range_figure,
    run_browser,
)
from nblib.studies.lr.study import (
    FLOOR_SCHEDULES,
    LRConfig,
    LRStudy,
    describe,
    grid_table,
    lr_preview,
    prepare,
    sweep_specs,
)
from nblib.studies.lr.sweep import loss_curves, mean_action_loss, range_test

__all__ = [
    "FLOOR_SCHEDULES",
    "LRConfig",
    "LREvidence",
    "LRStudy",
    "analyse",
    "best_run",
    "caption_loss_curves",
    "describe",
    "evidence",
    "final_loss_figure",
    "grid_table",
    "learning_status",
    "loss_curves",
    "loss_figure",
    "lr_preview",
    "lr_response",
    "matched_pivot",
    "matched_table",
    "mean_action_loss",
    "metrics",
    "plots",
    "prepare",
    "range_figure",
    "range_test",
    "run_browser",
    "suggest",
    "sweep_specs",
    "verdict",
]
