"""Token metrics on hand-built tokenizers with known answers (seed 004)."""

import math

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from nblib.errors import ParameterError
from nblib.flow import angle_bins, angle_deg
from nblib.metrics.tokens import (
    angular_histograms,
    cluster_instructions,
    codebook_usage,
    consistency_score,
    direction_nmi,
    direction_probe,
    instruction_nmi,
    summarize_tokens,
    token_directions,
    token_entropy_given_direction,
)


def _motion(angles_deg, magnitude=1.0):
    """Angles (N,) in degrees (0 = right, 90 = up) -> image-axis motion (N, 2), dy down."""
    rad = np.radians(angles_deg)
    return np.stack([np.cos(rad), -np.sin(rad)], axis=1) * magnitude


def _world(tokenizer, n=40_000, n_groups=4, noise_deg=10.0, seed=0):
    """Rows moving along the 8 compass directions k * 45 deg plus Gaussian angular noise.

    "perfect": token = k (the same mapping in every group). "random": uniform tokens
    independent of motion. "rotated": perfect, but group 0 uses the mapping rotated by
    90 deg (its token k moves along k * 45 + 90). Returns tokens (N,), motion (N, 2), groups.
    """
    rng = np.random.default_rng(seed)
    compass = rng.integers(0, 8, n)
    groups = rng.integers(0, n_groups, n)
    observed = compass * 45.0 + rng.normal(0, noise_deg, n)
    magnitude = rng.uniform(0.5, 2.0, (n, 1))
    if tokenizer == "random":
        tokens = rng.integers(0, 8, n)
    elif tokenizer == "rotated":
        tokens = np.where(groups == 0, (compass - 2) % 8, compass)
    else:
        tokens = compass
    return tokens, _motion(observed, magnitude), groups


def _angle_diff(a, b):
    return np.abs((np.asarray(a) - b + 180) % 360 - 180)


def test_token_mean_angle_wraps_around_zero():
    compass = token_directions([0, 0, 1, 1], _motion([350.0, 10.0, 0.0, 180.0]))
    assert _angle_diff(compass["mean_angle"][0], 0.0) < 1e-9
    assert compass["resultant_length"][0] == pytest.approx(np.cos(np.radians(10)))
    assert np.isnan(compass["mean_angle"][1])  # opposite directions: no mean
    np.testing.assert_allclose(compass["mean_vector"][0], [np.cos(np.radians(10)), 0], atol=1e-12)


def test_token_directions_known_answer_and_empty_codes():
    tokens = np.array([0, 0, 2, 2, 2])
    motion = np.array([[2.0, 0.0], [4.0, 0.0], [0.0, -1.0], [0.0, 1.0], [0.0, 0.0]])
    out = token_directions(tokens, motion, n_codes=4)
    np.testing.assert_array_equal(out["count"], [2, 0, 2, 0])  # zero-motion row dropped
    np.testing.assert_allclose(out["mean_vector"][0], [3.0, 0.0])
    assert out["mean_angle"][0] == 0.0 and out["resultant_length"][0] == 1.0
    assert out["mean_magnitude"][0] == 3.0
    assert out["resultant_length"][2] == pytest.approx(0.0)  # up and down cancel
    assert np.isnan(out["mean_angle"][2])
    for key in ("mean_angle", "resultant_length", "mean_magnitude"):
        assert np.isnan(out[key][[1, 3]]).all(), key  # empty codes are NaN, not 0
    assert np.isnan(out["mean_vector"][1]).all()
    small = token_directions(tokens, motion, n_codes=4, min_magnitude=2.5)
    np.testing.assert_array_equal(small["count"], [1, 0, 0, 0])


def test_angular_histograms_counts():
    hist = angular_histograms([0, 0, 1, 1, 1], [0, 91, 180, 185, 270], n_bins=4, n_codes=3)
    np.testing.assert_array_equal(hist, [[1, 1, 0, 0], [0, 0, 2, 1], [0, 0, 0, 0]])


