"""Where does per-sample information collapse along a VLA pipeline?

Each stage of a policy (frozen-VLM embedding, proprio encoding, the condition vector the
action head sees, ...) gives one representation ``x`` of shape (N, D): N samples (rows),
D dims (columns), finite floats. Every function here takes such an ``x``; stages may have
different D but should be computed on the same N samples.

A stage has *collapsed* when its samples are nearly identical: the frozen-VLM embeddings
that prompted this module had a mean pairwise cosine of 0.997 across samples (proprio
0.006, condition vector 0.730). The metrics:

- :func:`pairwise_cosine`: uncentred cosine over all pairs (the number quoted above).
- :func:`spread`: share of the energy that differs between samples (0 = all identical);
  about 1 - mean pairwise cosine. :func:`collapse_stage` thresholds it.
- :func:`active_dims`: dims that vary at all (std above an absolute ``eps``).
- :func:`effective_rank`: how many directions the samples use (participation ratio).
- :func:`group_similarity`: are samples of one task / episode / dataset closer than others?
- :func:`linear_cka`: how much two stages' sample geometry agrees.

A high cosine says the per-sample part is *small* next to a shared offset, not that it
is gone: a layer that subtracts the mean (LayerNorm) can still read it. The centred
metrics (``effective_rank(center=True)``, :func:`linear_cka`, :func:`group_similarity` on
centred input) tell whether what remains still has structure.

Undefined values are NaN (never a made-up number); :func:`stage_summary` turns them into
None for metrics.json. Everything is computed in float64. Pairwise metrics are
O(N^2 D) and build the N x N cosine matrix in row blocks (~32 MB each), so 10^4 samples
work without 800 MB of memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from nblib.errors import ParameterError

# Elements of the N x N cosine matrix computed at once (float64: 32 MB).
_BLOCK_ELEMENTS = 1 << 22


# ---------------------------------------------------------------------------- input checks


def _check_x(name: str, x, least: int = 1) -> np.ndarray:
    """Validate a finite float array (N, D) with N >= least and D >= 1; returns float64."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterError(
            f"{name} must be a numeric array (N samples, D dims), got {type(x).__name__}"
        ) from err
    if arr.ndim != 2:
        raise ParameterError(f"{name} must be 2-D (N samples, D dims), got shape {arr.shape}")
    if arr.shape[0] < least:
        raise ParameterError(
            f"{name} needs at least {least} samples (rows) here, got shape {arr.shape}"
        )
    if arr.shape[1] < 1:
        raise ParameterError(f"{name} needs at least one dim (column), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ParameterError(f"{name} holds NaN or inf; drop or fill those rows first")
    return arr


def _check_nonnegative(name: str, value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"{name} must be a number >= 0, got {value!r}") from err
    if isinstance(value, bool) or not math.isfinite(out) or out < 0:
        raise ParameterError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def _group_ids(groups, n: int) -> np.ndarray:
    """Labels (N,) of any type -> int ids (N,)."""
    labels = np.asarray(groups)
    if labels.shape != (n,):
        raise ParameterError(f"groups must have shape ({n},) to match x, got {labels.shape}")
    ids, _ = pd.factorize(labels)
    if (ids < 0).any():
        raise ParameterError("groups holds missing labels (None/NaN); drop those rows first")
    return ids


# ---------------------------------------------------------------------------- helpers


def _rescaled(x: np.ndarray) -> np.ndarray:
    """x / max|x|: every quotient below is scale-free, and this keeps squares of huge or
    tiny values from overflowing or underflowing. All-zero x is returned as is."""
    scale = np.abs(x).max()
    return x / scale if scale > 0 else x


def _centred(x: np.ndarray) -> np.ndarray:
    """x minus its mean over samples. Shifting by the first row first makes identical rows
    centre to exact zeros (a rounded mean would leave ~1e-17 noise that looks like signal)
    and keeps precision when a large shared offset sits on small variation."""
    shifted = x - x[0]
    return shifted - shifted.mean(axis=0)


def _unit_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to unit norm, only those with a non-zero norm (a zero row has no
    direction). Returns (unit rows (M, D), kept (N,) bool)."""
    # divide by each row's max |value| first so the norm cannot overflow
    peak = np.abs(x).max(axis=1)
    kept = peak > 0
    u = x[kept] / peak[kept, None]
    return u / np.linalg.norm(u, axis=1, keepdims=True), kept


def _pair_blocks(u: np.ndarray):
    """Yield (a, b, cos, upper) over row blocks of the cosine matrix of unit rows u (M, D):
    cos (b - a, M - a) holds rows a:b against columns a:, upper marks the pairs i < j."""
    m = len(u)
    step = max(1, _BLOCK_ELEMENTS // max(m, 1))
    for a in range(0, m, step):
        b = min(a + step, m)
        # rounding can put cos of parallel rows a hair outside [-1, 1]
        cos = np.clip(u[a:b] @ u[a:].T, -1.0, 1.0)
        upper = np.arange(a, b)[:, None] < np.arange(a, m)[None, :]
        yield a, b, cos, upper


# ---------------------------------------------------------------------------- metrics


def pairwise_cosine(x) -> dict:
    """Cosine similarity of every pair of samples i < j (uncentred, the diagonal left out).

    x (N, D), N >= 2. Returns ``{"mean", "min", "max"}`` floats. A row of zeros has no
    direction, so its pairs are left out; with fewer than two non-zero rows all three are
    NaN. Uncentred on purpose: a large shared offset drives every cosine towards 1, which
    is the collapse this measures (see :func:`spread` for the same question as an energy
    share).
    """
    x = _check_x("x", x, least=2)
    u, _ = _unit_rows(x)
    total, count, low, high = 0.0, 0, np.inf, -np.inf
    for _, _, cos, upper in _pair_blocks(u):
        values = cos[upper]
        if values.size:
            total += float(values.sum())
            count += values.size
            low, high = min(low, float(values.min())), max(high, float(values.max()))
    if count == 0:
        return {"mean": math.nan, "min": math.nan, "max": math.nan}
    return {"mean": total / count, "min": low, "max": high}


def active_dims(x, eps: float = 0.01) -> dict:
    """Dims that vary across samples: std over samples (ddof=0) strictly above ``eps``.

    x (N, D). ``eps`` is absolute, in the units of x, so compare stages of similar scale
    (or standardise first): a proprio vector in radians and a VLM embedding with norm ~50
    are not judged alike by one eps. Returns ``{"count": int, "fraction": count / D,
    "eps": float}``.
    """
    x = _check_x("x", x)
    eps = _check_nonnegative("eps", eps)
    # std of the exactly centred x: np.std leaves ~1e-17 on a constant column (rounded mean)
    std = np.sqrt(np.mean(_centred(x) ** 2, axis=0))
    count = int((std > eps).sum())
    return {"count": count, "fraction": count / x.shape[1], "eps": eps}


def effective_rank(x, center: bool = False) -> float:
    """Participation ratio of the squared singular values s_i^2 of x (N, D):
    (sum s^2)^2 / sum s^4, between 1 (one direction) and min(N, D) (all equally used).

    ``center=True`` first subtracts the mean over samples, so a shared offset (which alone
    gives rank ~1 uncentred) does not count. Known answers: identical non-zero rows -> 1,
    n orthogonal rows of equal norm -> n. NaN when x (after centring) is all zero.
    """
    x = _check_x("x", x)
    if center:
        x = _centred(x)
    x = _rescaled(x)
    if not x.any():
        return math.nan
    # sum s^2 = trace(G) and sum s^4 = ||G||_F^2 for G = x^T x or x x^T (the same non-zero
    # eigenvalues): the smaller Gram matrix is one BLAS call, far cheaper than an SVD
    gram = x.T @ x if x.shape[1] <= x.shape[0] else x @ x.T
    return float(np.trace(gram) ** 2 / np.sum(gram * gram))


def spread(x) -> float:
    """Fraction of the representation's energy that differs between samples.

    trace(covariance over samples, ddof=0) / mean squared row norm
    = 1 - |mean row|^2 / mean |row|^2, in [0, 1]: 0 = every sample identical, ~1 =
    samples scattered around zero (no shared offset). NaN when every row is zero.

    For rows of equal norm it is exactly (1 - 1/N) * (1 - mean pairwise cosine), so about
    1 - :func:`pairwise_cosine` mean: 0.997 mean cosine is a spread of ~0.003.
    """
    x = _rescaled(_check_x("x", x))
    energy = float(np.mean(np.sum(x * x, axis=1)))
    if energy == 0:
        return math.nan
    c = _centred(x)
    return float(np.mean(np.sum(c * c, axis=1))) / energy


def resampled_spread(x, idx: np.ndarray) -> np.ndarray | float:
    """:func:`spread` of the rows ``x[idx]``: ``idx`` (N,) gives a float, (B, N) one value
    per resample (B,), computed from row counts without copying the rows (for
    bootstrap intervals of a stage's spread)."""
    x = _rescaled(_check_x("x", x))
    c = x - x[0]  # variance is shift-invariant; the shift keeps identical rows exact
    sq_x, sq_c = np.sum(x * x, axis=1), np.sum(c * c, axis=1)
    idx = np.asarray(idx)
    single = idx.ndim == 1
    idx = np.atleast_2d(idx)
    counts = np.zeros((len(idx), len(x)))
    np.add.at(counts, (np.arange(len(idx))[:, None], idx), 1.0)
    counts /= idx.shape[1]
    energy = counts @ sq_x
    mean_c = counts @ c
    var = np.maximum(counts @ sq_c - np.sum(mean_c * mean_c, axis=1), 0.0)
    out = np.divide(var, energy, out=np.full(len(idx), np.nan), where=energy > 0)
    return float(out[0]) if single else out


def group_similarity(x, groups) -> dict:
    """Mean pairwise cosine (uncentred) within and across groups (task, episode, dataset).

    x (N, D) with N >= 2, groups (N,) labels of any type. Every pair i < j of non-zero rows
    counts once, so large groups weigh more (by their number of pairs). Returns
    ``{"within", "across", "gap" = within - across, "within_pairs", "across_pairs"}``;
    ``within`` is NaN without two non-zero rows sharing a label, ``across`` without two of
    different labels (e.g. one group), ``gap`` when either is. A collapsed stage has a gap
    ~0 with both near 1; to ask whether the small per-sample part still separates groups,
    pass centred input (``x - x.mean(0)``).
    """
    x = _check_x("x", x, least=2)
    ids = _group_ids(groups, len(x))
    u, kept = _unit_rows(x)
    ids = ids[kept]
    sums, counts = np.zeros(2), np.zeros(2, dtype=np.int64)  # [within, across]
    for a, b, cos, upper in _pair_blocks(u):
        same = ids[a:b, None] == ids[None, a:]
        for k, mask in enumerate((upper & same, upper & ~same)):
            sums[k] += cos[mask].sum()
            counts[k] += int(mask.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        within, across = (sums / np.where(counts > 0, counts, np.nan)).tolist()
    return {
        "within": within,
        "across": across,
        "gap": within - across,
        "within_pairs": int(counts[0]),
        "across_pairs": int(counts[1]),
    }


def linear_cka(x, y) -> float:
    """Linear CKA (Kornblith et al. 2019) between two representations of the same N samples.

    x (N, Dx), y (N, Dy), N >= 2 (D may differ). Both are centred over samples, then
    CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), in [0, 1]: 1 when y is x up to an
    orthogonal map, a scale and an offset. NaN when x or y is constant over samples.
    Independent random representations do not give 0 but a positive bias that grows with
    D / N, so compare against such a baseline rather than 0.
    """
    x = _check_x("x", x, least=2)
    y = _check_x("y", y, least=2)
    if len(y) != len(x):
        raise ParameterError(
            f"y must have the same N={len(x)} samples (rows) as x, got shape {y.shape}"
        )
    x, y = _rescaled(_centred(x)), _rescaled(_centred(y))
    if not x.any() or not y.any():
        return math.nan
    n, dx, dy = len(x), x.shape[1], y.shape[1]
    if n * n * (dx + dy) < n * (dx * dy + dx * dx + dy * dy):
        # few samples, many dims: the same quantities from the N x N Gram matrices
        kx, ky = x @ x.T, y @ y.T
        cross, norm_x, norm_y = np.sum(kx * ky), np.linalg.norm(kx), np.linalg.norm(ky)
    else:
        cross = np.sum((y.T @ x) ** 2)
        norm_x, norm_y = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    return float(cross / (norm_x * norm_y))


# ---------------------------------------------------------------------------- summaries


def _json_scalar(value):
    """metrics.json scalar: NaN -> None, numpy numbers -> Python int / float."""
    if isinstance(value, int | np.integer):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


def stage_summary(x, groups=None, eps: float = 0.01) -> dict:
    """Every metric of one stage's representation x (N, D), N >= 2, as one flat dict of
    plain Python numbers for metrics.json; undefined values are None (JSON has no NaN).

    Keys: ``cos_mean``, ``cos_min``, ``cos_max`` (:func:`pairwise_cosine`),
    ``active_dims``, ``active_fraction`` (:func:`active_dims` with ``eps``),
    ``effective_rank``, ``effective_rank_centered`` (:func:`effective_rank`), ``spread``,
    ``dims`` (D), ``samples`` (N); with ``groups`` also ``within_group_cos``,
    ``across_group_cos``, ``group_gap`` (:func:`group_similarity`).
    """
    x = _check_x("x", x, least=2)
    cos = pairwise_cosine(x)
    active = active_dims(x, eps)
    out = {
        "cos_mean": cos["mean"],
        "cos_min": cos["min"],
        "cos_max": cos["max"],
        "active_dims": active["count"],
        "active_fraction": active["fraction"],
        "effective_rank": effective_rank(x),
        "effective_rank_centered": effective_rank(x, center=True),
        "spread": spread(x),
        "dims": x.shape[1],
        "samples": x.shape[0],
    }
    if groups is not None:
        sim = group_similarity(x, groups)
        out |= {
            "within_group_cos": sim["within"],
            "across_group_cos": sim["across"],
            "group_gap": sim["gap"],
        }
    return {key: _json_scalar(value) for key, value in out.items()}


def _defined(value) -> float | None:
    return None if value is None or math.isnan(float(value)) else float(value)


def collapse_stage(
    summaries: Mapping[str, Mapping], order: Sequence[str], spread_threshold: float = 0.01
) -> dict:
    """Which stages, in pipeline order, have collapsed, and where does collapse start?

    ``summaries`` maps stage name -> :func:`stage_summary` dict (``spread`` is read, and
    ``spread_low`` / ``spread_high`` when present: an interval, e.g. a bootstrap over the
    samples), ``order`` lists the stages to judge in pipeline order. A stage is collapsed
    when its spread is below ``spread_threshold`` (its samples are nearly identical:
    spread 0.01 is a mean pairwise cosine of ~0.99, so a VLM at 0.997 is collapsed) or
    undefined (None / NaN: every row zero). With an interval, the whole interval must lie
    below the threshold; a stage whose interval straddles it is ``uncertain`` and not
    counted as collapsed.

    Returns ``{"collapsed": [names in order], "first": first collapsed name or None,
    "uncertain": [names whose interval straddles the threshold], "threshold":
    spread_threshold, "least_spread": name with the smallest defined spread (the first on
    ties; None if no stage has one)}``.
    """
    threshold = _check_nonnegative("spread_threshold", spread_threshold)
    if isinstance(order, str):
        raise ParameterError(f"order must be a list of stage names, got the string {order!r}")
    order = list(order)
    missing = [name for name in order if name not in summaries]
    if missing:
        raise ParameterError(
            f"order names stages missing from summaries: {missing}; summaries has {list(summaries)}"
        )
    if len(set(order)) != len(order):
        raise ParameterError(f"order must name each stage once, got {order}")
    spreads = {}
    for name in order:
        if "spread" not in summaries[name]:
            raise ParameterError(
                f"summaries[{name!r}] has no 'spread' key; expected a stage_summary dict"
            )
        spreads[name] = _defined(summaries[name]["spread"])
    uppers = {n: _defined(summaries[n].get("spread_high", spreads[n])) for n in order}
    lowers = {n: _defined(summaries[n].get("spread_low", spreads[n])) for n in order}
    collapsed = [n for n in order if spreads[n] is None or uppers[n] < threshold]
    uncertain = [
        n for n in order if n not in collapsed and lowers[n] is not None and lowers[n] < threshold
    ]
    defined = [name for name in order if spreads[name] is not None]
    return {
        "collapsed": collapsed,
        "first": collapsed[0] if collapsed else None,
        "uncertain": uncertain,
        "threshold": threshold,
        "least_spread": min(defined, key=spreads.__getitem__) if defined else None,
    }
