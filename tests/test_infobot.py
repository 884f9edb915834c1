"""InfoBot-VLA bottlenecks, MI estimator and action head: shapes, masks, numerics, learning."""

import math

import pytest
import torch

from nblib.errors import ParameterError
from nblib.models.infobot import (
    InfoBotActionHead,
    InfoBottleneckLayer,
    LanguageConditionedBottleneck,
    MutualInformationEstimator,
)

B, N, D, L, DB, K, H, A = 3, 10, 24, 16, 32, 4, 6, 3


def features(seed=0, b=B):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, N, D, generator=g), torch.randn(b, L, generator=g)


def test_bottleneck_shapes_and_token_init():
    torch.manual_seed(0)
    visual, language = features()
    plain = InfoBottleneckLayer(D, DB, tokens=K)
    conditioned = LanguageConditionedBottleneck(D, L, DB, tokens=K)
    assert plain(visual).shape == (B, K, DB)
    assert conditioned(visual, language).shape == (B, K, DB)
    assert torch.isfinite(plain(visual)).all()
    # the defaults of seed 000: K = 8 tokens of 256; 2048 values pin the std within ~3%
    default = InfoBottleneckLayer(D)
    assert default.tokens.shape == (8, 256)
    assert default.tokens.std().item() == pytest.approx(0.02, abs=0.002)
    assert default(visual).shape == (B, 8, 256)


@pytest.mark.parametrize("conditioned", [False, True])
def test_masked_visual_tokens_do_not_change_the_output(conditioned):
    torch.manual_seed(0)
    visual, language = features()
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 6:] = False
    mask[2, 1:] = False  # a single valid token
    layer = (
        LanguageConditionedBottleneck(D, L, DB, tokens=K)
        if conditioned
        else InfoBottleneckLayer(D, DB, tokens=K)
    )

    def run(v):
        return layer(v, language, mask) if conditioned else layer(v, mask)

    garbage = visual.clone()
    garbage[~mask] = 1e6 * torch.randn(int((~mask).sum()), D)
    garbage[0, 7] = float("nan")  # padding may hold anything, even NaN
    reference = run(visual)
    torch.testing.assert_close(run(garbage), reference, rtol=0, atol=1e-6)
    # ...while changing a valid token does change it (not by a constant: LayerNorm removes it)
    changed = visual.clone()
    changed[0, 0] = torch.randn(D, generator=torch.Generator().manual_seed(5))
    assert (run(changed)[0] - reference[0]).abs().max() > 1e-2


def test_language_alone_changes_what_the_bottleneck_keeps():
    torch.manual_seed(0)
    visual, language = features()
    other = features(seed=1)[1]
    layer = LanguageConditionedBottleneck(D, L, DB, tokens=K)
    out = layer(visual, language)
    torch.testing.assert_close(layer(visual, language), out)  # deterministic
    # measured mean |difference| 0.44-0.65 for seeds 0-2 (outputs are LayerNorm-ed, ~0.8)
    assert (layer(visual, other) - out).abs().mean() > 0.1


def test_bottleneck_refuses_bad_inputs():
    visual, language = features()
    layer = LanguageConditionedBottleneck(D, L, DB, tokens=K)
    empty = torch.ones(B, N, dtype=torch.bool)
    empty[1] = False
    with pytest.raises(ParameterError, match=r"no valid token for sample\(s\) \[1\]"):
        layer(visual, language, empty)
    with pytest.raises(ParameterError, match="language must be"):
        layer(visual, language[:2])
    with pytest.raises(ParameterError, match="visual must be"):
        layer(visual[..., :-1], language)
    with pytest.raises(ParameterError, match="heads=5"):
        InfoBottleneckLayer(D, DB, heads=5)
    with pytest.raises(ParameterError, match="in_dim=1"):
        InfoBottleneckLayer(1, DB)


# ----------------------------------------------------------------------------- MI estimator


def estimate(z, v, **kw):
    torch.manual_seed(0)
    out = MutualInformationEstimator(z.shape[1], v.shape[1], **kw)(z, v)
    assert set(out) == {"loss", "mi"}
    assert out["loss"].shape == () and out["mi"].shape == ()
    assert out["loss"].dtype == torch.float32 and out["mi"].dtype == torch.float32
    assert torch.isfinite(out["loss"]) and torch.isfinite(out["mi"]), out
    return out


