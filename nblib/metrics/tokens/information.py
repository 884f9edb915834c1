"""Information measures between tokens and what they should encode: H(token | direction),
NMI / AMI with direction bins or instructions, and clustering of free-form instructions
so that paraphrases count as one task."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from nblib.errors import ParameterError
from nblib.flow import angle_bins
from nblib.metrics.tokens.inputs import (
    check_n_bins,
    check_rows,
    check_tokens,
    factorize,
    seeded_rng,
)

# AMI's expected-MI term costs ~0.5 s per call on 10^6 rows; above this many rows it is
# computed on a fixed-seed random subsample (NMI always uses every row).
AMI_MAX_ROWS = 100_000


def count_entropy(counts: np.ndarray, base: float) -> float:
    """Entropy of a count vector in the given log base; NaN when the counts sum to 0."""
    counts = np.asarray(counts, dtype=float).ravel()
    total = counts.sum()
    if total <= 0:
        return float("nan")
    p = counts[counts > 0] / total
    return float(-(p * np.log(p)).sum() / np.log(base))


def token_entropy_given_direction(tokens, angles, n_bins: int = 8) -> dict:
    """H(token | direction bin): how many bits of the token are *not* explained by direction.

    0 = a direction bin determines the token (tokens are scene-invariant). Keys, in bits:
    ``conditional_entropy_bits``, ``token_entropy_bits`` (H(token)),
    ``normalized_conditional_entropy`` = H(token | bin) / log2(codes used) in [0, 1]
    (NaN if fewer than 2 codes are used), ``codes_used``, ``n_bins``.
    """
    tokens, n_codes = check_tokens(tokens)
    angles = check_rows("angles", angles, tokens.size)
    n_bins = check_n_bins(n_bins)
    joint = np.bincount(
        tokens * n_bins + angle_bins(angles, n_bins), minlength=n_codes * n_bins
    ).reshape(n_codes, n_bins)
    conditional = count_entropy(joint, 2) - count_entropy(joint.sum(axis=0), 2)
    conditional = max(conditional, 0.0) if np.isfinite(conditional) else conditional
    used = int((joint.sum(axis=1) > 0).sum())
    return {
        "conditional_entropy_bits": conditional,
        "normalized_conditional_entropy": conditional / np.log2(used) if used > 1 else np.nan,
        "token_entropy_bits": count_entropy(joint.sum(axis=1), 2),
        "codes_used": used,
        "n_bins": n_bins,
    }


def _mutual_information_scores(a: np.ndarray, b: np.ndarray, seed: int) -> dict:
    """NMI on every row, AMI on at most AMI_MAX_ROWS rows (fixed seed). a, b (N,) int ids."""
    if a.size == 0:
        return {"nmi": np.nan, "ami": np.nan, "ami_rows": 0, "ami_subsampled": False}
    nmi = float(normalized_mutual_info_score(a, b))
    subsampled = a.size > AMI_MAX_ROWS
    if subsampled:
        pick = seeded_rng(seed).choice(a.size, AMI_MAX_ROWS, replace=False)
        a, b = a[pick], b[pick]
    ami = float(adjusted_mutual_info_score(a, b))
    return {"nmi": nmi, "ami": ami, "ami_rows": int(a.size), "ami_subsampled": subsampled}


def direction_nmi(tokens, angles, n_bins: int = 8, seed: int = 0) -> dict:
    """NMI and AMI (sklearn, arithmetic normalisation) between tokens and direction bins.

    1 = tokens and compass bins determine each other, ~0 = unrelated. NMI uses every row;
    AMI (chance-corrected) uses a random subsample of at most ``AMI_MAX_ROWS`` rows drawn
    with ``seed`` (its own stream) when N is larger, flagged by ``ami_subsampled`` and ``ami_rows``.
    """
    tokens, _ = check_tokens(tokens)
    angles = check_rows("angles", angles, tokens.size)
    return _mutual_information_scores(tokens, angle_bins(angles, n_bins), seed)


def instruction_nmi(tokens, instructions, seed: int = 0) -> dict:
    """NMI and AMI between tokens and instructions (strings or cluster ids), as direction_nmi."""
    tokens, _ = check_tokens(tokens)
    ids, labels = factorize("instructions", instructions, tokens.size)
    return {**_mutual_information_scores(tokens, ids, seed), "n_instructions": len(labels)}


def cluster_instructions(instructions, n_clusters: int, seed: int = 0) -> np.ndarray:
    """Group free-form instructions into ``n_clusters`` clusters (paraphrases together), so
    that the instruction NMI asks "does the token follow the kind of task?" rather than
    "the exact wording?". TF-IDF of word uni- and bigrams over the distinct instructions,
    then k-means (scikit-learn). Returns one label per row, ``"c<i>: <instruction nearest
    the cluster centre>"``; missing instructions stay None. With no more distinct
    instructions than ``n_clusters`` each keeps its own cluster."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not (isinstance(n_clusters, int) and not isinstance(n_clusters, bool) and n_clusters >= 1):
        raise ParameterError(f"n_clusters={n_clusters!r} is invalid; expected an int >= 1")
    values = pd.Series(instructions, dtype=object)
    present = values.notna().to_numpy()
    texts = values[present].astype(str)
    distinct = sorted(texts.unique())
    if not distinct:
        return values.where(present, None).to_numpy(dtype=object)
    if len(distinct) <= n_clusters:
        names = {t: f"c{i}: {t}" for i, t in enumerate(distinct)}
    else:
        x = TfidfVectorizer(ngram_range=(1, 2)).fit_transform(distinct)
        km = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit(x)
        dist = km.transform(x)  # (distinct, clusters) distance to every centre
        names = {}
        for c in range(n_clusters):
            members = np.flatnonzero(km.labels_ == c)
            centre = distinct[members[np.argmin(dist[members, c])]]
            names |= {distinct[i]: f"c{c}: {centre}" for i in members}
    out = np.full(len(values), None, dtype=object)
    out[present] = [names[t] for t in texts]
    return out
