"""The token compass's analysis: per-token motion statistics across datasets, tasks and
the reference motion, and the verdict.

Works on a token table (one row per frame pair: ``dataset``, ``demo``, ``t``, ``k``,
``task``, ``instruction`` and the tokens, as :func:`nblib.models.latent.tokenize_dataset`
writes and :func:`nblib.models.latent.load_token_file` reads). Motion comes from pixels
(mean optical flow of the pair) or, as the reference, from the end effector's motion
projected into the image (:mod:`nblib.studies.tokens.frame_pairs`); cameras and tasks of
the embedded data play the datasets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib.errors import DataError, ParameterError
from nblib.metrics.tokens import summarize_tokens
from nblib.models.latent.tokens import token_matrix
from nblib.verdict import Verdict


def token_ids(df: pd.DataFrame, position: int | str, codebook_size: int) -> tuple[np.ndarray, int]:
    """One id per row: the token at ``position``, or ``"combined"`` (the whole sequence as
    one id in base ``codebook_size``). Returns ids and the number of possible ids."""
    tokens = token_matrix(df)
    if position == "combined":
        weights = codebook_size ** np.arange(tokens.shape[1] - 1, -1, -1)
        return tokens @ weights, codebook_size ** tokens.shape[1]
    if tokens.size and tokens.max() >= codebook_size:
        raise ParameterError(
            f"codebook_size={codebook_size} but the tokens go up to {tokens.max()}; "
            f"expected codebook_size >= {tokens.max() + 1}"
        )
    if not isinstance(position, int) or not 0 <= position < tokens.shape[1]:
        raise ParameterError(
            f"token_position must be 0..{tokens.shape[1] - 1} or 'combined', got {position!r}"
        )
    return tokens[:, position], codebook_size


# Within-group token shuffles behind the agreement's chance level. Each shuffle's agreement
# is noisy with few datasets: on the embedded data (2 cameras, 8 seeds) the null's mean
# spanned 0.58-0.69 with 20 shuffles and 0.63-0.66 with 50 or 100.
PERMUTATIONS = 50


# Motion sources: columns of the token table, in image convention (+x right, +y down).
MOTION_SOURCES = {
    "flow": ("flow_dx", "flow_dy"),  # mean optical flow of the pair (pixels)
    "reference": ("ref_dx", "ref_dy"),  # end-effector motion projected into the camera
    "actions": ("action_dx", "action_dy"),  # commanded motion, robot base frame
}


MOTION_LABELS = {
    "flow": "mean flow (px)",
    "reference": "projected end-effector motion (px)",
    "actions": "summed actions (robot x, y)",
}


def motion_vectors(df: pd.DataFrame, motion: str = "flow") -> np.ndarray:
    """(N, 2) motion of each row in image convention (+x right, +y down; NaN = unknown).

    ``actions`` are in the robot's base frame, where +y is not down: their y is negated so
    that robot +y is drawn up. A fixed reflection like this changes no metric (each is
    invariant to relabelling directions consistently), only how the compass is drawn."""
    if motion not in MOTION_SOURCES:
        raise ParameterError(f"motion must be one of {sorted(MOTION_SOURCES)}, got {motion!r}")
    cols = list(MOTION_SOURCES[motion])
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(
            f"motion {motion!r} needs columns {cols}; missing {missing} "
            f"(columns: {list(df.columns)})"
        )
    vec = df[cols].to_numpy(dtype=np.float64)
    if motion == "actions":
        vec = vec * np.array([1.0, -1.0])
    return vec


def analyse(
    df: pd.DataFrame,
    ids: np.ndarray,
    n_codes: int,
    motion: str = "flow",
    group: str = "dataset",
    n_bins: int = 8,
    min_magnitude: float = 0.5,
    instruction_col: str = "instruction",
    n_permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> dict:
    """Every token metric (:func:`nblib.metrics.tokens.summarize_tokens`) for one motion
    source (``flow``, ``reference`` or ``actions``); rows with unknown motion are left out
    and counted as ``rows_without_motion``. ``instruction_col`` holds the instruction
    labels (e.g. clusters from :func:`nblib.metrics.tokens.cluster_instructions`).

    The agreement between groups is taken on what each token adds to its group's mean
    motion (centred) and judged against ``n_permutations`` within-group token shuffles
    (0: uncentred, against isotropic chance, as in seed 004's first sketch), so groups
    that share a drift do not make unrelated tokens look consistent."""
    vec = motion_vectors(df, motion)
    keep = np.isfinite(vec).all(axis=1)
    if not keep.any():
        raise DataError(f"no row of the token table has {motion} motion ({MOTION_SOURCES[motion]})")
    if group not in df.columns or df[group].isna().to_numpy()[keep].any():
        raise DataError(f"group column {group!r} is missing or has empty values in the token table")
    # Token files often carry no instruction: then the instruction NMI is left out (and
    # said so) rather than computed on a subset that would not be comparable.
    instructions = df[instruction_col] if instruction_col in df.columns else None
    has_text = instructions is not None and not instructions.isna().to_numpy()[keep].any()
    out = summarize_tokens(
        ids[keep],
        vec[keep],
        groups=df[group].to_numpy()[keep],
        instructions=instructions.to_numpy()[keep] if has_text else None,
        n_codes=n_codes,
        n_bins=n_bins,
        min_magnitude=min_magnitude,
        seed=seed,
        n_permutations=n_permutations,
        center=n_permutations > 0,
    )
    out["rows_without_motion"] = int((~keep).sum())
    if not has_text:
        out["instruction_nmi_skipped"] = "some rows have no instruction"
    return out


def cameras_with_reference(df: pd.DataFrame, min_pixels: float = 0.5, share: float = 0.1) -> list:
    """Datasets in which the projected end-effector motion is a usable reference: at least
    ``share`` of their rows move ``min_pixels`` or more. A wrist camera is not one (the
    hand does not move in its own image)."""
    if "ref_dx" not in df.columns:
        return []
    moving = np.hypot(df["ref_dx"], df["ref_dy"]) >= min_pixels
    frac = moving.groupby(df["dataset"]).mean()
    return sorted(frac.index[frac >= share])


def analyse_views(
    df: pd.DataFrame,
    ids: np.ndarray,
    n_codes: int,
    motion: str = "flow",
    n_bins: int = 8,
    min_magnitude: float = 0.5,
    instruction_col: str = "instruction",
) -> dict:
    """The analyses the notebook reports, by name: ``across datasets`` (the verdict's),
    ``across tasks`` (task as the group; when every row has a task) and, when some camera
    has one, ``reference motion`` (projected end-effector motion in those cameras, grouped
    by task: how the tokens relate to where the hand really went)."""
    common = {"n_bins": n_bins, "min_magnitude": min_magnitude, "instruction_col": instruction_col}
    out = {"across datasets": analyse(df, ids, n_codes, motion, "dataset", **common)}
    if "task" in df.columns and df["task"].notna().all():  # token files may have no task
        out["across tasks"] = analyse(df, ids, n_codes, motion, "task", **common)
    cams = cameras_with_reference(df, min_magnitude)
    sel = df["dataset"].isin(cams).to_numpy()
    if cams and df.loc[sel, "task"].notna().all():
        out["reference motion"] = analyse(df[sel], ids[sel], n_codes, "reference", "task", **common)
    return out


def verdict(summary: dict, consistent: float = 0.5, inconsistent: float = 0.2) -> Verdict:
    """CONSISTENT / PARTIAL / INCONSISTENT / UNDETERMINED from two numbers: how much more
    concentrated each token's motion direction is than all motion together
    (``direction_resultant_length_adjusted``: a token's R alone is high whenever most of
    the data moves one way) and how much the datasets agree on each token's direction
    beyond chance (``agreement_adjusted``). Either < ``inconsistent``: INCONSISTENT; both
    >= ``consistent``: CONSISTENT; else PARTIAL. UNDETERMINED when the first is undefined,
    or the tokens do carry direction but the datasets cannot be compared (too few pairs
    per token, or motion so alike that chance agreement is ~1)."""
    r = summary.get("direction_resultant_length_adjusted")
    agree = summary.get("agreement_adjusted")
    numbers = {
        k: summary.get(k)
        for k in (
            "direction_resultant_length_adjusted",
            "agreement_adjusted",
            "direction_nmi",
            "codebook_perplexity",
        )
    }
    if r is None:
        why = "no moving pairs, or all of them move exactly the same way"
        return Verdict("UNDETERMINED", [why], numbers)
    if r >= inconsistent and agree is None:
        if summary.get("codes_compared"):
            why = (
                f"chance agreement {summary['agreement_chance']:.3f}: the datasets' motion is "
                "so alike that agreement cannot tell tokens apart"
            )
        else:
            why = "too few moving pairs per token in two or more datasets to compare"
        return Verdict("UNDETERMINED", [why], numbers)
    raw = summary["direction_resultant_length"]
    pooled = summary["direction_resultant_length_pooled"]
    chance = summary.get("agreement_chance")
    agree_text = "n/a" if agree is None else f"{agree:.2f}"
    chance_text = "n/a" if chance is None else f"{chance:.2f}"
    null = summary.get("agreement_null", "isotropic")
    reasons = [
        f"direction concentration the tokens add = {r:.2f} (R per token {raw:.2f} against "
        f"{pooled:.2f} for all motion together; 1: every pair of a token moves the same "
        "way, 0: no more than the data as a whole)",
        f"chance-corrected agreement between datasets = {agree_text} ({null} chance "
        f"{chance_text}; 1: all datasets give each token the same direction, 0: no better "
        "than chance)",
        f"NMI(token, direction bin) = {summary.get('direction_nmi') or 0:.2f}; linear probe "
        f"{summary.get('probe_accuracy') or 0:.2f} vs chance {summary.get('probe_chance') or 0:.2f}",
    ]
    if r < inconsistent or (agree is not None and agree < inconsistent):
        return Verdict("INCONSISTENT", reasons, numbers)
    if r >= consistent and agree >= consistent:
        return Verdict("CONSISTENT", reasons, numbers)
    return Verdict("PARTIAL", reasons, numbers)
