"""The frozen-feature cache: identical features, hit/miss counts, invalidation, bypass."""

import numpy as np
import pytest
import torch

from nblib.cache import FeatureCache, encode_batch, sample_key
from nblib.models.backbone import Backbone


@pytest.fixture(scope="module")
def backbone():
    return Backbone.tiny()


def frames(n, seed=0):
    rng = np.random.default_rng(seed)
    base = np.zeros((n, 64, 64, 3), np.uint8)
    for i in range(n):  # a bright square at a different place per sample
        x, y = rng.integers(0, 48, size=2)
        base[i, y : y + 16, x : x + 16] = 255
    return [[f] for f in base]


@pytest.mark.parametrize("output", ["last", "tokens"])
def test_cached_features_equal_direct_ones(tmp_path, backbone, output):
    images, texts = frames(3), ["push the puck", "open the drawer", "push the puck"]
    direct = encode_batch(backbone, images, texts, output)
    cache = FeatureCache(tmp_path, backbone.identity(), output)
    first = encode_batch(backbone, images, texts, output, cache)
    again = encode_batch(backbone, images, texts, output, cache)
    for got in (first, again):
        torch.testing.assert_close(got["vlm"], direct["vlm"], rtol=0, atol=1e-6)
        if output == "tokens":
            assert torch.equal(got["vlm_mask"], direct["vlm_mask"])
    assert (cache.hits, cache.misses) == (3, 3)
    assert cache.stats()["entries"] == 3


def test_a_changed_backbone_misses(tmp_path, backbone):
    images, texts = frames(2), ["a", "b"]
    cache = FeatureCache(tmp_path, backbone.identity())
    encode_batch(backbone, images, texts, "last", cache)
    other = Backbone.tiny()
    with torch.no_grad():
        next(other.parameters()).add_(0.01)  # any weight change is a new identity
    assert other.identity() != backbone.identity()
    other_cache = FeatureCache(tmp_path, other.identity())
    encode_batch(other, images, texts, "last", other_cache)
    assert (other_cache.hits, other_cache.misses) == (0, 2)


def test_key_depends_on_pixels_and_instruction():
    img = frames(1)[0]
    changed = [img[0].copy()]
    changed[0][0, 0, 0] ^= 1
    assert sample_key(img, "x") != sample_key(changed, "x")
    assert sample_key(img, "x") != sample_key(img, "y")
    assert sample_key(img, "x") == sample_key([img[0].copy()], "x")


def test_training_backbone_bypasses_the_cache(tmp_path):
    bb = Backbone.tiny()
    bb.apply_lora(rank=2, alpha=4)
    bb.unfreeze()
    cache = FeatureCache(tmp_path, bb.identity())
    out = encode_batch(bb, frames(2), ["a", "b"], "last", cache)
    assert out["vlm"].requires_grad  # gradients reach the LoRA weights
    assert (cache.hits, cache.misses, cache.bypassed) == (0, 0, 2)
    assert cache.stats()["entries"] == 0