def test_perfect_tokenizer_scores_near_one():
    tokens, motion, groups = _world("perfect")
    compass = token_directions(tokens, motion)
    assert (compass["resultant_length"] > 0.9).all()  # exp(-sigma^2 / 2) = 0.985
    assert (_angle_diff(compass["mean_angle"], np.arange(8) * 45.0) < 1).all()
    angles = angle_deg(motion)
    nmi = direction_nmi(tokens, angles)
    assert nmi["nmi"] > 0.9 and nmi["ami"] > 0.9
    probe = direction_probe(tokens, angles)
    assert probe["accuracy"] > 0.95 and probe["chance"] < 0.15
    entropy = token_entropy_given_direction(tokens, angles)
    assert entropy["normalized_conditional_entropy"] < 0.1
    assert entropy["token_entropy_bits"] == pytest.approx(3.0, abs=0.01)
    score = consistency_score(tokens, motion, groups)
    assert score["agreement"] > 0.99 and score["agreement_adjusted"] > 0.98
    assert score["codes_compared"] == 8 and score["within"] < 0.05


def test_noise_free_perfect_tokenizer_is_exact():
    tokens, motion, _ = _world("perfect", noise_deg=0.0)
    angles = angle_deg(motion)
    entropy = token_entropy_given_direction(tokens, angles)
    assert entropy["conditional_entropy_bits"] == pytest.approx(0.0, abs=1e-9)
    assert direction_nmi(tokens, angles)["nmi"] == pytest.approx(1.0)
    assert direction_probe(tokens, angles)["accuracy"] == 1.0
    np.testing.assert_allclose(token_directions(tokens, motion)["resultant_length"], 1.0)


def test_random_tokenizer_scores_near_zero():
    tokens, motion, groups = _world("random", n=200_000)
    compass = token_directions(tokens, motion)
    assert (compass["resultant_length"] < 0.1).all()
    angles = angle_deg(motion)
    assert direction_nmi(tokens, angles)["nmi"] < 0.01
    assert abs(direction_nmi(tokens, angles)["ami"]) < 0.01
    probe = direction_probe(tokens, angles)
    assert abs(probe["accuracy"] - probe["chance"]) < 0.02
    entropy = token_entropy_given_direction(tokens, angles)
    assert entropy["normalized_conditional_entropy"] > 0.99
    score = consistency_score(tokens, motion, groups)
    # 4 unrelated group directions: E[agreement] = 0.4498, not 0 -- hence agreement_adjusted
    assert score["agreement_chance"] == pytest.approx(0.4498, abs=1e-3)
    assert score["agreement"] < 0.6 and abs(score["agreement_adjusted"]) < 0.2
    assert score["within"] > 0.95


def test_rotated_group_lowers_agreement():
    perfect = consistency_score(*_world("perfect"))
    rotated = consistency_score(*_world("rotated"))
    # 3 groups at 0 deg, one at 90 deg: |(3, 1)| / 4 = 0.79
    assert rotated["agreement"] == pytest.approx(math.hypot(3, 1) / 4, abs=0.01)
    assert rotated["agreement"] < perfect["agreement"] - 0.15
    assert rotated["ratio"] < perfect["ratio"]
    angles = rotated["per_cell"]["mean_angle"]
    assert (_angle_diff(angles[:, 0], np.arange(8) * 45.0 + 90) < 3).all()


def test_consistency_known_cells_and_absent_codes():
    # code 0: groups a and b both point right; code 1: right in a, up in b;
    # code 2 only in group a (not compared); code 3 has 1 row in b (< min_count).
    tokens = np.array([0] * 4 + [0] * 4 + [1] * 4 + [1] * 4 + [2] * 4 + [3] * 1)
    angles = np.array([0] * 8 + [0] * 4 + [90] * 4 + [45] * 4 + [0])
    groups = np.array(["a"] * 4 + ["b"] * 4 + ["a"] * 4 + ["b"] * 4 + ["a"] * 4 + ["b"])
    score = consistency_score(tokens, _motion(angles), groups, min_count=2)
    per = score["per_code"]
    assert per["agreement"][0] == pytest.approx(1.0)
    assert per["agreement"][1] == pytest.approx(np.cos(np.radians(45)))
    assert per["within"][0] == pytest.approx(0.0, abs=1e-12)
    assert per["ratio"][1] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(per["ratio"][0])  # within = across = 0: undefined
    assert np.isnan(per["agreement"][[2, 3]]).all() and np.isnan(per["within"][[2, 3]]).all()
    assert score["codes_compared"] == 2 and score["rows_compared"] == 16
    assert score["agreement"] == pytest.approx((1 + np.cos(np.radians(45))) / 2)
    assert score["agreement_chance"] == pytest.approx(2 / np.pi, abs=0.01)
    np.testing.assert_array_equal(score["group_labels"], ["a", "b"])
    assert np.isnan(score["per_cell"]["resultant_length"][2, 1])
    none = consistency_score(tokens, _motion(angles), groups, min_count=10)
    assert none["codes_compared"] == 0 and np.isnan(none["agreement"])


