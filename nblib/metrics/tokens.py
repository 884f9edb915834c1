"""Do discrete latent-action tokens mean the same motion everywhere? (seed 004)

Every function takes one row per frame pair:

- ``tokens`` (N,) non-negative int code ids. For token *sequences* pass one position at a
  time, or a combined id such as ``t0 * K + t1``.
- ``motion`` (N, 2) float motion vectors in image axes: dx to the right, dy *down* (e.g. the
  magnitude-weighted mean optical flow of the pair).
- ``angles`` (N,) degrees with 0 = right and 90 = up, i.e. ``atan2(-dy, dx)``; see
  :func:`nblib.flow.angle_deg`. Returned angles lie in [0, 360).
- ``groups`` (N,) labels of the dataset / camera / task each row came from.
- ``instructions`` (N,) instruction strings or instruction-cluster ids.

Direction bins are centred on the compass: with ``n_bins=8`` bin 0 is "right"
(-22.5 to 22.5 deg), bin 2 "up", bin 4 "left", bin 6 "down".

Directions come from unit vectors, so rows whose motion is exactly zero have no direction
and are left out of every direction statistic (``min_magnitude`` can drop more). Statistics
of a code with no rows are NaN, never 0: a dead code has no direction, not direction 0.
Everything is vectorised (``np.bincount``) and runs on 10^6 rows in well under a second.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
from scipy import integrate, special
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from nblib.errors import ParameterError
from nblib.flow import angle_bins, angle_deg, wrap_degrees

# AMI's expected-MI term costs ~0.5 s per call on 10^6 rows; above this many rows it is
# computed on a fixed-seed random subsample (NMI always uses every row).
AMI_MAX_ROWS = 100_000

# Random draws here use default_rng((seed, _STREAM)), not default_rng(seed): synthetic data
# made with default_rng(seed) would otherwise pick the probe split / AMI subsample with the
# very numbers that made the data (e.g. test rows = rows whose angle is < 108 deg).
_STREAM = 4


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng((int(seed), _STREAM))


# ---------------------------------------------------------------------------- input checks


def _check_tokens(tokens, n_codes: int | None = None) -> tuple[np.ndarray, int]:
    """Validate tokens (N,) ints in [0, n_codes). Returns (int64 tokens, n_codes)."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise ParameterError(f"tokens must be 1-D (N,), got shape {tokens.shape}")
    if tokens.size and not np.issubdtype(tokens.dtype, np.integer):
        raise ParameterError(f"tokens must be integer code ids, got dtype {tokens.dtype}")
    tokens = tokens.astype(np.int64, copy=False)
    low = int(tokens.min()) if tokens.size else 0
    high = int(tokens.max()) if tokens.size else -1
    if low < 0:
        raise ParameterError(f"tokens must be >= 0, got a minimum of {low}")
    if n_codes is None:
        n_codes = high + 1
    elif int(n_codes) <= high:
        raise ParameterError(f"n_codes={n_codes} but tokens hold code id {high}")
    if int(n_codes) < 0:
        raise ParameterError(f"n_codes must be >= 0, got {n_codes}")
    return tokens, int(n_codes)


def _check_rows(name: str, values, n: int, width: int | None = None) -> np.ndarray:
    """Validate a finite float array of shape (n,) or (n, width)."""
    values = np.asarray(values, dtype=float)
    shape = (n,) if width is None else (n, width)
    if values.shape != shape:
        raise ParameterError(f"{name} must have shape {shape} to match tokens, got {values.shape}")
    if not np.isfinite(values).all():
        raise ParameterError(f"{name} holds NaN or inf; drop or fill those rows first")
    return values


def _check_n_bins(n_bins: int) -> int:
    if int(n_bins) != n_bins or n_bins < 1:
        raise ParameterError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)


