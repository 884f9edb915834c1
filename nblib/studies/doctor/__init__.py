"""Notebook 06's engine, the train/eval consistency doctor (the engine contract of
:mod:`nblib.studies`), also behind ``nblib doctor``: ``study`` (config, the data, the
policy), ``checks`` (the result type), one module per group of checks (``camera``,
``dynamics``, ``policy_checks``, ``delivery``, ``environment``), ``engine`` (running
them, verdict, metrics) and ``plots``."""

from nblib.studies.doctor.checks import CHECK_NAMES, STATUSES, CheckResult
from nblib.studies.doctor.engine import (
    CHECKS,
    DoctorEvidence,
    evidence,
    metrics,
    run_check,
    run_checks,
    verdict,
)
from nblib.studies.doctor.study import DoctorConfig, DoctorStudy, close, open_data, prepare

__all__ = [
    "CHECKS",
    "CHECK_NAMES",
    "STATUSES",
    "CheckResult",
    "DoctorConfig",
    "DoctorEvidence",
    "DoctorStudy",
    "close",
    "evidence",
    "metrics",
    "open_data",
    "prepare",
    "run_check",
    "run_checks",
    "verdict",
]
