"""What notebook 02 concludes: COLLAPSED / BOTTLENECK / DIVERSE, from the stages' spread
intervals, with the instruction's effect on the actions in the reasons.

Verdict: **COLLAPSED** when the condition the head reads is collapsed (its whole spread
interval below ``collapse_spread``), **BOTTLENECK** when an earlier learned stage is
collapsed but the condition is not (seed 001's case: the signal gets through another
way), **DIVERSE** when no learned stage is. A stage whose interval straddles the
threshold is named, and not counted as collapsed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nblib.studies import Evidence
from nblib.studies.probes.language import LANGUAGE_TOL, LanguageReliance, reliance
from nblib.studies.probes.stages import INPUT_STAGES, collapse
from nblib.studies.probes.study import ProbesConfig, ProbesStudy
from nblib.verdict import Verdict

# Seed 001's mean pairwise cosines, quoted beside ours in the reasons.
SEED_001 = "seed 001: VLM 0.997, proprio 0.006, condition 0.730"


@dataclass(frozen=True)
class ProbesEvidence(Evidence):
    """The measured values: the stage table (:func:`nblib.studies.probes.summaries`), the
    collapse judgement, and the optional language, wiring and head-isolation results."""

    source: str
    samples: int
    table: pd.DataFrame
    plugin: bool
    collapse: dict
    language: LanguageReliance | None = None
    checks: pd.DataFrame | None = None
    isolation: dict | None = None
    attention: dict | None = None
    mi: float | None = None
    pca_variance: dict | None = None
    resumed_from_step: int | None = None  # the policy trained here continued from a checkpoint


def evidence(
    study: ProbesStudy,
    table: pd.DataFrame,
    language: LanguageReliance | None = None,
    checks: pd.DataFrame | None = None,
    isolation: dict | None = None,
    attention: dict | None = None,
    mi: float | None = None,
    pca_variance: dict | None = None,
) -> ProbesEvidence:
    """``pca_variance``: :func:`nblib.studies.probes.pca_variance` of the stages (what the
    PCA figures' axes show)."""
    return ProbesEvidence(
        study.source,
        len(study.samples),
        table,
        study.plugin is not None,
        collapse(table, study.config),
        language,
        checks,
        isolation,
        attention,
        mi,
        pca_variance,
        study.history.resumed_from_step if study.history is not None else None,
    )


def _value(table: pd.DataFrame, stage: str, column: str) -> float | None:
    present = column in table.columns and stage in table.index  # a plug-in names its own
    value = table.loc[stage, column] if present else None
    return None if value is None or not np.isfinite(value) else float(value)


def _interval(table: pd.DataFrame, stage: str) -> str:
    low, high = _value(table, stage, "spread_low"), _value(table, stage, "spread_high")
    spread = _value(table, stage, "spread")
    if spread is None:
        return "undefined (every row zero)"
    return f"{spread:.4f}" + ("" if low is None else f" [{low:.4f}, {high:.4f}]")


def verdict(evidence: ProbesEvidence, config: ProbesConfig) -> Verdict:
    table, found = evidence.table, evidence.collapse
    learned = [s for s in table.index if s not in INPUT_STAGES]
    last = learned[-1]
    thr = config.collapse_spread
    numbers = {
        "first_collapsed_stage": found["first"],
        "least_spread_stage": found["least_spread"],
        "collapse_spread": thr,
        f"{last}_spread": _value(table, last, "spread"),
        f"{last}_spread_low": _value(table, last, "spread_low"),
        f"{last}_spread_high": _value(table, last, "spread_high"),
        f"{last}_cos_mean": _value(table, last, "cos_mean"),
    }
    cos = {s: _value(table, s, "cos_mean") for s in ("vlm_last", "proprio", last)}
    described = ", ".join(f"{s} {c:.3f}" for s, c in cos.items() if c is not None)
    reasons = [f"mean pairwise cosine: {described} ({SEED_001})"]
    if last in found["collapsed"]:
        label = "COLLAPSED"
        reasons.insert(
            0,
            f"information collapses at {found['first']}: the {last} the head reads is nearly "
            f"the same for every sample (spread {_interval(table, last)} < {thr})",
        )
    elif found["collapsed"]:
        first = found["first"]
        label = "BOTTLENECK"
        reasons.insert(
            0,
            f"information collapses at {first} (spread {_interval(table, first)} < {thr}) "
            f"but the {last} recovers per-sample variation (spread {_interval(table, last)}): "
            "it must come through another input, such as proprio",
        )
    else:
        least = found["least_spread"]
        label = "DIVERSE"
        reasons.insert(
            0,
            f"no learned stage collapses: the least varied is {least} (spread "
            f"{_interval(table, least)}, threshold {thr})",
        )
    if found["uncertain"]:
        reasons.append(
            "spread interval straddles the threshold "
            f"{thr} (95 % bootstrap over the samples), not counted as collapsed: "
            + ", ".join(f"{s} {_interval(table, s)}" for s in found["uncertain"])
            + "; more probe samples would settle it"
        )
    if evidence.language is not None:
        change = evidence.language.action_change
        numbers |= {f"action_change_{k.replace(' ', '_')}": e.value for k, e in change.items()}
        relies = reliance(change)
        reasons.append(
            "the instruction changes the predicted actions by "
            + ", ".join(f"{e} std ({k})" for k, e in change.items())
            + f": the policy {relies} its instruction (threshold {LANGUAGE_TOL} std)"
        )
    if evidence.plugin:
        reasons.append(
            "not available for this policy (they read nblib's own pipeline): "
            + ", ".join(k.replace("_", " ") for k in NOT_AVAILABLE)
        )
    return Verdict(label, reasons, numbers)


def _none_if_nan(value):
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


INT_COLUMNS = ("active_dims", "dims", "samples")  # counts, stored as floats in the table


def _records(table: pd.DataFrame) -> dict:
    out = {}
    for k, row in table.to_dict(orient="index").items():
        rec = {c: _none_if_nan(v) for c, v in row.items()}
        out[k] = {c: int(v) if c in INT_COLUMNS and v is not None else v for c, v in rec.items()}
    return out


CHECK_TEXT = ("check", "ok", "detail")  # metrics["checks"]: the table as the notebook shows it


def _wiring(records: list[dict]) -> dict:
    """metrics["wiring"]: the checks' numbers by name ("lora", then each module), what the
    wiring figure shows."""
    return {
        r["name"]: {k: v for k, v in r.items() if k not in (*CHECK_TEXT, "name")} | {"ok": r["ok"]}
        for r in records
        if "name" in r
    }


def metrics(evidence: ProbesEvidence) -> dict:
    """What metrics.json records beside the verdict's numbers."""
    out = {
        "policy": evidence.source,
        "samples": evidence.samples,
        "stages": _records(evidence.table),
        "collapse": evidence.collapse,
        "resumed_from_step": evidence.resumed_from_step,
    }
    if evidence.language is not None:
        out["language"] = _records(evidence.language.table)
        for name, e in evidence.language.action_change.items():  # the figure's whiskers
            out["language"][name] |= {"action_change_low": e.low, "action_change_high": e.high}
    if evidence.checks is not None:
        records = [
            {k: v for k, v in row.items() if _none_if_nan(v) is not None}
            for row in evidence.checks.to_dict(orient="records")
        ]
        out["checks"] = [{k: v for k, v in r.items() if k in CHECK_TEXT} for r in records]
        out["wiring"] = _wiring(records)
    if evidence.pca_variance is not None:
        out["pca_variance"] = {
            stage: {"pc1": float(r[0]), "pc2": float(r[1])}
            for stage, r in evidence.pca_variance.items()
        }
    if evidence.isolation is not None:
        out["head_isolation"] = {
            k: {m: v[m] for m in ("first_loss", "final_loss", "mae")}
            for k, v in evidence.isolation.items()
        }
    out["instruction_attention"] = evidence.attention
    out["infobot_mi_estimate"] = evidence.mi
    if evidence.plugin:  # what needs nblib's own pipeline, and why
        out["not_available"] = NOT_AVAILABLE
    return out


# The probes that read nblib's own pipeline: for a plug-in, reported with the reason.
NOT_AVAILABLE = {
    "head_isolation": "not available for this policy: it trains nblib's flow and regression "
    "heads alone, not the plug-in's",
    "instruction_attention": "not available for this policy: it reads nblib's prompt layout "
    "inside its VLM",
    "infobot_mi_estimate": "not available for this policy: the estimator is part of nblib's "
    "InfoBot head",
}