def test_mi_is_finite_for_huge_and_tiny_finite_inputs():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 12, generator=g) * 1e30
    v = torch.randn(8, 16, generator=g) * 1e30
    z[1] = torch.finfo(torch.float32).max  # a row at the float32 limit
    z[2] *= 1e-75  # 1e-45: subnormal
    z.requires_grad_(True)
    out = estimate(z, v)
    assert out["mi"] <= math.log(8) + 1e-5
    out["loss"].backward()
    assert torch.isfinite(z.grad).all()
    # float64 values far beyond float32's range are rescaled before the cast
    estimate(torch.randn(8, 12, dtype=torch.float64) * 1e300, torch.randn(8, 16) * 1e-300)


def test_mi_of_identical_rows_and_of_zeros_is_zero():
    row_z, row_v = torch.randn(1, 12), torch.randn(1, 16)
    out = estimate(row_z.expand(8, -1), row_v.expand(8, -1))
    # every z is equally similar to every v: loss = log(8), nothing to tell the pairs apart
    assert out["loss"].item() == pytest.approx(math.log(8), abs=1e-5)
    assert out["mi"].item() == pytest.approx(0.0, abs=1e-5)
    out = estimate(torch.zeros(8, 12), torch.zeros(8, 16))
    assert out["mi"].item() == pytest.approx(0.0, abs=1e-5)


def test_mi_computes_bfloat16_inputs_in_float32():
    g = torch.Generator().manual_seed(0)
    z, v = torch.randn(8, 12, generator=g) * 1e30, torch.randn(8, 16, generator=g)
    out16 = estimate(z.bfloat16(), v.bfloat16())
    out32 = estimate(z.bfloat16().float(), v.bfloat16().float())  # the same values
    torch.testing.assert_close(out16["loss"], out32["loss"])
    with torch.autocast("cpu", dtype=torch.bfloat16):  # disabled inside the estimator
        torch.testing.assert_close(estimate(z, v)["loss"], estimate(z.float(), v)["loss"])


def test_mi_of_a_single_pair_is_zero():
    out = estimate(torch.randn(1, 12), torch.randn(1, 16))
    assert out["loss"].item() == 0.0 and out["mi"].item() == 0.0


def trained_mi(dependent: bool, seed: int = 0) -> float:
    """Train a fresh estimator for 150 Adam steps on fresh batches of 64, then estimate
    on a held-out batch of 128 (fresh batches: a fixed batch could be memorised)."""
    torch.manual_seed(seed)
    estimator = MutualInformationEstimator(12, 16)
    w = torch.randn(16, 12, generator=torch.Generator().manual_seed(100 + seed))
    g = torch.Generator().manual_seed(200 + seed)

    def sample(b):
        v = torch.randn(b, 16, generator=g)
        return (v @ w if dependent else torch.randn(b, 12, generator=g)), v

    opt = torch.optim.Adam(estimator.parameters(), lr=1e-2)
    for _ in range(150):
        loss = estimator(*sample(64))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return estimator(*sample(128))["mi"].item()


def test_mi_is_much_larger_for_dependent_pairs():
    dependent, independent = trained_mi(True), trained_mi(False)
    # measured for seeds 0-2: dependent 4.57-4.61 (cap log 128 = 4.85), independent
    # -0.014 to -0.012; both -0.4 to 0.0 before training
    assert dependent > 4.0
    assert abs(independent) < 0.3
    assert dependent - independent > 3.5


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("name", ["z", "v"])
def test_mi_refuses_non_finite_inputs_and_names_them(bad, name):
    z, v = torch.randn(4, 12), torch.randn(4, 16)
    (z if name == "z" else v)[2, 3] = bad
    with pytest.raises(ParameterError, match=rf"^{name} holds 1 non-finite value"):
        MutualInformationEstimator(12, 16)(z, v)


