"""Every token metric in one flat dict of scalars for metrics.json."""

from __future__ import annotations

import numpy as np

from nblib.flow import angle_deg
from nblib.metrics.tokens.codebook import codebook_usage
from nblib.metrics.tokens.consistency import consistency_score
from nblib.metrics.tokens.directions import direction_probe, token_directions
from nblib.metrics.tokens.information import (
    direction_nmi,
    instruction_nmi,
    token_entropy_given_direction,
)
from nblib.metrics.tokens.inputs import check_rows, check_tokens, unit_vectors


def _scalar(value):
    """metrics.json scalar: NaN / inf -> None, numpy numbers -> Python numbers, str kept."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    value = float(value)
    return value if np.isfinite(value) else None


def summarize_tokens(
    tokens,
    motion,
    groups=None,
    instructions=None,
    n_codes: int | None = None,
    n_bins: int = 8,
    min_count: int = 5,
    min_magnitude: float = 0.0,
    seed: int = 0,
    n_permutations: int = 0,
    center: bool = False,
) -> dict:
    """Every token metric in one flat dict of scalars for metrics.json.

    Undefined values are None (never NaN or a made-up 0). Codebook keys use every row;
    direction keys use rows with ``|motion| >= min_magnitude`` and non-zero motion.

    - ``rows``, ``rows_with_direction``, ``n_codes``
    - ``codebook_perplexity``, ``codebook_active_codes``, ``codebook_dead_codes`` (count),
      ``codebook_usage_fraction``
    - ``direction_resultant_length``: row-weighted mean over codes of R (1 = each code has
      one direction); None if no row has a direction
    - ``direction_resultant_length_pooled``: R of all those rows ignoring the tokens, the
      baseline: when most motion goes one way, every code has a high R without meaning
      anything (with one code, R equals it)
    - ``direction_resultant_length_adjusted``: (R - pooled) / (1 - pooled), the
      concentration the tokens add beyond the data's own (0 = none; None if pooled is 1)
    - ``entropy_given_direction_bits``, ``entropy_given_direction_normalized``,
      ``token_entropy_bits``
    - ``direction_nmi``, ``direction_ami``, ``direction_ami_rows``
    - ``probe_accuracy``, ``probe_chance``
    - with ``groups``: ``consistency_within``, ``consistency_across``, ``consistency_ratio``
      (None when across is 0), ``agreement``, ``agreement_chance``, ``agreement_adjusted``,
      ``agreement_null``, ``agreement_centered``, ``codes_compared``, ``rows_compared`` (see
      :func:`consistency_score`: ``n_permutations`` > 0 takes the chance from shuffles,
      ``center`` judges what each code adds to its group's own motion)
    - with ``instructions``: ``instruction_nmi``, ``instruction_ami``, ``instruction_ami_rows``
    """
    tokens, n_codes = check_tokens(tokens, n_codes)
    motion = check_rows("motion", motion, tokens.size, width=2)
    keep, magnitude = unit_vectors(motion, min_magnitude)
    t_dir = tokens[keep]
    angles = angle_deg(motion[keep])

    out = {"rows": tokens.size, "rows_with_direction": int(keep.sum()), "n_codes": n_codes}
    usage = codebook_usage(tokens, n_codes) if n_codes > 0 else {}
    out |= {
        "codebook_perplexity": usage.get("perplexity"),
        "codebook_active_codes": usage.get("active_codes"),
        "codebook_dead_codes": len(usage["dead_codes"]) if usage else None,
        "codebook_usage_fraction": usage.get("usage_fraction"),
    }
    compass = token_directions(tokens, motion, n_codes, min_magnitude)
    used = compass["count"] > 0
    out["direction_resultant_length"] = (
        float(np.average(compass["resultant_length"][used], weights=compass["count"][used]))
        if used.any()
        else None
    )
    unit = motion[keep] / magnitude[keep, None]
    pooled = float(np.hypot(*unit.mean(axis=0))) if keep.any() else None
    out["direction_resultant_length_pooled"] = pooled
    out["direction_resultant_length_adjusted"] = (
        (out["direction_resultant_length"] - pooled) / (1.0 - pooled)
        if pooled is not None and pooled < 1.0 - 1e-12
        else None
    )
    entropy = token_entropy_given_direction(t_dir, angles, n_bins)
    out |= {
        "entropy_given_direction_bits": entropy["conditional_entropy_bits"],
        "entropy_given_direction_normalized": entropy["normalized_conditional_entropy"],
        "token_entropy_bits": entropy["token_entropy_bits"],
    }
    nmi = direction_nmi(t_dir, angles, n_bins, seed)
    out |= {
        "direction_nmi": nmi["nmi"],
        "direction_ami": nmi["ami"],
        "direction_ami_rows": nmi["ami_rows"],
    }
    probe = direction_probe(t_dir, angles, n_bins, seed)
    out |= {"probe_accuracy": probe["accuracy"], "probe_chance": probe["chance"]}
    if groups is not None:
        score = consistency_score(
            tokens, motion, groups, min_count, min_magnitude, n_permutations, seed, center
        )
        out |= {f"consistency_{k}": score[k] for k in ("within", "across", "ratio")}
        keys = (
            "agreement",
            "agreement_chance",
            "agreement_adjusted",
            "agreement_null",
            "agreement_centered",
        )
        out |= {k: score[k] for k in keys}
        out |= {"codes_compared": score["codes_compared"], "rows_compared": score["rows_compared"]}
    if instructions is not None:
        inst = instruction_nmi(tokens, instructions, seed)
        out |= {
            "instruction_nmi": inst["nmi"],
            "instruction_ami": inst["ami"],
            "instruction_ami_rows": inst["ami_rows"],
        }
    return {key: _scalar(value) for key, value in out.items()}