def _factorize(name: str, labels, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels (N,) of any type -> (ids (N,) int64 in [0, L), sorted unique labels (L,)).

    Uses a hash table (pandas), ~10x faster than ``np.unique`` on 10^6 strings.
    """
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ParameterError(f"{name} must have shape ({n},) to match tokens, got {labels.shape}")
    ids, uniques = pd.factorize(labels, sort=True)
    if (ids < 0).any():
        raise ParameterError(f"{name} holds missing labels (None/NaN); drop those rows first")
    return ids.astype(np.int64, copy=False), np.asarray(uniques)


# ------------------------------------------------------------------------- angles and bins


# Below this resultant length the unit vectors cancel (e.g. 0 and 180 deg leave R ~ 1e-16)
# and the mean angle is reported as NaN rather than a rounding-noise direction.
_R_EPS = 1e-12


def _unit_vectors(motion: np.ndarray, min_magnitude: float) -> tuple[np.ndarray, np.ndarray]:
    """Motion (N, 2) -> (keep (N,) bool, magnitude (N,)). Kept rows have |m| >= min and > 0."""
    if min_magnitude < 0:
        raise ParameterError(f"min_magnitude must be >= 0, got {min_magnitude}")
    magnitude = np.hypot(motion[:, 0], motion[:, 1])
    return (magnitude >= min_magnitude) & (magnitude > 0), magnitude


# ------------------------------------------------------------------- per-code directions


def token_directions(tokens, motion, n_codes: int | None = None, min_magnitude: float = 0.0):
    """Per-code motion statistics: the "compass" of the codebook.

    tokens (N,) ints, motion (N, 2) image-axis vectors. Rows with ``|motion| < min_magnitude``
    and rows with zero motion (no direction) are excluded from everything below.

    Returns a dict of arrays indexed by code id (length ``n_codes``, default max token + 1):

    - ``count`` (K,) int: kept rows per code.
    - ``mean_vector`` (K, 2): mean (dx, dy) in image axes.
    - ``mean_angle`` (K,) degrees in [0, 360), 0 = right, 90 = up: circular mean of the
      rows' unit vectors (magnitude-free). NaN if the code has no rows or R <= 1e-12.
    - ``resultant_length`` (K,) R in [0, 1]: length of the mean unit vector; 1 = every row
      of the code moves the same way, ~1/sqrt(count) for random directions.
    - ``mean_magnitude`` (K,): mean |motion|.

    Codes with no kept rows are NaN in every float array (count 0).
    """
    tokens, n_codes = _check_tokens(tokens, n_codes)
    motion = _check_rows("motion", motion, tokens.size, width=2)
    keep, magnitude = _unit_vectors(motion, min_magnitude)
    t, m, mag = tokens[keep], motion[keep], magnitude[keep]
    count = np.bincount(t, minlength=n_codes)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.where(count > 0, count, np.nan)
        mean_vector = np.stack(
            [np.bincount(t, m[:, i], minlength=n_codes) / denom for i in range(2)], axis=1
        )
        ux = np.bincount(t, m[:, 0] / mag, minlength=n_codes) / denom
        uy = np.bincount(t, -m[:, 1] / mag, minlength=n_codes) / denom  # up is positive
        r = np.minimum(np.hypot(ux, uy), 1.0)  # rounding can push R a hair above 1
        mean_angle = np.where(r > _R_EPS, wrap_degrees(np.degrees(np.arctan2(uy, ux))), np.nan)
        mean_magnitude = np.bincount(t, mag, minlength=n_codes) / denom
    return {
        "count": count,
        "mean_vector": mean_vector,
        "mean_angle": mean_angle,
        "resultant_length": r,
        "mean_magnitude": mean_magnitude,
    }


def angular_histograms(tokens, angles, n_bins: int = 16, n_codes: int | None = None):
    """Per-code histogram of motion directions. Returns (n_codes, n_bins) int counts.

    Bins are compass bins (see :func:`nblib.flow.angle_bins`): column 0 is centred on "right".
    """
    tokens, n_codes = _check_tokens(tokens, n_codes)
    angles = _check_rows("angles", angles, tokens.size)
    n_bins = _check_n_bins(n_bins)
    cells = tokens * n_bins + angle_bins(angles, n_bins)
    return np.bincount(cells, minlength=n_codes * n_bins).reshape(n_codes, n_bins)


# --------------------------------------------------------------- cross-group consistency


@functools.lru_cache(maxsize=256)
def _chance_resultant_length(n_groups: int) -> float:
    """E[R] of the mean of G independent uniform unit vectors (Pearson's random walk).

    E|u_1 + ... + u_G| = G * int_0^inf J1(x) J0(x)^(G-1) / x dx (Kluyver), so E[R] is the
    integral itself: 2/pi for G = 2, 0.5249 for 3, 0.4498 for 4, ~0.886 / sqrt(G) for
    large G. quad warns about the slowly decaying oscillating tail but is accurate to 1e-6.
    """

    def integrand(x):
        return special.j1(x) * special.j0(x) ** (n_groups - 1) / x

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return float(integrate.quad(integrand, 0, np.inf, limit=2000)[0])


# Least room between the chance agreement and 1 for a chance-corrected agreement to mean
# anything: with groups that all move one way, chance is ~1 and the correction is noise.
AGREEMENT_MIN_ROOM = 0.05


class _GroupShuffle:
    """Tokens shuffled among the rows of each group (each group keeps its codes' counts).

    Rows are sorted by group once (``order``); ``sorted(rng)`` returns a shuffle in that
    order (no sort, no scatter: O(N), ~17 ms per shuffle of 1M rows) and
    calling the object returns one in the original row order."""

    def __init__(self, tokens: np.ndarray, group_ids: np.ndarray):
        self.order = np.argsort(group_ids, kind="stable")
        self._tokens = tokens[self.order]
        self.groups = group_ids[self.order]
        bounds = np.flatnonzero(np.diff(self.groups)) + 1
        self._edges = np.concatenate([[0], bounds, [len(self.order)]])

    def sorted(self, rng: np.random.Generator) -> np.ndarray:
        work = self._tokens.copy()
        for a, b in zip(self._edges[:-1], self._edges[1:], strict=True):
            rng.shuffle(work[a:b])
        return work

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        out = np.empty_like(self._tokens)
        out[self.order] = self.sorted(rng)
        return out


def _code_agreement(cell, ux, uy, shape, counts, n_counting, offset=None) -> np.ndarray:
    """Per code: |mean over counting groups of the group's unit mean direction| (K,).

    ``offset`` (2, G): a vector subtracted from each cell's mean unit vector before taking
    its direction (the group's own mean motion, see ``consistency_score(center=True)``);
    ``counts`` (K, G) rows per cell (a cell takes part where >= min_count)."""
    size = shape[0] * shape[1]
    n = counts[0]
    sx = np.bincount(cell, ux, minlength=size).reshape(shape)
    sy = np.bincount(cell, uy, minlength=size).reshape(shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        if offset is not None:
            sx = sx / n - offset[0][None, :]
            sy = sy / n - offset[1][None, :]
        length = np.hypot(sx, sy)
        ok = counts[1] & (length > 0)
        mean_x = np.where(ok, sx / length, 0.0).sum(axis=1) / n_counting
        mean_y = np.where(ok, sy / length, 0.0).sum(axis=1) / n_counting
    return np.minimum(np.hypot(mean_x, mean_y), 1.0)


def consistency_score(
    tokens,
    motion,
    groups,
    min_count: int = 5,
    min_magnitude: float = 0.0,
    n_permutations: int = 0,
    seed: int = 0,
    center: bool = False,
):
    """Does each code point the same way in every group (dataset / camera / task)?

    Works on unit vectors of the motion (direction only; zero and ``< min_magnitude`` rows
    dropped). For code c and group g with n_cg rows, R_cg is the resultant length of those
    rows and u_cg their mean direction (a unit vector). A (c, g) cell *counts* if
    n_cg >= ``min_count``; a code is *compared* if it has >= 2 counting groups. Over the
    counting groups of a compared code (each group weighted equally):

    - ``within[c]`` = mean_g (1 - R_cg): circular variance inside each group (0 = tight).
    - ``agreement[c]`` = |mean_g u_cg|: resultant length of the group mean directions
      (1 = every group agrees on the code's direction).
    - ``across[c]`` = 1 - agreement[c]: circular variance of the group mean directions
      (always of the plain directions, also with ``center``).
    - ``ratio[c]`` = within / across, seed 004's consistency score: high = consistent
      (inf when across == 0 < within, NaN when both are 0).

    Summaries weight each compared code by its rows in counting cells: ``within``,
    ``across``, ``agreement`` (in [0, 1]; high = consistent) and ``ratio`` =
    within / across of those weighted means (None-worthy inf when across is 0). Chance:
    G unrelated directions give agreement E[R] = 2/pi (G=2), 0.45 (G=4), ~0.886/sqrt(G),
    not 0, so ``agreement_chance`` is the same weighted mean of that exact expectation and
    ``agreement_adjusted`` = (agreement - chance) / (1 - chance) of the weighted means
    (1 = perfect, ~0 = no better than chance, can be negative; NaN when chance is within
    ``AGREEMENT_MIN_ROOM`` of 1, where nothing can be told apart). That chance assumes
    isotropic motion: if all data moves mostly one way, any code "agrees". With
    ``n_permutations`` > 0 the chance of each code is instead its mean agreement over that
    many shuffles of the tokens within each group (``seed``), which keeps each group's
    motion and code counts and so holds for any motion distribution
    (``agreement_null`` says which: "isotropic" or "permutation").

    ``center=True`` judges the agreement on what each code adds to its group's motion: the
    cell's mean unit vector minus the group's mean unit vector over all codes. Without it,
    groups whose motion shares a drift make every code "agree" (its cells all point along
    the drift), even codes that mean nothing, and then even a permutation null is ~1 and
    cannot tell anything apart. ``within``, ``across`` and ``ratio`` stay uncentred (then
    ``across`` is no longer 1 - ``agreement``).
    ``codes_compared`` and ``rows_compared`` say how much of the data the summaries cover.

    Per-code arrays (K,) are NaN for codes not compared; per-cell arrays are (K, G) with
    groups in ``group_labels`` order. No compared code makes every summary NaN.
    """
    tokens, n_codes = _check_tokens(tokens)
    motion = _check_rows("motion", motion, tokens.size, width=2)
    group_ids, group_labels = _factorize("groups", groups, tokens.size)
    if min_count < 1:
        raise ParameterError(f"min_count must be >= 1, got {min_count}")
    keep, magnitude = _unit_vectors(motion, min_magnitude)
    n_groups = len(group_labels)
    cell = (tokens * n_groups + group_ids)[keep]
    size = n_codes * n_groups
    ux = motion[keep, 0] / magnitude[keep]
    uy = -motion[keep, 1] / magnitude[keep]
    n_cg = np.bincount(cell, minlength=size).reshape(n_codes, n_groups)
    sx = np.bincount(cell, ux, minlength=size).reshape(n_codes, n_groups)
    sy = np.bincount(cell, uy, minlength=size).reshape(n_codes, n_groups)

    counts = n_cg >= min_count
    n_counting = counts.sum(axis=1)
    compared = n_counting >= 2
    with np.errstate(invalid="ignore", divide="ignore"):
        length = np.hypot(sx, sy)
        r_cg = np.where(counts, np.minimum(length / n_cg, 1.0), np.nan)
        dir_x = np.where(counts & (length > 0), sx / length, np.nan)
        dir_y = np.where(counts & (length > 0), sy / length, np.nan)
        group_angle = wrap_degrees(np.degrees(np.arctan2(dir_y, dir_x)))
        # Means over counting groups only; a cell whose unit vectors cancel exactly has no
        # direction and adds a zero vector (it lowers agreement).
        within = np.where(counts, 1.0 - r_cg, 0.0).sum(axis=1) / n_counting
        within = np.where(compared, within, np.nan)
        offset = None
        if center:
            g_kept = group_ids[keep]
            g_n = np.maximum(np.bincount(g_kept, minlength=n_groups), 1)
            offset = np.stack([np.bincount(g_kept, u, minlength=n_groups) / g_n for u in (ux, uy)])
        shape = (n_codes, n_groups)
        cells_in = (n_cg, counts)
        # seed 004's variance ratio stays on the plain directions, whatever ``center`` says
        plain = _code_agreement(cell, ux, uy, shape, cells_in, n_counting)
        across = np.where(compared, 1.0 - plain, np.nan)
        ratio = within / across
        agreement = (
            plain
            if offset is None
            else _code_agreement(cell, ux, uy, shape, cells_in, n_counting, offset)
        )
        agreement = np.where(compared, agreement, np.nan)
    chance = np.array([_chance_resultant_length(int(g)) if g >= 2 else np.nan for g in n_counting])
    if not (isinstance(n_permutations, int) and n_permutations >= 0):
        raise ParameterError(f"n_permutations must be an int >= 0, got {n_permutations!r}")
    if n_permutations and compared.any():
        rng = _rng(seed)
        shuffle = _GroupShuffle(tokens[keep], group_ids[keep])
        sx_, sy_ = ux[shuffle.order], uy[shuffle.order]  # motion in the shuffler's row order
        null = np.zeros(n_codes)
        for _ in range(n_permutations):
            cells = shuffle.sorted(rng) * n_groups + shuffle.groups
            null += _code_agreement(cells, sx_, sy_, shape, cells_in, n_counting, offset)
        chance = np.where(compared, null / n_permutations, np.nan)

    weight = np.where(counts, n_cg, 0).sum(axis=1) * compared
    summary = dict.fromkeys(["within", "across", "ratio", "agreement"], np.nan)
    summary |= {"agreement_chance": np.nan, "agreement_adjusted": np.nan}
    summary["agreement_null"] = "permutation" if n_permutations else "isotropic"
    summary["agreement_centered"] = bool(center)
    if compared.any():
        w = weight[compared]
        summary["within"] = float(np.average(within[compared], weights=w))
        summary["agreement"] = float(np.average(agreement[compared], weights=w))
        summary["across"] = float(np.average(across[compared], weights=w))
        with np.errstate(invalid="ignore", divide="ignore"):
            summary["ratio"] = float(np.float64(summary["within"]) / summary["across"])
        c = float(np.average(chance[compared], weights=w))
        summary["agreement_chance"] = c
        # Corrected on the weighted means, not per code: when the chance is close to 1
        # (every group moves the same way) per-code ratios of two tiny differences are
        # noise. Below AGREEMENT_MIN_ROOM of room above chance nothing can be told: NaN.
        if 1.0 - c >= AGREEMENT_MIN_ROOM:
            summary["agreement_adjusted"] = (summary["agreement"] - c) / (1.0 - c)
    return {
        **summary,
        "codes_compared": int(compared.sum()),
        "rows_compared": int(weight.sum()),
        "per_code": {
            "within": within,
            "across": across,
            "ratio": ratio,
            "agreement": agreement,
            "agreement_chance": chance,
            "n_groups": n_counting,
            "rows": weight,
        },
        "per_cell": {"count": n_cg, "resultant_length": r_cg, "mean_angle": group_angle},
        "group_labels": group_labels,
    }


# ---------------------------------------------------------------- information measures


def _entropy(counts: np.ndarray, base: float) -> float:
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
    tokens, n_codes = _check_tokens(tokens)
    angles = _check_rows("angles", angles, tokens.size)
    n_bins = _check_n_bins(n_bins)
    joint = np.bincount(
        tokens * n_bins + angle_bins(angles, n_bins), minlength=n_codes * n_bins
    ).reshape(n_codes, n_bins)
    conditional = _entropy(joint, 2) - _entropy(joint.sum(axis=0), 2)
    conditional = max(conditional, 0.0) if np.isfinite(conditional) else conditional
    used = int((joint.sum(axis=1) > 0).sum())
    return {
        "conditional_entropy_bits": conditional,
        "normalized_conditional_entropy": conditional / np.log2(used) if used > 1 else np.nan,
        "token_entropy_bits": _entropy(joint.sum(axis=1), 2),
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
        pick = _rng(seed).choice(a.size, AMI_MAX_ROWS, replace=False)
        a, b = a[pick], b[pick]
    ami = float(adjusted_mutual_info_score(a, b))
    return {"nmi": nmi, "ami": ami, "ami_rows": int(a.size), "ami_subsampled": subsampled}


def direction_nmi(tokens, angles, n_bins: int = 8, seed: int = 0) -> dict:
    """NMI and AMI (sklearn, arithmetic normalisation) between tokens and direction bins.

    1 = tokens and compass bins determine each other, ~0 = unrelated. NMI uses every row;
    AMI (chance-corrected) uses a random subsample of at most ``AMI_MAX_ROWS`` rows drawn
    with ``seed`` (its own stream) when N is larger, flagged by ``ami_subsampled`` and ``ami_rows``.
    """
    tokens, _ = _check_tokens(tokens)
    angles = _check_rows("angles", angles, tokens.size)
    return _mutual_information_scores(tokens, angle_bins(angles, n_bins), seed)


def instruction_nmi(tokens, instructions, seed: int = 0) -> dict:
    """NMI and AMI between tokens and instructions (strings or cluster ids), as direction_nmi."""
    tokens, _ = _check_tokens(tokens)
    ids, labels = _factorize("instructions", instructions, tokens.size)
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


def codebook_usage(tokens, n_codes: int) -> dict:
    """How much of the codebook is used. tokens (N,), n_codes K.

    ``counts`` (K,), ``perplexity`` = exp(entropy of the usage distribution, natural log)
    (K for uniform use, 1 for a single code, NaN for no rows), ``active_codes`` (count > 0),
    ``dead_codes`` (list of ids with count 0), ``usage_fraction`` = active / K.
    """
    if n_codes is None or int(n_codes) != n_codes or n_codes < 1:
        raise ParameterError(f"n_codes must be a positive integer, got {n_codes!r}")
    tokens, n_codes = _check_tokens(tokens, n_codes)
    counts = np.bincount(tokens, minlength=n_codes)
    active = int((counts > 0).sum())
    return {
        "counts": counts,
        "perplexity": float(np.exp(_entropy(counts, np.e))),
        "active_codes": active,
        "dead_codes": np.flatnonzero(counts == 0).tolist(),
        "usage_fraction": active / n_codes,
    }


def direction_probe(
    tokens, angles, n_bins: int = 8, seed: int = 0, test_fraction: float = 0.3
) -> dict:
    """How well does the token alone predict the compass bin of the motion?

    The probe is majority-per-token: each code predicts the most common direction bin of its
    training rows (codes unseen in training predict the overall majority bin). With one-hot
    tokens as the only input this is exactly what a fitted linear (logistic) probe
    converges to -- every code has its own weight row, so the best linear rule is the
    per-code argmax -- but it is closed-form and O(N), so no subsampling is needed.

    Rows go to the test set independently with probability ``test_fraction`` (``seed``).
    Returns ``accuracy`` (test), ``train_accuracy``, ``chance`` = test accuracy of always
    predicting the training majority bin, ``n_train``, ``n_test``. NaN if a split is empty.
    """
    if not 0 < test_fraction < 1:
        raise ParameterError(f"test_fraction must be in (0, 1), got {test_fraction}")
    tokens, n_codes = _check_tokens(tokens)
    angles = _check_rows("angles", angles, tokens.size)
    n_bins = _check_n_bins(n_bins)
    bins = angle_bins(angles, n_bins)
    test = _rng(seed).random(tokens.size) < test_fraction
    n_test, n_train = int(test.sum()), int((~test).sum())
    result = {"accuracy": np.nan, "train_accuracy": np.nan, "chance": np.nan}
    result |= {"n_train": n_train, "n_test": n_test, "n_bins": n_bins}
    if n_test == 0 or n_train == 0:
        return result
    train = ~test
    joint = np.bincount(tokens[train] * n_bins + bins[train], minlength=n_codes * n_bins).reshape(
        n_codes, n_bins
    )
    majority = int(joint.sum(axis=0).argmax())
    prediction = np.where(joint.sum(axis=1) > 0, joint.argmax(axis=1), majority)
    result["accuracy"] = float((prediction[tokens[test]] == bins[test]).mean())
    result["train_accuracy"] = float((prediction[tokens[train]] == bins[train]).mean())
    result["chance"] = float((bins[test] == majority).mean())
    return result


# ------------------------------------------------------------------------------ summary


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
    tokens, n_codes = _check_tokens(tokens, n_codes)
    motion = _check_rows("motion", motion, tokens.size, width=2)
    keep, magnitude = _unit_vectors(motion, min_magnitude)
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