def test_mi_refuses_non_finite_weights_and_bad_arguments():
    estimator = MutualInformationEstimator(12, 16)
    with torch.no_grad():
        estimator.z_proj.weight[0, 0] = float("nan")
    with pytest.raises(ParameterError, match="estimator's own parameters"):
        estimator(torch.randn(4, 12), torch.randn(4, 16))
    with pytest.raises(ParameterError, match="temperature=0"):
        MutualInformationEstimator(12, 16, temperature=0)
    with pytest.raises(ParameterError, match="same number"):
        MutualInformationEstimator(12, 16)(torch.randn(4, 12), torch.randn(3, 16))
    with pytest.raises(ParameterError, match=r"z must be \(B, 12\)"):
        MutualInformationEstimator(12, 16)(torch.randn(4, 11), torch.randn(4, 16))
    # a tiny temperature is clamped to 1e-3, not refused: logits stay within +-1000
    estimate(torch.randn(4, 12), torch.randn(4, 16), temperature=1e-9)


# ----------------------------------------------------------------------------- action head


def head_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(4, H, dtype=torch.bool)
    mask[0, 4:] = False  # the end of an episode: padded steps
    return torch.randn(4, 9, DB, generator=g), torch.randn(4, H, A, generator=g), mask


def test_action_head_overfits_a_tiny_batch():
    torch.manual_seed(0)
    context, actions, mask = head_batch()
    head = InfoBotActionHead(DB, H, A, hidden=64)
    assert head.predict(context).shape == (4, H, A)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    losses = []
    for _ in range(200):
        loss = head.loss(context, actions, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # measured factors 33-42 for seeds 0-2 (0.78-0.82 -> 0.020-0.024), ~0.3 s
    assert losses[-1] < losses[0] / 15
    pred = head.predict(context, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(pred, head.predict(context))  # deterministic
    assert (pred - actions).abs()[mask].mean() < 0.05


@pytest.mark.parametrize("kind", ["l1", "mse"])
def test_action_head_loss_ignores_masked_steps(kind):
    torch.manual_seed(0)
    context, actions, mask = head_batch()
    head = InfoBotActionHead(DB, H, A, hidden=64, loss=kind)
    garbage = actions.clone()
    garbage[~mask] = 1e6
    torch.testing.assert_close(head.loss(context, garbage, mask), head.loss(context, actions, mask))
    error = head.predict(context) - actions
    error = error.abs() if kind == "l1" else error.square()
    torch.testing.assert_close(head.loss(context, actions, mask), error[mask].mean())
    torch.testing.assert_close(head.loss(context, actions), error.mean())


def test_action_head_refuses_bad_arguments():
    context, actions, _ = head_batch()
    head = InfoBotActionHead(DB, H, A, hidden=16)
    with pytest.raises(ParameterError, match="actions must be"):
        head.loss(context, actions[:, :1])  # would broadcast silently
    with pytest.raises(ParameterError, match="mask must be"):
        head.loss(context, actions, torch.ones(4, H + 1, dtype=torch.bool))
    with pytest.raises(ParameterError, match="huber"):
        InfoBotActionHead(DB, H, A, loss="huber")


def test_gradients_reach_the_bottleneck_through_head_loss_and_mi():
    torch.manual_seed(0)
    visual, language = features(b=6)
    mask = torch.ones(6, N, dtype=torch.bool)
    mask[0, 5:] = False
    actions = torch.randn(6, H, A)
    bottleneck = LanguageConditionedBottleneck(D, L, DB, tokens=K)
    language_token = torch.nn.Linear(L, DB)  # the caller appends a language token
    head = InfoBotActionHead(DB, H, A, hidden=64)
    estimator = MutualInformationEstimator(K * DB, D)

    z = bottleneck(visual, language, mask)
    context = torch.cat([z, language_token(language)[:, None]], dim=1)
    head_loss = head.loss(context, actions)
    w = mask.float()[..., None]
    pooled = (visual * w).sum(1) / w.sum(1)  # V: mean of the valid visual tokens
    mi = estimator(z.flatten(1), pooled)["mi"]
    beta = 0.1
    # each term alone reaches the learnable tokens, and so does their sum
    for term in (head_loss, mi, head_loss + beta * mi):
        (grad,) = torch.autograd.grad(term, bottleneck.tokens, retain_graph=True)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    (head_loss + beta * mi).backward()
    for module in (bottleneck, head, estimator):
        for name, p in module.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert bottleneck.language_proj.weight.grad.abs().sum() > 0
