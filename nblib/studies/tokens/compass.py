"""The token compass's analysis: per-token motion statistics across datasets, tasks and
the reference motion, and the verdict.

Works on a :class:`nblib.studies.tokens.table.TokenTable` (one row per frame pair and its
analysed token id). Motion comes from pixels
(mean optical flow of the pair) or, as the reference, from the end effector's motion
projected into the image (:mod:`nblib.studies.tokens.frame_pairs`); cameras and tasks of
the embedded data play the datasets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib.errors import DataError
from nblib.metrics.estimates import bootstrap_clusters
from nblib.metrics.tokens import consistency_score, summarize_tokens
from nblib.studies.tokens.table import MOTION_SOURCES, TokenTable
from nblib.verdict import Estimate, Verdict, straddle_note

# Within-group token shuffles behind the agreement's chance level. Each shuffle's agreement
# is noisy with few datasets: on the embedded data (2 cameras, 8 seeds) the null's mean
# spanned 0.58-0.69 with 20 shuffles and 0.63-0.66 with 50 or 100.
PERMUTATIONS = 50


def analyse(
    table: TokenTable,
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
    df, ids, n_codes = table.df, table.ids, table.n_codes
    vec = table.motion(motion)
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
    table: TokenTable,
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
    df = table.df
    out = {"across datasets": analyse(table, motion, "dataset", **common)}
    if "task" in df.columns and df["task"].notna().all():  # token files may have no task
        out["across tasks"] = analyse(table, motion, "task", **common)
    cams = cameras_with_reference(df, min_magnitude)
    sel = df["dataset"].isin(cams).to_numpy()
    if cams and df.loc[sel, "task"].notna().all():
        out["reference motion"] = analyse(table.subset(sel), "reference", "task", **common)
    return out


def verdict_estimates(
    table: TokenTable,
    summary: dict,
    motion: str = "flow",
    group: str = "dataset",
    min_magnitude: float = 0.5,
    seed: int = 0,
    n_resamples: int = 500,
) -> dict[str, Estimate | None]:
    """The verdict's two numbers with intervals from a cluster bootstrap over demos (the
    frame pairs of one demo, in every camera, move together; rows without a ``demo`` are
    their own clusters): ``concentration`` (``direction_resultant_length_adjusted``) and
    ``agreement`` (``agreement_adjusted``, the chance level held at the full data's
    ``agreement_chance``: a property of the groups' motion, not of the resample). None
    where the summary has no value."""
    out: dict[str, Estimate | None] = {"concentration": None, "agreement": None}
    moving = table.moving(motion, min_magnitude)
    if summary.get("direction_resultant_length_adjusted") is None or moving.sum() < 2:
        return out
    part = table.subset(moving)
    vec = part.motion(motion)
    unit = vec / np.hypot(vec[:, 0], vec[:, 1])[:, None]
    ids, k = part.ids, part.n_codes
    df = part.df
    clusters = (
        df["demo"].astype(str).to_numpy()
        if "demo" in df.columns and df["demo"].notna().all()
        else np.arange(len(df)).astype(str)
    )

    def concentration(rows: np.ndarray) -> float:
        t, u = ids[rows], unit[rows]
        sx, sy = np.bincount(t, u[:, 0], minlength=k), np.bincount(t, u[:, 1], minlength=k)
        per_code = float(np.hypot(sx, sy).sum()) / len(rows)  # count-weighted mean of R
        pooled = float(np.hypot(*u.mean(axis=0)))
        return (per_code - pooled) / (1.0 - pooled) if pooled < 1.0 - 1e-12 else np.nan

    what = "demos" if "demo" in df.columns else "frame pairs"
    out["concentration"] = bootstrap_clusters(clusters, concentration, what, seed, n_resamples)
    chance = summary.get("agreement_chance")
    if summary.get("agreement_adjusted") is None or chance is None or group not in df.columns:
        return out
    labels = df[group].to_numpy()

    def agreement(rows: np.ndarray) -> float:
        score = consistency_score(ids[rows], vec[rows], labels[rows], center=True)
        return (score["agreement"] - chance) / (1.0 - chance)

    out["agreement"] = bootstrap_clusters(clusters, agreement, what, seed, n_resamples)
    return out


def _point(summary: dict, key: str) -> Estimate | None:
    value = summary.get(key)
    return None if value is None else Estimate(value, value, value, "point estimate")


def verdict(
    summary: dict,
    estimates: dict[str, Estimate | None] | None = None,
    consistent: float = 0.5,
    inconsistent: float = 0.2,
) -> Verdict:
    """CONSISTENT / PARTIAL / INCONSISTENT / UNDETERMINED from two numbers, judged on their
    intervals (``estimates`` from :func:`verdict_estimates`; without them, the summary's
    point values): how much more concentrated each token's motion direction is than all
    motion together (``direction_resultant_length_adjusted``: a token's R alone is high
    whenever most of the data moves one way) and how much the datasets agree on each
    token's direction beyond chance (``agreement_adjusted``). Either interval wholly below
    ``inconsistent``: INCONSISTENT; both wholly at or above ``consistent``: CONSISTENT;
    else PARTIAL, saying which interval straddles a threshold. CONSISTENT also needs the
    agreement to cover ``MIN_COMPARED_SHARE`` of the moving pairs (``rows_compared`` of
    ``rows_with_direction``, when the summary has them): tokens one dataset uses alone say
    nothing about meaning the same motion everywhere. UNDETERMINED when the first
    is undefined, or the tokens do carry direction but the datasets cannot be compared
    (too few pairs per token, or motion so alike that chance agreement is ~1)."""
    estimates = estimates or {}
    r = estimates.get("concentration") or _point(summary, "direction_resultant_length_adjusted")
    agree = estimates.get("agreement") or _point(summary, "agreement_adjusted")
    numbers = {
        k: summary.get(k)
        for k in (
            "direction_resultant_length_adjusted",
            "agreement_adjusted",
            "direction_nmi",
            "codebook_perplexity",
        )
    }
    for key, est in (("direction_resultant_length_adjusted", r), ("agreement_adjusted", agree)):
        if est is not None:
            numbers |= {f"{key}_low": est.low, f"{key}_high": est.high}
    if r is None:
        why = "no moving pairs, or all of them move exactly the same way"
        return Verdict("UNDETERMINED", [why], numbers)
    if not r.below(inconsistent) and agree is None:
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
    agree_text = "n/a" if agree is None else str(agree)
    chance_text = "n/a" if chance is None else f"{chance:.2f}"
    null = summary.get("agreement_null", "isotropic")
    reasons = [
        f"direction concentration the tokens add = {r} (R per token {raw:.2f} against "
        f"{pooled:.2f} for all motion together; 1: every pair of a token moves the same "
        "way, 0: no more than the data as a whole)",
        f"chance-corrected agreement between datasets = {agree_text} ({null} chance "
        f"{chance_text}; 1: all datasets give each token the same direction, 0: no better "
        "than chance)",
        f"NMI(token, direction bin) = {summary.get('direction_nmi') or 0:.2f}; linear probe "
        f"{summary.get('probe_accuracy') or 0:.2f} vs chance {summary.get('probe_chance') or 0:.2f}",
    ]
    share = compared_share(summary)
    if share is not None:
        reasons.append(
            f"the agreement covers {summary.get('codes_compared')} tokens seen in two or more "
            f"datasets: {summary['rows_compared']:,} of {summary['rows_with_direction']:,} "
            f"moving pairs ({share:.0%}); the other pairs carry tokens one dataset uses alone"
        )
    if r.method != "point estimate":
        reasons.append(f"intervals: {r.method}")
    if r.below(inconsistent) or (agree is not None and agree.below(inconsistent)):
        return Verdict("INCONSISTENT", reasons, numbers)
    if r.low >= consistent and agree is not None and agree.low >= consistent:
        if share is None or share >= MIN_COMPARED_SHARE:
            return Verdict("CONSISTENT", reasons, numbers)
        reasons.append(
            f"both numbers reach {consistent}, but the agreement speaks for {share:.0%} of the "
            f"moving pairs (CONSISTENT needs {MIN_COMPARED_SHARE:.0%}): most motion is coded "
            "by tokens the datasets do not share"
        )
        return Verdict("PARTIAL", reasons, numbers)
    for name, est in (("the direction concentration", r), ("the agreement", agree)):
        note = est and straddle_note(name, est, (consistent, inconsistent))
        if note:
            reasons.append(note)
    return Verdict("PARTIAL", reasons, numbers)


# Least share of the moving pairs whose token the datasets can be compared on (seen at least
# MIN_COUNT times in two or more of them) for CONSISTENT: "the same motion everywhere" is not
# shown by an agreement over the few tokens the datasets share when most of the motion is
# coded by tokens only one dataset uses.
MIN_COMPARED_SHARE = 0.5
# Pairs a (token, dataset) cell needs to count (the default min_count of consistency_score).
MIN_COUNT = 5


def _angle(x, y) -> np.ndarray:
    """Compass angle (deg, 0 = right, 90 = up) of vectors already in "up is up" axes."""
    return np.degrees(np.arctan2(y, x))


def _largest_gap(angles: np.ndarray) -> float:
    """Largest angle (deg, 0..180) between any two of ``angles``."""
    a = np.asarray(angles, dtype=float)
    diff = np.abs((a[:, None] - a[None, :] + 180.0) % 360.0 - 180.0)
    return float(diff.max()) if len(a) else float("nan")


def compass_cells(
    table: TokenTable,
    motion: str = "flow",
    group: str = "dataset",
    min_magnitude: float = 0.5,
) -> pd.DataFrame:
    """One row per (token, dataset) with moving pairs: ``n``, the mean unit direction
    (``x``, ``y`` with up positive; its length is the resultant length ``R``; ``angle_deg``)
    and the same after subtracting the dataset's mean unit direction over all its moving
    pairs (``rel_x``, ``rel_y``, ``rel_angle_deg``): what the token adds to its dataset's
    own motion, the direction :func:`nblib.metrics.tokens.consistency_score` (``center``)
    compares across datasets. The same rows, y flip and centring as the verdict's."""
    moving = table.moving(motion, min_magnitude)
    vec = table.motion(motion)[moving]
    unit = vec / np.hypot(vec[:, 0], vec[:, 1])[:, None] * np.array([1.0, -1.0])
    frame = pd.DataFrame(
        {"token": table.ids[moving], group: table.df[group].to_numpy()[moving], "x": unit[:, 0]}
    ).assign(y=unit[:, 1])
    offset = frame.groupby(group)[["x", "y"]].mean()
    cells = frame.groupby(["token", group]).agg(n=("x", "size"), x=("x", "mean"), y=("y", "mean"))
    cells = cells.reset_index().rename(columns={group: "dataset"})
    off = offset.loc[cells["dataset"]].to_numpy()
    cells["R"] = np.hypot(cells["x"], cells["y"])
    cells["angle_deg"] = _angle(cells["x"], cells["y"])
    cells["rel_x"], cells["rel_y"] = cells["x"] - off[:, 0], cells["y"] - off[:, 1]
    cells["rel_angle_deg"] = _angle(cells["rel_x"], cells["rel_y"])
    return cells


def per_token(cells: pd.DataFrame, min_count: int = MIN_COUNT) -> dict:
    """metrics.json's ``per_token``: per token with moving pairs (key: its id as text), the
    moving pairs, resultant length and mean angle per dataset, and for a token seen at least
    ``min_count`` times in two or more datasets (``compared``, as the verdict's agreement)
    the largest angle between those datasets' mean directions, plain
    (``angle_between_deg``) and centred (``centred_angle_between_deg``, the verdict's), and
    the agreement of the centred directions (|mean of their unit vectors|; with two datasets
    cos(angle / 2)) and of the plain ones (``plain_agreement``)."""
    out = {}
    for token, part in cells.groupby("token"):
        counted = part[part["n"] >= min_count]
        entry = {
            "pairs": {d: int(n) for d, n in zip(part["dataset"], part["n"], strict=True)},
            "resultant_length": {
                d: float(r) for d, r in zip(part["dataset"], part["R"], strict=True)
            },
            "angle_deg": {
                d: float(a) for d, a in zip(part["dataset"], part["angle_deg"], strict=True)
            },
            "compared": bool(len(counted) >= 2),
        }
        if entry["compared"]:
            rel = np.radians(counted["rel_angle_deg"].to_numpy())
            plain = np.radians(counted["angle_deg"].to_numpy())
            entry |= {
                "angle_between_deg": _largest_gap(counted["angle_deg"].to_numpy()),
                "plain_agreement": float(np.hypot(np.cos(plain).mean(), np.sin(plain).mean())),
                "centred_angle_between_deg": _largest_gap(counted["rel_angle_deg"].to_numpy()),
                "agreement": float(np.hypot(np.cos(rel).mean(), np.sin(rel).mean())),
            }
        out[str(int(token))] = entry
    return out


def compared_share(summary: dict) -> float | None:
    """Share of the moving pairs the agreement covers (``rows_compared`` of
    ``rows_with_direction``); None when the summary lacks them."""
    compared, moving = summary.get("rows_compared"), summary.get("rows_with_direction")
    if compared is None or not moving:
        return None
    return compared / moving
