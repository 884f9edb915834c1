"""nblib.train: tiny smoke runs of the one training loop (whole file runs in a few seconds)."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from nblib.errors import ParameterError
from nblib.lr_schedule import lr_curve
from nblib.train import History, NonFiniteError, TrainConfig, train

X = torch.randn(32, 8, generator=torch.Generator().manual_seed(0))
Y = X @ torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
BATCH = {"x": X, "y": Y}


def mse(model, batch):
    return (model(batch["x"]) - batch["y"]).pow(2).mean()


def linear(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(8, 4)


def config(**kw):
    return TrainConfig(**{"steps": 10, "lr": 1e-2, "progress": False} | kw)


def test_loss_decreases_on_tiny_regression():
    hist = train(linear(), lambda step: BATCH, mse, config(steps=200, lr=5e-2))
    assert len(hist) == 200 and [r["step"] for r in hist] == list(range(200))
    assert hist.column("loss")[-1] < 0.1 * hist.column("loss")[0]
    assert set(hist[0]) >= {"step", "loss", "lr", "grad_norm", "seconds"}


def test_schedules():
    lr, n = 1e-3, 100
    assert np.all(lr_curve(config(lr=lr, steps=n)) == lr)  # constant is flat

    cos = lr_curve(config(lr=lr, steps=n, schedule="cosine"))
    assert cos[0] == lr and cos[-1] < 1e-3 * lr

    floor = lr_curve(
        config(lr=lr, steps=n, schedule="cosine_with_min_lr", warmup_steps=10, min_lr_rate=0.1)
    )
    assert floor[10:].min() >= 0.1 * lr - 1e-12
    assert floor[-1] == pytest.approx(0.1 * lr, rel=1e-2)

    for schedule in ("linear", "cosine", "constant"):  # warmup: linear ramp from 0
        warm = lr_curve(config(lr=lr, steps=n, schedule=schedule, warmup_steps=10))
        np.testing.assert_allclose(warm[:11], lr * np.arange(11) / 10, rtol=1e-9, atol=1e-15)

    wsd = lr_curve(config(lr=lr, steps=n, schedule="warmup_stable_decay", decay_fraction=0.2))
    assert np.all(wsd[:80] == lr)
    assert np.all(np.diff(wsd[80:]) < 0) and wsd[-1] >= 0.1 * lr  # decays to the floor

    # the loop logs exactly the schedule lr_curve shows
    cfg = config(steps=20, schedule="cosine_with_min_lr", warmup_steps=5)
    hist = train(linear(), lambda step: BATCH, mse, cfg)
    np.testing.assert_allclose(hist.column("lr"), lr_curve(cfg))


class TwoPart(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Linear(8, 8)
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.head(torch.relu(self.backbone(x)))


def test_lr_groups():
    seen = {}

    def grab_groups(step, record, model):
        seen.update(record)

    cfg = config(steps=2, lr=1e-3, lr_groups={"backbone.": 1e-5, "head.bias": 2e-4})
    train(TwoPart(), lambda step: BATCH, mse, cfg, callback=grab_groups)
    assert seen["lr/backbone."] == 1e-5 and seen["lr/head.bias"] == 2e-4 and seen["lr"] == 1e-3

    # the optimizer really used each group's lr: Adam's first step moves every weight by ~lr
    model = TwoPart()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, lambda step: BATCH, mse, dataclasses.replace(cfg, steps=1))
    moved = {k: (v - before[k]).abs().max().item() for k, v in model.state_dict().items()}
    assert moved["backbone.weight"] == pytest.approx(1e-5, rel=1e-2)
    assert moved["head.bias"] == pytest.approx(2e-4, rel=1e-2)
    assert moved["head.weight"] == pytest.approx(1e-3, rel=1e-2)

    with pytest.raises(ParameterError, match="'encoder.'"):
        train(TwoPart(), lambda step: BATCH, mse, config(lr_groups={"encoder.": 1e-4}))


def test_nan_loss_raises_with_step_and_name():
    def nan_at_3(model, batch):
        return mse(model, batch) * (math.nan if batch["step"] == 3 else 1.0)

    with pytest.raises(NonFiniteError, match=r"step 3: the loss is nan") as err:
        train(linear(), lambda step: BATCH | {"step": step}, nan_at_3, config())
    assert err.value.step == 3 and err.value.name == "loss"

    def bad_aux(model, batch):  # a logged scalar is guarded too
        return {"loss": mse(model, batch), "aux": torch.tensor(math.inf)}

    with pytest.raises(NonFiniteError, match="step 0: logged scalar 'aux' is inf"):
        train(linear(), lambda step: BATCH, bad_aux, config())


def test_nan_parameter_is_named():
    model = linear()
    with torch.no_grad():
        model.bias[1] = float("nan")
    with pytest.raises(NonFiniteError, match=r"step 0: the loss is nan.*parameter 'bias'"):
        train(model, lambda step: BATCH, mse, config())

    # finite loss and grads, but an update that overflows float32 (lr * weight_decay = 1e40):
    # the next loss is not finite, and the message names the parameter and the update
    with pytest.raises(NonFiniteError, match="step 1: the loss is") as e:
        train(linear(), lambda step: BATCH, mse, config(lr=1e30, weight_decay=1e10))
    assert "parameter 'weight' was already non-finite" in str(e.value)
    assert "step 0's update made it so" in str(e.value) and "'lr': 1e+30" in str(e.value)
    # on the last step there is no next loss: the parameters are scanned after it
    with pytest.raises(NonFiniteError, match="step 0: parameter 'weight' is not finite after") as e:
        train(linear(), lambda step: BATCH, mse, config(lr=1e30, weight_decay=1e10, steps=1))
    assert e.value.name == "weight"


def test_nan_gradient_is_named():
    model = TwoPart()
    calls = []

    def poison(grad):  # NaN gradient for head.bias from the third backward on
        calls.append(1)
        return grad * float("nan") if len(calls) >= 3 else grad

    model.head.bias.register_hook(poison)
    with pytest.raises(NonFiniteError, match=r"step 2: the gradient of parameter 'head.bias'"):
        train(model, lambda step: BATCH, mse, config())


def test_grad_clipping_logs_preclip_norm_and_applies_clipped_grads():
    applied = []

    def grad_norm_after_clip(step, record, model):
        applied.append(torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item())

    big = {"x": X * 100, "y": Y * 100}
    hist = train(
        linear(), lambda step: big, mse, config(steps=3, grad_clip=0.5), grad_norm_after_clip
    )
    assert hist.column("grad_norm").min() > 100 * 0.5  # logged norm is the pre-clip one
    np.testing.assert_allclose(applied, 0.5, rtol=1e-4)  # the optimizer saw clipped grads

    unclipped = []
    train(
        linear(),
        lambda step: big,
        mse,
        config(steps=3, grad_clip=None),
        lambda s, r, m: unclipped.append(
            torch.cat([p.grad.flatten() for p in m.parameters()]).norm().item()
        ),
    )
    np.testing.assert_allclose(unclipped[0], hist.column("grad_norm")[0], rtol=1e-5)


def test_frozen_parameters_untouched():
    model = TwoPart()
    model.backbone.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, lambda step: BATCH, mse, config(weight_decay=0.1))
    after = model.state_dict()
    assert torch.equal(before["backbone.weight"], after["backbone.weight"])
    assert torch.equal(before["backbone.bias"], after["backbone.bias"])
    assert not torch.equal(before["head.weight"], after["head.weight"])


class Noisy(torch.nn.Module):
    """Dropout (RNG) and BatchNorm (buffers): both must survive a checkpoint for bit-identity."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 16),
            torch.nn.BatchNorm1d(16),
            torch.nn.Dropout(0.3),
            torch.nn.Linear(16, 4),
        )

    def forward(self, x):
        return self.net(x)