def test_codebook_usage_perplexity():
    uniform = codebook_usage(np.repeat(np.arange(16), 5), 16)
    assert uniform["perplexity"] == pytest.approx(16, abs=1e-6)
    assert uniform["dead_codes"] == [] and uniform["usage_fraction"] == 1.0
    single = codebook_usage(np.full(50, 3), 6)
    assert single["perplexity"] == pytest.approx(1.0, abs=1e-12)
    assert single["active_codes"] == 1 and single["dead_codes"] == [0, 1, 2, 4, 5]
    assert np.isnan(codebook_usage(np.array([], dtype=int), 4)["perplexity"])


def test_nmi_matches_sklearn_and_instructions():
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, 5, 3000)
    names = np.array(["push left", "push right", "lift"], dtype=object)
    instructions = names[tokens % 3]  # instruction determined by token
    out = instruction_nmi(tokens, instructions)
    assert out["nmi"] == pytest.approx(normalized_mutual_info_score(tokens, tokens % 3))
    assert out["n_instructions"] == 3 and not out["ami_subsampled"]
    same = instruction_nmi(tokens, tokens)
    assert same["nmi"] == pytest.approx(1.0) and same["ami"] == pytest.approx(1.0)


def test_summarize_is_flat_json_scalars_and_none_for_undefined():
    tokens, motion, groups = _world("perfect", n=5000)
    instructions = np.array([f"task {g}" for g in groups])
    out = summarize_tokens(tokens, motion, groups, instructions, n_codes=10)
    assert all(v is None or isinstance(v, bool | int | float | str) for v in out.values())
    assert out["agreement_null"] == "isotropic"  # no permutations asked for
    assert out["codebook_dead_codes"] == 2 and out["agreement"] > 0.99
    assert out["direction_resultant_length"] > 0.9 and out["instruction_nmi"] < 0.05
    assert out["consistency_ratio"] is None or out["consistency_ratio"] > 10
    # one group only: nothing to compare -> None, not 0
    lonely = summarize_tokens(tokens, motion, np.zeros(len(tokens), int))
    assert lonely["agreement"] is None and lonely["codes_compared"] == 0
    one_code = summarize_tokens(np.zeros(10, int), _motion(np.linspace(0, 90, 10)))
    assert one_code["entropy_given_direction_normalized"] is None
    assert one_code["codebook_perplexity"] == 1.0


def test_bad_inputs_raise_parameter_error():
    with pytest.raises(ParameterError, match="integer"):
        token_directions(np.array([0.5, 1.0]), np.zeros((2, 2)))
    with pytest.raises(ParameterError, match=">= 0"):
        token_directions(np.array([-1, 1]), np.zeros((2, 2)))
    with pytest.raises(ParameterError, match="n_codes"):
        token_directions(np.array([0, 5]), np.zeros((2, 2)), n_codes=3)
    with pytest.raises(ParameterError, match="shape"):
        token_directions(np.array([0, 1]), np.zeros((3, 2)))
    with pytest.raises(ParameterError, match="NaN"):
        direction_nmi(np.array([0, 1]), np.array([0.0, np.nan]))
    with pytest.raises(ParameterError, match="missing"):
        consistency_score(np.array([0, 1]), np.ones((2, 2)), np.array(["a", None], dtype=object))
    with pytest.raises(ParameterError, match="test_fraction"):
        direction_probe(np.array([0, 1]), np.array([0.0, 1.0]), test_fraction=1.0)


def test_cluster_instructions_groups_paraphrases():
    texts = [
        "open the drawer",
        "pull the drawer open",
        "open drawer",
        "press the button",
        "push the button down",
        "press button",
        None,
    ] * 2
    labels = cluster_instructions(texts, 2, seed=0)
    assert labels[6] is None and labels[13] is None  # missing stays missing
    drawer, button = set(labels[:3]), set(labels[3:6])
    assert len(drawer) == 1 and len(button) == 1 and drawer != button
    assert next(iter(drawer)).split(": ", 1)[1] in texts[:3]  # named by a member
    assert list(labels[:7]) == list(labels[7:])  # the same text, the same label
    # no more distinct texts than clusters: each keeps its own
    assert len(set(cluster_instructions(["a b", "c d"], 5))) == 2
    with pytest.raises(ParameterError, match="n_clusters"):
        cluster_instructions(texts, 0)


