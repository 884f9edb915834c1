"""What notebook 04 concludes: CONSISTENT / PARTIAL / INCONSISTENT / UNDETERMINED, from the
across-datasets view and the intervals of its two numbers (see
:func:`nblib.studies.tokens.compass.verdict`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from nblib.studies import Evidence
from nblib.studies.tokens import compass, frame_pairs, plots
from nblib.studies.tokens.study import VERDICT_VIEW, CompassConfig, Tokens, Views, training_final
from nblib.verdict import Verdict


@dataclass(frozen=True)
class TokensEvidence(Evidence):
    pairs: int
    views: Views
    strides: pd.DataFrame | None = None
    ablation: dict | None = None
    latent_model: dict | None = None
    training: dict | None = None


def evidence(
    tokens: Tokens,
    views: Views,
    strides: pd.DataFrame | None = None,
    ablation: dict | None = None,
) -> TokensEvidence:
    meta = None if tokens.model is None else tokens.model.meta
    training = training_final(tokens)
    return TokensEvidence(len(tokens.table), views, strides, ablation, meta, training)


def verdict(evidence: TokensEvidence, config: CompassConfig) -> Verdict:
    """From the across-datasets view (the cameras as datasets), judged on intervals."""
    views = evidence.views
    return compass.verdict(views.summaries[VERDICT_VIEW], views.estimates)


def metrics(evidence: TokensEvidence) -> dict:
    """What metrics.json records beside the verdict's numbers: every view's summary, the
    per-token directions of the compass (``per_token``), the stride check (as a list and
    by camera and stride, ``flow_vs_reference``), the ablation and the model's training
    record and final losses."""
    strides = evidence.strides
    cells = evidence.views.cells
    return {
        "pairs": evidence.pairs,
        **{name.replace(" ", "_"): s for name, s in evidence.views.summaries.items()},
        "flow_vs_reference_median_deg": None if strides is None else frame_pairs.records(strides),
        "permutation_ablation": evidence.ablation,
        "latent_model": evidence.latent_model,
        "latent_model_training": evidence.training,
        "per_token": None if cells is None else compass.per_token(cells, compass.MIN_COUNT),
        "flow_vs_reference": None if strides is None else plots.stride_records(strides),
    }
