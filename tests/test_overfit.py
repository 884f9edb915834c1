"""The overfit study (notebook 01's engine): end to end on tiny demos the check passes and its
negative control fails; the verdict's bars fit the head; the config rejects bad values."""

import numpy as np
import pytest
from tiny_data import write_tiny_dataset

from nblib.data.hdf5 import DemoStore
from nblib.errors import ParameterError
from nblib.models import vla
from nblib.models.backbone import Backbone
from nblib.models.policy import PolicyConfig, VLAPolicy
from nblib.studies import overfit
from nblib.studies.setup import with_control
from nblib.train import TrainConfig, seed_everything, train
from nblib.verdict import Estimate


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
    samples = with_control(vla.load_samples(store, horizon=4, stats=stats), control)
    vla.precompute_features(bb, samples, "last", cache=None, progress=False)
    seed_everything(0)
    model = vla.PolicyWithBackbone(tiny_policy(bb))
    batches = vla.make_batches(samples, 16, 0, shuffle_actions=control == "shuffle_actions")
    history = train(
        model,
        batches,
        vla.make_loss_fn(samples),
        TrainConfig(steps=steps, lr=3e-3, progress=False),
    )
    assert len(history) == steps
    pred = stats.actions.unnormalize(vla.predict_all(model, samples), "mean_std")
    result = overfit.open_loop(pred, samples, stats)
    config = overfit.OverfitConfig(head="regression", control=control)
    return overfit.verdict(evidence(result), config), result, samples


def evidence(train: overfit.OpenLoop) -> overfit.OverfitEvidence:
    assessment = overfit.Assessment(train, None)
    return overfit.OverfitEvidence("regression", "none", assessment, None, 0, None)


def judged(head: str, rel: float, low: float, high: float, config=None):
    """The verdict on a hand-made interval of the mean chunk MAE/std."""
    errors = {"relative_mean": rel, "relative_chunk": [rel, rel]}
    train = overfit.OpenLoop(errors, np.zeros((1, 1, 2)), Estimate(rel, low, high, "test"))
    return overfit.verdict(evidence(train), config or overfit.OverfitConfig(head=head))


def test_pipeline_overfits_tiny_demos(setup):
    verdict, result, samples = run(setup, "none")
    assert verdict.label == "PASS", verdict.reasons
    rel = result.relative
    assert verdict.numbers["train_relative_mean"] == pytest.approx(result.errors["relative_mean"])
    assert rel.low <= rel.value <= rel.high <= 0.15  # the whole interval clears the bar
    assert result.pred.shape == samples.actions.shape and np.isfinite(result.pred).all()


@pytest.mark.parametrize("control", ["zero_inputs", "shuffle_actions"])
def test_negative_control_fails(setup, control):
    verdict, result, _ = run(setup, control)
    assert verdict.label == "FAIL", verdict.reasons
    assert result.relative.low > 0.5  # about what the mean predictor scores


def test_lora_weights_train_through_the_overfit_loop(setup):
    store, stats, _ = setup
    bb = Backbone.tiny()
    bb.apply_lora(rank=2, alpha=4)
    bb.unfreeze()
    samples = vla.load_samples(store, horizon=4, stats=stats)
    model = vla.PolicyWithBackbone(
        tiny_policy(bb),
        bb,
        "last",
    )
    lora_b = {n: p.detach().clone() for n, p in bb.named_parameters() if "lora_B" in n}
    assert lora_b and all(v.abs().sum() == 0 for v in lora_b.values())  # B starts at zero
    train(
        model,
        vla.make_batches(samples, 4, 0),
        vla.make_loss_fn(samples),
        TrainConfig(steps=3, lr=1e-2, progress=False),
    )
    changed = [n for n, p in bb.named_parameters() if "lora_B" in n and p.abs().sum() > 0]
    assert changed, "no LoRA weight moved: the adapters are not in the gradient path"
    frozen = [n for n, p in bb.named_parameters() if "lora_" not in n and p.requires_grad]
    assert frozen == []


@pytest.mark.parametrize(
    ("head", "rel", "expected"),
    [
        ("regression", 0.1, "PASS"),
        ("regression", 0.3, "PARTIAL"),
        ("regression", 0.5, "FAIL"),
        ("flow", 0.2, "PASS"),
        ("flow", 0.4, "PARTIAL"),
        ("flow", 0.8, "FAIL"),
    ],
)
def test_verdict_thresholds_fit_the_head(head, rel, expected):
    verdict = judged(head, rel, rel - 0.01, rel + 0.01)
    assert verdict.label == expected
    assert verdict.numbers["pass_threshold"] == overfit.DEFAULT_THRESHOLDS[head]["pass"]
    assert verdict.numbers["train_relative_mean_high"] == pytest.approx(rel + 0.01)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(0.20, 0.30, "PARTIAL"), (0.40, 0.50, "PARTIAL"), (0.10, 0.60, "PARTIAL")],
)
def test_an_interval_straddling_a_bar_takes_the_cautious_label_and_says_so(low, high, expected):
    # flow bars: PASS <= 0.25, FAIL > 0.45; the point estimate alone would decide otherwise
    verdict = judged("flow", (low + high) / 2, low, high)
    assert verdict.label == expected
    assert any("straddles the threshold" in r for r in verdict.reasons), verdict.reasons


def test_custom_thresholds_and_bad_config():
    raised = overfit.OverfitConfig(head="regression", pass_threshold=0.4)
    assert raised.thresholds() == {"pass": 0.4, "partial": 0.4}  # PARTIAL lifted with PASS
    assert judged("regression", 0.3, 0.28, 0.32, raised).label == "PASS"
    for bad, field in (
        ({"pass_threshold": 0.5, "partial_threshold": 0.2}, "pass_threshold"),
        ({"head": "diffusion"}, "head"),
        ({"control": "none_at_all"}, "control"),
        ({"demos": 0}, "demos"),
        ({"features": "pooled"}, "features"),
        ({"lr": -1.0}, "lr"),  # the training settings are checked with the config
        ({"mixed_precision": "fp16"}, "mixed_precision"),  # fp16 needs a GPU
    ):
        with pytest.raises(ParameterError, match=rf"\.{field}="):
            overfit.OverfitConfig(**bad)


def test_config_comes_from_the_notebooks_parameters():
    from nblib.paths import find_repo_root
    from nblib.run.params import notebook_parameters

    spec = notebook_parameters(find_repo_root() / "notebooks" / "01_overfit_diagnosis.ipynb")
    config = overfit.OverfitConfig.from_params({k: v["default"] for k, v in spec.items()})
    assert config == overfit.OverfitConfig()  # the notebook's defaults are the config's
    with pytest.raises(ParameterError, match=r"no parameter\(s\) \['head'\]"):
        overfit.OverfitConfig.from_params({k: v["default"] for k, v in spec.items() if k != "head"})