def noisy_batch(step):
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(16, 8, generator=g)
    return {"x": x, "y": x[:, :4] * 2}


def test_resume_is_bit_identical(tmp_path):
    kw = dict(steps=10, schedule="cosine_with_min_lr", warmup_steps=3, weight_decay=0.01)
    torch.manual_seed(0)
    straight = Noisy()
    full = train(straight, noisy_batch, mse, config(**kw))
    assert full.resumed_from_step is None

    torch.manual_seed(0)
    first = Noisy()
    ckdir = str(tmp_path / "ck")
    stop_after_5 = lambda step, record, model: step == 4  # noqa: E731
    train(first, noisy_batch, mse, config(**kw, checkpoint_dir=ckdir), callback=stop_after_5)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["step-00000005.pt"]

    torch.manual_seed(123)  # a different init: everything must come from the checkpoint
    resumed = Noisy()
    hist = train(resumed, noisy_batch, mse, config(**kw, checkpoint_dir=ckdir, resume=True))
    assert hist.resumed_from_step == 5
    assert [r["step"] for r in hist] == list(range(10))
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert hist.column("loss").tolist() == full.column("loss").tolist()

    # a crash between checkpoints: resume from the last periodic save (step 6); only the
    # newest two are kept
    def crash_at_7(step, record, model):
        if step == 7:
            raise RuntimeError("simulated crash")

    torch.manual_seed(0)
    crashed_dir = tmp_path / "crash"
    crashing = config(**kw, checkpoint_dir=str(crashed_dir), checkpoint_every=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(Noisy(), noisy_batch, mse, crashing, crash_at_7)
    kept = sorted(p.name for p in crashed_dir.iterdir())
    assert kept == ["step-00000004.pt", "step-00000006.pt"]
    saved = torch.load(crashed_dir / kept[-1], weights_only=True)
    assert saved["step"] == 6 and saved["data"] == {"kind": "step -> batch", "position": 6}
    again = Noisy()
    hist = train(again, noisy_batch, mse, dataclasses.replace(crashing, resume=True))
    assert hist.resumed_from_step == 6
    for a, b in zip(straight.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)

    # nothing to resume from: a fresh run
    fresh = train(
        Noisy(), noisy_batch, mse, config(checkpoint_dir=str(tmp_path / "none"), resume=True)
    )
    assert fresh.resumed_from_step is None and len(fresh) == 10


def test_a_checkpoint_of_other_settings_is_refused_naming_the_difference(tmp_path):
    from nblib.checkpoints import CheckpointMismatch

    ckdir = str(tmp_path / "ck")
    ident = {"demos": 5, "head": "flow", "device": "cpu"}
    base = config(checkpoint_dir=ckdir, checkpoint_every=5, identity=ident)
    stop = lambda step, record, model: step == 4  # noqa: E731
    train(linear(), lambda step: BATCH, mse, base, callback=stop)
    for change, named in [
        (dict(lr=5e-3), r"TrainConfig\.lr: 0\.01 in the checkpoint, 0\.005 now"),
        (dict(identity=ident | {"demos": 3}), r"demos: 5 in the checkpoint, 3 now"),
        (dict(steps=20), r"TrainConfig\.steps: 10 in the checkpoint, 20 now"),
    ]:
        resumed = dataclasses.replace(base, resume=True, **change)
        with pytest.raises(CheckpointMismatch, match=named) as err:
            train(linear(), lambda step: BATCH, mse, resumed)
        assert "set resume=False" in str(err.value) and "step-00000005.pt" in str(err.value)
    # what does not shape the numbers may change: checkpoint_every, threads, progress; and
    # device="auto" is the device it resolves to (here the CPU the checkpoint was taken on),
    # in the config and in a notebook's parameters alike
    same = dataclasses.replace(base, resume=True, checkpoint_every=3, threads=1, device="auto")
    same = dataclasses.replace(same, identity=ident | {"device": "auto"})
    assert train(linear(), lambda step: BATCH, mse, same).resumed_from_step == 5
    # another code version (here: a checkpoint claiming another commit) is refused too
    path = tmp_path / "ck" / "step-00000010.pt"
    state = torch.load(path, weights_only=True)
    state["identity"]["code"] = "nblib 0.0.1 0123abc"
    torch.save(state, path)
    with pytest.raises(
        CheckpointMismatch, match=r"code: 'nblib 0\.0\.1 0123abc' in the checkpoint"
    ):
        train(linear(), lambda step: BATCH, mse, dataclasses.replace(base, resume=True))


class Parts(torch.nn.Module):
    """A policy-shaped model: an encoder, an expert of layers, a head, and an unused part."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh())
        self.expert = torch.nn.Module()
        self.expert.layers = torch.nn.ModuleList([torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)])
        self.head = torch.nn.Linear(8, 4)
        self.unused = torch.nn.Linear(8, 8)  # trainable, but the loss never reaches it

    def forward(self, x):
        x = self.encoder(x)
        for layer in self.expert.layers:
            x = torch.tanh(layer(x))
        return self.head(x)


def test_gradient_flow_per_module_and_throughput_are_logged():
    torch.manual_seed(0)
    hist = train(Parts(), lambda step: BATCH, mse, config(steps=7, grad_flow_every=3))
    flow = [k for k in hist[0] if k.startswith("grad_norm/")]
    assert flow == [
        "grad_norm/encoder",
        "grad_norm/encoder.0",
        "grad_norm/expert",
        "grad_norm/expert.layers",
        "grad_norm/expert.layers.0",
        "grad_norm/expert.layers.1",
        "grad_norm/head",
        "grad_norm/unused",
    ]  # the Tanh has no parameters: no group
    logged = [r["step"] for r in hist if "grad_norm/head" in r]
    assert logged == [0, 3, 6]  # every 3 steps and the last
    for r in hist:
        if "grad_norm/head" in r:
            assert r["grad_norm/unused"] == 0.0 and r["grad_norm/head"] > 0
            parts = [r[f"grad_norm/{k}"] for k in ("encoder", "expert", "head")]
            assert math.isclose(math.hypot(*parts), r["grad_norm"], rel_tol=1e-5)
            assert math.isclose(
                math.hypot(r["grad_norm/expert.layers.0"], r["grad_norm/expert.layers.1"]),
                r["grad_norm/expert"],
                rel_tol=1e-5,
            )
        assert r["samples_per_second"] == pytest.approx(32 / r["seconds"])
    with pytest.raises(ParameterError, match="TrainConfig.grad_flow_every"):
        config(grad_flow_every=-1)


def test_history_roundtrip(tmp_path):
    hist = train(linear(), lambda step: BATCH, lambda m, b: {"loss": mse(m, b), "n": 32}, config())
    hist.save(tmp_path / "h.jsonl")
    back = History.load(tmp_path / "h.jsonl")
    assert back == hist and isinstance(back, History)
    assert back.final("loss", window=3) == pytest.approx(np.mean(hist.column("loss")[-3:]))
    assert list(back.to_frame().columns[:3]) == ["step", "loss", "n"]
    with pytest.raises(ParameterError, match="no column 'acc'"):
        back.column("acc")


@pytest.mark.parametrize(
    "field, value",
    [
        ("lr", -1e-3),
        ("schedule", "cosine_restarts"),
        ("device", "tpu"),
        ("steps", 0),
        ("mixed_precision", "fp16"),
        ("betas", (0.9, 1.0)),
        ("checkpoint_every", 5),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ParameterError, match=rf"TrainConfig\.{field}"):
        TrainConfig(**{field: value})


def test_a_warmup_longer_than_a_short_run_names_the_runs_steps():
    # A newcomer's `-p steps 60` keeps the default warmup of 100: the bound is shown.
    with pytest.raises(ParameterError, match=r"warmup_steps=100 .* in \[0, steps=60\]"):
        TrainConfig(steps=60, warmup_steps=100)


def test_callable_and_iterable_batches():
    seen = []

    def loss(model, batch):
        seen.append(int(batch["id"]))
        return mse(model, batch)

    three = [BATCH | {"id": torch.tensor(i)} for i in range(3)]
    hist = train(linear(), three, loss, config())
    assert len(hist) == 10 and seen == [0, 1, 2] * 3 + [0]

    seen.clear()
    train(linear(), lambda step: BATCH | {"id": torch.tensor(step)}, loss, config(steps=4))
    assert seen == [0, 1, 2, 3]

    with pytest.raises(ParameterError, match="ran out after 3 batches"):
        train(linear(), iter(three), loss, config())


def test_bf16_then_fp32_in_one_process():
    # accelerate keeps process-wide state; switching precision between calls must just work,
    # and the model's forward must not stay patched to autocast afterwards
    model = linear()
    hist = train(model, lambda step: BATCH, mse, config(steps=3, mixed_precision="bf16"))
    assert len(hist) == 3 and "_original_forward" not in vars(model)
    exact = torch.nn.functional.linear(X, model.weight, model.bias)
    assert torch.equal(model(X), exact)  # bf16 autocast would round this
    assert len(train(model, lambda step: BATCH, mse, config(steps=3))) == 3