def test_pooled_concentration_is_the_baseline_of_the_per_token_one():
    rng = np.random.default_rng(0)
    n = 4000
    # most motion goes right (a 20 degree spread), tokens know nothing about it
    angles = rng.normal(0.0, np.radians(20), n)
    motion = np.stack([np.cos(angles), -np.sin(angles)], 1)
    out = summarize_tokens(rng.integers(0, 8, n), motion, n_codes=8)
    assert out["direction_resultant_length"] > 0.9  # high without meaning anything
    assert out["direction_resultant_length_pooled"] == pytest.approx(
        out["direction_resultant_length"], abs=0.01
    )
    assert abs(out["direction_resultant_length_adjusted"]) < 0.05
    one = summarize_tokens(np.zeros(n, int), motion, n_codes=1)  # one code: R = pooled
    assert one["direction_resultant_length_adjusted"] == pytest.approx(0.0, abs=1e-12)
    # isotropic motion, tokens = direction bins: pooled ~ 0, the tokens add everything
    angles = rng.uniform(0, 2 * np.pi, n)
    motion = np.stack([np.cos(angles), -np.sin(angles)], 1)
    good = summarize_tokens(angle_bins(angle_deg(motion), 8), motion, n_codes=8)
    assert good["direction_resultant_length_pooled"] < 0.05
    assert good["direction_resultant_length_adjusted"] > 0.95


def test_centred_permutation_agreement_sees_through_one_way_motion():
    """Four groups whose motion mostly goes right. Uncentred against isotropic chance,
    random codes "agree" (every cell points right); a permutation null alone is then ~1 and
    cannot tell anything (NaN); centred on each group's mean motion and judged against
    within-group shuffles, random codes score ~0 and direction codes ~1."""
    rng = np.random.default_rng(3)
    n = 8000
    angles = np.degrees(rng.normal(0.0, np.radians(25), n))
    motion, groups, tokens = _motion(angles), rng.integers(0, 4, n), rng.integers(0, 8, n)
    iso = consistency_score(tokens, motion, groups)
    assert iso["agreement_null"] == "isotropic" and iso["agreement_adjusted"] > 0.9
    drift = consistency_score(tokens, motion, groups, n_permutations=20)
    assert drift["agreement_chance"] > 0.99 and np.isnan(drift["agreement_adjusted"])
    fair = consistency_score(tokens, motion, groups, n_permutations=20, center=True)
    assert fair["agreement_null"] == "permutation" and fair["agreement_centered"]
    assert 0.3 < fair["agreement_chance"] < 0.7  # residual directions are noise
    assert abs(fair["agreement_adjusted"]) < 0.5  # noise: 8 codes x 4 groups
    meaning = angle_bins(angle_deg(motion), 8)  # codes that do mean a direction
    good = consistency_score(meaning, motion, groups, n_permutations=20, center=True)
    assert good["agreement_adjusted"] > 0.9
    # isotropic motion: centring changes little; a rotated group lowers the score
    perfect, motion, groups = _world("perfect", n=6000)
    assert (
        consistency_score(perfect, motion, groups, n_permutations=20, center=True)[
            "agreement_adjusted"
        ]
        > 0.95
    )
    rotated, motion, groups = _world("rotated", n=6000)
    assert (
        consistency_score(rotated, motion, groups, n_permutations=20, center=True)[
            "agreement_adjusted"
        ]
        < 0.8
    )
    with pytest.raises(ParameterError, match="n_permutations"):
        consistency_score(rotated, motion, groups, n_permutations=-1)


def test_group_shuffle_keeps_each_groups_codes():
    from nblib.metrics.tokens.consistency import _GroupShuffle

    rng = np.random.default_rng(0)
    tokens, groups = rng.integers(0, 5, 500), rng.integers(0, 3, 500)
    shuffled = _GroupShuffle(tokens, groups)(rng)
    assert not np.array_equal(shuffled, tokens)
    for g in range(3):
        assert sorted(shuffled[groups == g]) == sorted(tokens[groups == g])


def test_centring_leaves_seed_004s_variance_ratio_alone():
    tokens, motion, groups = _world("rotated", n=6000)
    plain = consistency_score(tokens, motion, groups)
    centred = consistency_score(tokens, motion, groups, n_permutations=5, center=True)
    for key in ("within", "across", "ratio"):
        assert centred[key] == pytest.approx(plain[key])
    assert centred["agreement"] != pytest.approx(plain["agreement"])
