"""Seed 002's geometry compressors: sizes, shapes, masking, gradients."""

import pytest
import torch

from nblib.errors import ParameterError
from nblib.models.geometry import group_pool, make_compressor


@pytest.mark.parametrize(
    ("kind", "millions"), [("pool", 3.15), ("per_layer", 50.36), ("qformer", 19.97)]
)
def test_parameter_counts_equal_seed_002s_table(kind, millions):
    # geom_dim 1536 (MapAnything), hidden 2048, K 16, 16 DiT layers, 8 heads
    model = make_compressor(kind, 1536, 2048, k=16, layers=16, heads=8)
    count = sum(p.numel() for p in model.parameters())
    assert round(count / 1e6, 2) == millions


def test_group_pool_averages_consecutive_groups_and_skips_masked_tokens():
    tokens = torch.arange(10, dtype=torch.float32).reshape(1, 10, 1)
    pooled = group_pool(tokens, 3)  # groups of 4, 3, 3 tokens (0-3, 4-6, 7-9)
    assert pooled[0, :, 0].tolist() == pytest.approx([1.5, 5.0, 8.0])
    mask = torch.ones(1, 10, dtype=torch.bool)
    mask[0, 7:] = False  # the last group is all padding
    pooled = group_pool(tokens, 3, mask)
    assert pooled[0, :, 0].tolist() == pytest.approx([1.5, 5.0, 0.0])
    with pytest.raises(ParameterError, match="cannot fill K=16"):
        group_pool(tokens, 16)


@pytest.mark.parametrize("kind", ["pool", "per_layer", "qformer"])
def test_shapes_masks_and_gradients(kind):
    torch.manual_seed(0)
    model = make_compressor(kind, geom_dim=12, hidden=16, k=4, layers=3, heads=2)
    geom = torch.randn(2, 10, 12, requires_grad=True)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 8:] = False
    out = model(geom, mask)
    assert out.shape == (3, 2, 4, 16)  # (layers, B, K, hidden)
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    # a padded token changes nothing
    changed = geom.detach().clone()
    changed[1, 9] += 100.0
    torch.testing.assert_close(model(changed, mask), model(geom.detach(), mask))
    same_every_layer = torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
    assert same_every_layer == (kind != "per_layer")  # per_layer: its own tokens per layer


def test_unknown_compressor_and_bad_sizes_are_errors():
    with pytest.raises(ParameterError, match="qformer"):
        make_compressor("mean", 8, 8)
    with pytest.raises(ParameterError, match="hidden=10 is not divisible by heads=4"):
        make_compressor("qformer", 8, 10, heads=4)
    with pytest.raises(ParameterError, match="k=0"):
        make_compressor("pool", 8, 8, k=0)
