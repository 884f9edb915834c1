"""End to end on tiny demos: the overfit check passes, and its negative control fails."""

import numpy as np
import pytest
from tiny_data import write_tiny_dataset

from nblib import overfit
from nblib.data.dataset import DemoStore
from nblib.models.backbone import Backbone
from nblib.models.policy import PolicyConfig, VLAPolicy
from nblib.train import TrainConfig, seed_everything, train


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = write_tiny_dataset(
        tmp_path_factory.mktemp("d") / "t.h5",
        lengths=(14, 12),
        tasks=("reach", "push"),
        image_size=32,
    )
    store = DemoStore(path)
    return store, store.norm_stats(), Backbone.tiny()


def tiny_policy(bb) -> VLAPolicy:
    config = PolicyConfig(
        vlm_dim=bb.hidden_size,
        proprio_dim=4,
        action_dim=4,
        horizon=4,
        head="regression",
        d_model=32,
    )
    return VLAPolicy(config)


def run(setup, control, steps=250):
    store, stats, bb = setup
    samples = overfit.load_samples(store, horizon=4, stats=stats, control=control)
    overfit.precompute_features(bb, samples, "last", cache=None, progress=False)
    seed_everything(0)
    model = overfit.PolicyWithBackbone(tiny_policy(bb))
    batches = overfit.make_batches(samples, 16, 0, shuffle_actions=control == "shuffle_actions")
    history = train(
        model,
        batches,
        overfit.make_loss_fn(samples),
        TrainConfig(steps=steps, lr=3e-3, progress=False),
    )
    errors, pred = overfit.evaluate(model, samples, stats)
    return overfit.summarize(errors, None, "regression", None, history), pred, samples


def test_pipeline_overfits_tiny_demos(setup):
    result, pred, samples = run(setup, "none")
    assert result["verdict"] == "PASS", result["reasons"]
    assert pred.shape == samples.actions.shape and np.isfinite(pred).all()


@pytest.mark.parametrize("control", ["zero_inputs", "shuffle_actions"])
def test_negative_control_fails(setup, control):
    result, _, _ = run(setup, control)
    assert result["verdict"] == "FAIL", result["reasons"]
    assert result["train"]["relative_mean"] > 0.5  # about what the mean predictor scores


def test_lora_weights_train_through_the_overfit_loop(setup):
    store, stats, _ = setup
    bb = Backbone.tiny()
    bb.apply_lora(rank=2, alpha=4)
    bb.unfreeze()
    samples = overfit.load_samples(store, horizon=4, stats=stats)
    model = overfit.PolicyWithBackbone(
        tiny_policy(bb),
        bb,
        "last",
    )
    lora_b = {n: p.detach().clone() for n, p in bb.named_parameters() if "lora_B" in n}
    assert lora_b and all(v.abs().sum() == 0 for v in lora_b.values())  # B starts at zero
    train(
        model,
        overfit.make_batches(samples, 4, 0),
        overfit.make_loss_fn(samples),
        TrainConfig(steps=3, lr=1e-2, progress=False),
    )
    changed = [n for n, p in bb.named_parameters() if "lora_B" in n and p.abs().sum() > 0]
    assert changed, "no LoRA weight moved: the adapters are not in the gradient path"
    frozen = [n for n, p in bb.named_parameters() if "lora_" not in n and p.requires_grad]
    assert frozen == []
