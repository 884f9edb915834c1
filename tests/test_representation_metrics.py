"""Representation-collapse metrics on hand-built matrices with known answers."""

import json
import math

import numpy as np
import pytest

from nblib.errors import ParameterError
from nblib.metrics import representations
from nblib.metrics.representations import (
    active_dims,
    collapse_stage,
    effective_rank,
    group_similarity,
    linear_cka,
    pairwise_cosine,
    resampled_spread,
    spread,
    stage_summary,
)


def _orthogonal(d, rng):
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


def _naive_cka(x, y):
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def test_identical_vectors_are_fully_collapsed():
    x = np.tile([0.3, -1.2, 2.0, 0.1], (6, 1))
    cos = pairwise_cosine(x)
    assert cos["mean"] == pytest.approx(1.0, abs=1e-12)
    assert cos["min"] == pytest.approx(1.0, abs=1e-12)
    assert cos["max"] == pytest.approx(1.0, abs=1e-12)
    assert effective_rank(x) == pytest.approx(1.0, abs=1e-12)
    assert math.isnan(effective_rank(x, center=True))  # nothing left after centring
    assert spread(x) == 0.0  # exact: identical rows centre to exact zeros
    assert active_dims(x, eps=0.0) == {"count": 0, "fraction": 0.0, "eps": 0.0}


def test_orthogonal_equal_norm_vectors():
    for n in (2, 3, 5):
        x = np.eye(n) * 3
        cos = pairwise_cosine(x)
        assert cos == {"mean": 0.0, "min": 0.0, "max": 0.0}
        assert effective_rank(x) == pytest.approx(n)
        # centred I_n has eigenvalues 1 (n - 1 times) and 0
        assert effective_rank(x, center=True) == pytest.approx(n - 1)
        assert spread(x) == pytest.approx(1 - 1 / n)  # (1 - 1/N)(1 - mean cos)


def test_pairwise_cosine_known_pairs_and_zero_rows():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    half = 1 / math.sqrt(2)
    expected = {"mean": 2 * half / 3, "min": 0.0, "max": half}
    assert pairwise_cosine(x) == pytest.approx(expected)
    # a zero row has no direction: its pairs are left out, not counted as cos 0
    with_zero = np.vstack([x[:1], np.zeros((1, 2)), x[1:]])
    assert pairwise_cosine(with_zero) == pytest.approx(expected)
    assert pairwise_cosine(np.array([[2.0, 0.0], [-5.0, 0.0]]))["mean"] == -1.0
    alone = pairwise_cosine(np.array([[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]]))
    assert all(math.isnan(v) for v in alone.values())
    # huge and tiny magnitudes neither overflow nor underflow
    assert pairwise_cosine(x * 1e300) == pytest.approx(expected)
    assert pairwise_cosine(x * 1e-310) == pytest.approx(expected)


def test_pairwise_cosine_blocks_match_the_full_matrix(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 5)) + 0.5
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    full = (u @ u.T)[np.triu_indices(37, k=1)]
    monkeypatch.setattr(representations, "_BLOCK_ELEMENTS", 50)  # blocks of one row
    cos = pairwise_cosine(x)
    assert cos["mean"] == pytest.approx(full.mean())
    assert cos["min"] == pytest.approx(full.min()) and cos["max"] == pytest.approx(full.max())


def test_active_dims_counts_std_strictly_above_eps():
    signs = np.array([1.0, -1.0, 1.0, -1.0])
    # column stds (ddof=0): 0, 0.005, 0.5, 2
    x = np.stack([np.full(4, 7.0), 0.005 * signs, 0.5 * signs, 2.0 * signs], axis=1)
    assert active_dims(x) == {"count": 2, "fraction": 0.5, "eps": 0.01}
    assert active_dims(x, eps=0.001)["count"] == 3
    assert active_dims(x, eps=0.5)["count"] == 1  # std == eps is not above it
    assert active_dims(x, eps=5.0)["fraction"] == 0.0
    with pytest.raises(ParameterError, match="eps"):
        active_dims(x, eps=-0.1)


def test_effective_rank_known_spectrum():
    # squared singular values 4 and 1: (4 + 1)^2 / (16 + 1)
    assert effective_rank(np.diag([2.0, 1.0])) == pytest.approx(25 / 17)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 20))  # N < D takes the N x N Gram matrix
    s2 = np.linalg.svd(x, compute_uv=False) ** 2
    assert effective_rank(x) == pytest.approx(s2.sum() ** 2 / (s2**2).sum())
    assert effective_rank(x.T) == pytest.approx(effective_rank(x))
    assert math.isnan(effective_rank(np.zeros((4, 3))))
    # a shared offset makes rank ~1 uncentred; centring recovers the two used directions
    offset = np.array([0.0, 0.0, 100.0])
    two = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]]) + offset
    assert effective_rank(two) < 1.01
    assert effective_rank(two, center=True) == pytest.approx(2.0)


