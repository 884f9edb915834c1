"""Notebook 06's engine, the train/eval consistency doctor (the engine contract of
:mod:`nblib.studies`), also behind ``nblib doctor``: ``study`` (config, the data, the
policy), ``checks`` (the result type), one module per group of checks (``camera``,
``dynamics``, ``policy_checks``, ``delivery``, ``environment``), ``engine`` (running
them, verdict, metrics) and ``plots``."""

from nblib.studies.doctor.checks import CHECK_NAMES, STATUSES, CheckResult
from nblib.studies.doctor.engine import (
    CHECKS,
    DoctorEvidence,
    describe,
    evidence,
    explain,
    metrics,
    results_table,
    run_check,
    run_checks,
    verdict,
)
from nblib.studies.doctor.plots import browser, figures, overview_caption, overview_figure
from nblib.studies.doctor.study import DoctorConfig, DoctorStudy, close, open_data, prepare

__all__ = [
    "browser",
    "CHECKS",
    "CHECK_NAMES",
    "STATUSES",
    "CheckResult",
    "DoctorConfig",
    "DoctorEvidence",
    "DoctorStudy",
    "close",
    "describe",
    "evidence",
    "explain",
    "figures",
    "metrics",
    "open_data",
    "overview_caption",
    "overview_figure",
    "prepare",
    "run_check",
    "results_table",
    "run_checks",
    "verdict",
]
