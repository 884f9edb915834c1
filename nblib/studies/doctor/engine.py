"""Running the doctor's checks, and the verdict over their results: CONSISTENT when no
check finds a mismatch, MISMATCH otherwise (one reason per mismatch, its fix included)."""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass

from nblib.studies import Evidence
from nblib.studies.doctor.checks import CHECK_NAMES, CheckResult, skipped
from nblib.verdict import Verdict

#: Where each check lives: module (under nblib.studies.doctor) and function, imported when
#: the check runs (the LIBERO and policy stacks load only for the checks that need them).
CHECKS = {
    "camera_orientation": "camera:camera_orientation",
    "action_representation": "dynamics:action_representation",
    "gripper_polarity": "dynamics:gripper_polarity",
    "state_units": "dynamics:state_units",
    "normalization": "policy_checks:normalization",
    "instruction_delivery": "delivery:instruction_delivery",
    "chunk_execution": "policy_checks:chunk_execution",
    "environment": "environment:environment",
    "coverage": "delivery:coverage",
}
assert tuple(CHECKS) == CHECK_NAMES


def check_function(name: str):
    module, function = CHECKS[name].split(":")
    return getattr(importlib.import_module(f"nblib.studies.doctor.{module}"), function)


def run_check(study, name: str) -> CheckResult:
    """One check on ``study``; a check that cannot apply returns ``skipped`` itself."""
    result = check_function(name)(study)
    if not isinstance(result, CheckResult) or result.check != name:
        raise TypeError(f"check {name} returned {result!r}, not its CheckResult")
    return result


def run_checks(study, on_result=None) -> list[CheckResult]:
    """The configured checks in :data:`CHECK_NAMES` order, each timed; ``on_result`` gets
    each result as it comes (the CLI prints it at once)."""
    results = []
    for name in CHECK_NAMES:
        if name not in study.config.checks:
            result = skipped(name, "not selected (checks=...)")
        else:
            start = time.perf_counter()
            result = run_check(study, name)
            result.evidence.setdefault("seconds", round(time.perf_counter() - start, 2))
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


@dataclass(frozen=True)
class DoctorEvidence(Evidence):
    results: tuple[CheckResult, ...]

    def result(self, name: str) -> CheckResult:
        return next(r for r in self.results if r.check == name)


def evidence(results: list[CheckResult]) -> DoctorEvidence:
    return DoctorEvidence(tuple(results))


def verdict(evidence: DoctorEvidence, config=None) -> Verdict:
    """MISMATCH when any check found one (its detail, the fix included, is a reason),
    else CONSISTENT; skipped checks are named so a reader knows what was not looked at."""
    statuses = {r.check: r.status for r in evidence.results}
    mismatches = [r for r in evidence.results if r.status == "mismatch"]
    reasons = [f"{r.check}: {r.detail}" for r in mismatches]
    passed = [r.check for r in evidence.results if r.status == "ok"]
    missed = [r.check for r in evidence.results if r.status == "skipped"]
    if not mismatches:
        reasons.append(
            f"{len(passed)} check(s) found train and eval consistent: {', '.join(passed) or 'none'}"
        )
    if missed:
        reasons.append(f"not checked: {', '.join(missed)}")
    numbers = {
        "mismatches": len(mismatches),
        "ok": len(passed),
        "skipped": len(missed),
        **{f"status.{name}": status for name, status in statuses.items()},
    }
    return Verdict("MISMATCH" if mismatches else "CONSISTENT", reasons, numbers)


def metrics(evidence: DoctorEvidence) -> dict:
    """Each check's status, detail and evidence (JSON-safe), keyed by check name."""
    return {"checks": {r.check: r.row() for r in evidence.results}}