def test_spread_zero_mean_offset_and_cosine_relation():
    rng = np.random.default_rng(2)
    assert spread(rng.normal(size=(2000, 16))) > 0.99
    assert spread(np.array([[1.0, 0.0], [-1.0, 0.0]])) == 1.0
    shared = 10.0 + 0.01 * rng.normal(size=(500, 16))
    assert spread(shared) < 1e-5  # ~ (0.01 / 10)^2
    assert math.isnan(spread(np.zeros((3, 4))))
    assert spread(shared * 1e-300) == pytest.approx(spread(shared))  # scale-free
    # equal-norm rows: spread = (1 - 1/N) * (1 - mean pairwise cosine), exactly
    unit = rng.normal(size=(40, 6)) + 2.0
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    cos = pairwise_cosine(unit)["mean"]
    assert spread(unit) == pytest.approx((1 - 1 / 40) * (1 - cos), rel=1e-10)


def test_linear_cka_rotation_scale_and_independent():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 8))
    rotated = 3.5 * x @ _orthogonal(8, rng) + 2.0
    assert linear_cka(x, rotated) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x, -0.2 * x) == pytest.approx(1.0, abs=1e-10)
    other = linear_cka(x, rng.normal(size=(50, 8)))
    assert 0.0 < other < 0.5  # positive bias of ~D/N, clearly below 1
    y = rng.normal(size=(50, 3))
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x))
    assert linear_cka(x, y) == pytest.approx(_naive_cka(x, y))
    # few samples, many dims: the N x N Gram path gives the same numbers
    wide = rng.normal(size=(10, 40))
    assert linear_cka(wide, wide @ _orthogonal(40, rng)) == pytest.approx(1.0, abs=1e-10)
    narrow = rng.normal(size=(10, 30))
    assert linear_cka(wide, narrow) == pytest.approx(_naive_cka(wide, narrow))
    assert math.isnan(linear_cka(x, np.tile(y[0], (50, 1))))
    assert math.isnan(linear_cka(np.ones((50, 8)), x))


def test_group_similarity_two_clusters():
    rng = np.random.default_rng(4)
    e1, e2 = np.eye(8)[0], np.eye(8)[1]
    x = np.vstack([e1 + 0.01 * rng.normal(size=(20, 8)), e2 + 0.01 * rng.normal(size=(30, 8))])
    groups = np.array(["pick"] * 20 + ["place"] * 30)
    sim = group_similarity(x, groups)
    assert sim["within"] > 0.99 and abs(sim["across"]) < 0.05
    assert sim["gap"] == pytest.approx(sim["within"] - sim["across"])
    assert sim["within_pairs"] == 20 * 19 // 2 + 30 * 29 // 2
    assert sim["across_pairs"] == 20 * 30
    exact = group_similarity(np.array([[1.0, 0], [2, 0], [0, 1], [0, 3]]), [7, 7, 9, 9])
    assert exact == {"within": 1.0, "across": 0.0, "gap": 1.0, "within_pairs": 2, "across_pairs": 4}
    one = group_similarity(x, np.zeros(50, int))  # one group: nothing across
    assert math.isnan(one["across"]) and math.isnan(one["gap"]) and one["within"] > 0.4
    singles = group_similarity(x[:3], ["a", "b", "c"])  # no pair shares a label
    assert math.isnan(singles["within"]) and singles["within_pairs"] == 0


def test_stage_summary_keys_types_and_none_for_undefined():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 6))
    out = stage_summary(x)
    assert set(out) == {
        "cos_mean",
        "cos_min",
        "cos_max",
        "active_dims",
        "active_fraction",
        "effective_rank",
        "effective_rank_centered",
        "spread",
        "dims",
        "samples",
    }
    assert all(type(v) in (int, float) for v in out.values())
    assert (out["dims"], out["samples"], out["active_dims"]) == (6, 30, 6)
    assert out["spread"] == pytest.approx(spread(x))
    json.dumps(out, allow_nan=False)
    grouped = stage_summary(x, groups=np.arange(30) % 3)
    assert {"within_group_cos", "across_group_cos", "group_gap"} <= set(grouped)
    zero = stage_summary(np.zeros((4, 3)), groups=["a", "a", "b", "b"])
    for key in ("effective_rank", "effective_rank_centered", "spread", "cos_mean", "group_gap"):
        assert zero[key] is None
    assert zero["active_dims"] == 0 and zero["active_fraction"] == 0.0
    json.dumps(zero, allow_nan=False)


def _summary(spread_value):
    return {"spread": spread_value, "cos_mean": None}


