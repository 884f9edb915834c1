"""Does each code point the same way in every group (dataset / camera / task)? Seed 004's
within/across variance ratio and a chance-corrected agreement of the groups' directions."""

from __future__ import annotations

import functools
import warnings

import numpy as np
from scipy import integrate, special

from nblib.errors import ParameterError
from nblib.flow import wrap_degrees
from nblib.metrics.tokens.inputs import (
    check_rows,
    check_tokens,
    factorize,
    seeded_rng,
    unit_vectors,
)


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
    tokens, n_codes = check_tokens(tokens)
    motion = check_rows("motion", motion, tokens.size, width=2)
    group_ids, group_labels = factorize("groups", groups, tokens.size)
    if min_count < 1:
        raise ParameterError(f"min_count must be >= 1, got {min_count}")
    keep, magnitude = unit_vectors(motion, min_magnitude)
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
        rng = seeded_rng(seed)
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
