"""Running the doctor's checks, and the verdict over their results: CONSISTENT when no
check finds a mismatch, MISMATCH otherwise (one reason per mismatch, its fix included)."""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass

from nblib.errors import ParameterError
from nblib.studies import Evidence
from nblib.studies.doctor.checks import CHECK_NAMES, CheckResult, skipped
from nblib.verdict import Verdict

#: Where each check lives: module (under nblib.studies.doctor) and function, imported when
#: the check runs (the LIBERO and policy stacks load only for the checks that need them).
CHECKS = {
    "camera_orientation": "camera:camera_orientation",
    "action_representation": "dynamics:action_representation",
    "gripper_polarity": "gripper:gripper_polarity",
    "state_units": "dynamics:state_units",
    "normalization": "policy_checks:normalization",
    "instruction_delivery": "delivery:instruction_delivery",
    "chunk_execution": "policy_checks:chunk_execution",
    "environment": "environment:environment",
    "coverage": "coverage:coverage",
}
assert tuple(CHECKS) == CHECK_NAMES


def check_function(name: str):
    module, function = CHECKS[name].split(":")
    return getattr(importlib.import_module(f"nblib.studies.doctor.{module}"), function)


def run_check(study, name: str) -> CheckResult:
    """One check on ``study``, timed (``evidence["seconds"]``); ``skipped`` when the
    config does not select it. A check that cannot apply returns ``skipped`` itself."""
    if name not in CHECKS:
        raise ParameterError(f"check={name!r}: expected one of {list(CHECK_NAMES)}")
    if name not in study.config.checks:
        return skipped(name, "not selected (checks=...)")
    start = time.perf_counter()
    result = check_function(name)(study)
    if not isinstance(result, CheckResult) or result.check != name:
        raise TypeError(f"check {name} returned {result!r}, not its CheckResult")
    result.evidence.setdefault("seconds", round(time.perf_counter() - start, 2))
    return result


def run_checks(study, on_result=None) -> list[CheckResult]:
    """Every check in :data:`CHECK_NAMES` order; ``on_result`` gets each result as it
    comes (the CLI prints it at once)."""
    results = []
    for name in CHECK_NAMES:
        result = run_check(study, name)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def results_table(results: list[CheckResult]):
    """One row per check: check, status, detail, seconds (the notebook's overview)."""
    import pandas as pd

    return pd.DataFrame(
        [
            {"check": r.check, "status": r.status, "detail": r.detail,
             "seconds": r.evidence.get("seconds")}
            for r in results
        ]
    )  # fmt: skip


@dataclass(frozen=True)
class DoctorEvidence(Evidence):
    results: tuple[CheckResult, ...]

    def result(self, name: str) -> CheckResult:
        return next(r for r in self.results if r.check == name)


def evidence(study, results: list[CheckResult]) -> DoctorEvidence:
    """The checks' results, in :data:`CHECK_NAMES` order (one per check)."""
    by_name = {r.check: r for r in results}
    missing = [n for n in CHECK_NAMES if n not in by_name]
    if missing:
        raise ParameterError(f"no result for check(s) {missing}: run them with run_check")
    return DoctorEvidence(tuple(by_name[n] for n in CHECK_NAMES))


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


def describe(study) -> str:
    """What is compared with what: the data, the simulator and tasks, the policy."""
    c, store = study.config, study.store
    where = (
        f"{c.suite or 'libero_spatial'} tasks {c.task_ids or [0]}"
        if c.sim == "libero"
        else f"tasks {', '.join(c.tasks or sorted(store.tasks()))}"
    )
    data = study.manifest.name if study.manifest is not None else str(store.path)
    return (
        f"data: {data} ({len(store.demos)} demos, cameras {', '.join(store.cameras) or 'none'})\n"
        f"evaluated in: {c.sim}, {where}\n"
        f"policy: {c.policy or 'none given (the policy checks are skipped)'}"
    )


def explain(result: CheckResult) -> str:
    """A result as the notebook prints it: the status word, then the detail."""
    word = {"ok": "ok", "mismatch": "MISMATCH", "skipped": "skipped"}[result.status]
    return f"{result.check}: {word}\n{result.detail}"
