"""What every check of the train/eval consistency doctor returns, and what it reads.

A check compares one thing a policy was trained with (the dataset, its manifest, the
policy's run folder) against what the evaluation gives it (the simulator, the eval
harness, a policy server) and returns a :class:`CheckResult`: ``ok``, ``mismatch`` or
``skipped`` (it cannot apply here: no ``--policy``, no demos for this simulator, ...), a
``detail`` sentence (what was compared, the evidence, and the fix in one sentence) and
``evidence`` (JSON-able numbers and small lists that ``metrics.json`` records and the
figures read) and ``artifacts`` (arrays only the figures need: frames, scatter samples;
never written to ``metrics.json``). Checks never print and never save; their decisions use margins
far from float noise (a ratio of 2 where the two sides differ by orders of magnitude).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from nblib.errors import ParameterError

#: The checks in the order they run and are reported (names kept: scripts read them).
CHECK_NAMES = (
    "camera_orientation",
    "action_representation",
    "gripper_polarity",
    "state_units",
    "normalization",
    "instruction_delivery",
    "chunk_execution",
    "environment",
    "coverage",
)
STATUSES = ("ok", "mismatch", "skipped")


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: ``status`` in :data:`STATUSES`, ``detail`` for a reader (the
    comparison, the evidence, the fix), ``evidence`` for figures and metrics."""

    check: str
    status: str
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if self.check not in CHECK_NAMES:
            raise ParameterError(f"CheckResult.check={self.check!r}; expected one of {CHECK_NAMES}")
        if self.status not in STATUSES:
            raise ParameterError(f"CheckResult.status={self.status!r}; expected one of {STATUSES}")
        if not isinstance(self.detail, str) or not self.detail.strip():
            raise ParameterError(f"CheckResult.detail for {self.check} must be a sentence")

    def row(self) -> dict[str, str]:
        """The line ``nblib doctor --format json`` prints (evidence as well, JSON-safe)."""
        return {
            "check": self.check,
            "status": self.status,
            "detail": self.detail,
            "evidence": json_safe(self.evidence),
        }


def ok(check: str, detail: str, artifacts: dict | None = None, **evidence) -> CheckResult:
    return CheckResult(check, "ok", detail, evidence, artifacts or {})


def mismatch(check: str, detail: str, artifacts: dict | None = None, **evidence) -> CheckResult:
    return CheckResult(check, "mismatch", detail, evidence, artifacts or {})


def skipped(check: str, why: str, **evidence) -> CheckResult:
    return CheckResult(check, "skipped", why, evidence)


def json_safe(value):
    """``value`` with NumPy scalars and arrays as Python numbers and lists, and NaN/Inf
    as None (JSON has neither)."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