def test_collapse_stage_names_first_collapsed_and_least_spread():
    summaries = {
        "proprio": _summary(0.95),
        "condition": _summary(0.008),
        "vlm": _summary(0.002),
        "unused": _summary(0.0),  # not in order: ignored
    }
    out = collapse_stage(summaries, ["proprio", "condition", "vlm"])
    assert out == {
        "collapsed": ["condition", "vlm"],
        "first": "condition",
        "uncertain": [],
        "threshold": 0.01,
        "least_spread": "vlm",
    }
    loose = collapse_stage(summaries, ["proprio", "condition"], spread_threshold=0.005)
    assert loose["collapsed"] == [] and loose["first"] is None
    assert loose["least_spread"] == "condition"
    dead = collapse_stage({"a": _summary(None), "b": _summary(0.5)}, ["a", "b"])
    assert dead["collapsed"] == ["a"] and dead["least_spread"] == "b"
    with pytest.raises(ParameterError, match="'policy'"):
        collapse_stage(summaries, ["proprio", "policy"])
    with pytest.raises(ParameterError, match="once"):
        collapse_stage(summaries, ["vlm", "vlm"])


def test_collapse_stage_judges_intervals_and_names_the_uncertain_ones():
    summaries = {
        "vlm": {"spread": 0.004, "spread_low": 0.003, "spread_high": 0.006},  # clearly below
        "projector": {"spread": 0.009, "spread_low": 0.007, "spread_high": 0.012},  # straddles
        "condition": {"spread": 0.3, "spread_low": 0.2, "spread_high": 0.4},
    }
    out = collapse_stage(summaries, ["vlm", "projector", "condition"])
    assert out["collapsed"] == ["vlm"] and out["uncertain"] == ["projector"]
    # the point estimate alone (0.009 < 0.01) would have called the projector collapsed
    points = {k: {"spread": v["spread"]} for k, v in summaries.items()}
    assert collapse_stage(points, ["vlm", "projector", "condition"])["collapsed"] == [
        "vlm",
        "projector",
    ]


def test_resampled_spread_is_the_spread_of_the_resampled_rows():
    rng = np.random.default_rng(3)
    x = 2.0 + rng.normal(size=(30, 5))
    idx = rng.integers(0, 30, size=(4, 30))
    want = [spread(x[i]) for i in idx]
    np.testing.assert_allclose(resampled_spread(x, idx), want, rtol=1e-10)
    assert resampled_spread(x, np.arange(30)) == pytest.approx(spread(x), rel=1e-12)
    assert resampled_spread(np.ones((6, 3)), np.arange(6)) == 0.0


def test_collapse_stage_on_researcher_like_stages():
    """A VLM embedding that is a shared offset plus a little noise (cos ~0.997), proprio
    scattered around zero (cos ~0), a condition vector in between."""
    rng = np.random.default_rng(6)
    n = 200
    vlm = 1.0 + 0.05 * rng.normal(size=(n, 64))
    proprio = rng.normal(size=(n, 8))
    condition = 0.6 + rng.normal(size=(n, 32))
    stages = {"vlm": vlm, "proprio": proprio, "condition": condition}
    summaries = {name: stage_summary(x) for name, x in stages.items()}
    assert summaries["vlm"]["cos_mean"] > 0.99 and abs(summaries["proprio"]["cos_mean"]) < 0.05
    out = collapse_stage(summaries, ["proprio", "vlm", "condition"])
    assert out["collapsed"] == ["vlm"] and out["first"] == "vlm"
    assert out["least_spread"] == "vlm"


def test_bad_inputs_raise_parameter_error_naming_the_argument():
    with pytest.raises(ParameterError, match=r"^x must be 2-D"):
        pairwise_cosine(np.ones(5))
    with pytest.raises(ParameterError, match=r"^x holds NaN"):
        spread(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ParameterError, match=r"^x needs at least 2 samples"):
        pairwise_cosine(np.ones((1, 3)))
    with pytest.raises(ParameterError, match=r"^x must be a numeric array"):
        effective_rank([["a", "b"]])
    with pytest.raises(ParameterError, match=r"^y must have the same N=50"):
        linear_cka(np.ones((50, 4)), np.ones((40, 4)))
    with pytest.raises(ParameterError, match=r"^y holds NaN"):
        linear_cka(np.ones((3, 4)), np.full((3, 4), np.inf))
    with pytest.raises(ParameterError, match=r"^groups must have shape \(4,\)"):
        group_similarity(np.ones((4, 2)), ["a", "b"])
    with pytest.raises(ParameterError, match=r"^groups holds missing"):
        group_similarity(np.ones((2, 2)), np.array(["a", None], dtype=object))
    with pytest.raises(ParameterError, match="spread_threshold"):
        collapse_stage({"a": _summary(0.1)}, ["a"], spread_threshold=-1)
    with pytest.raises(ParameterError, match="no 'spread'"):
        collapse_stage({"a": {}}, ["a"])
