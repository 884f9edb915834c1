"""The tiny offline Qwen2.5-VL backbone: shapes, determinism, save/load, LoRA, identity."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from transformers import BaseImageProcessor, PreTrainedTokenizerBase

from nblib.errors import ParameterError
from nblib.models.backbone import Backbone, load_backbone
from nblib.models.pretrained import Qwen2_5_VLNoVideoProcessor
from nblib.models.tiny_qwen import build_tiny_tokenizer

B, N_CAM, SIZE = 3, 2, 128
INSTRUCTIONS = ["reach the goal", "open the drawer", "pick up the puck and place it at the goal"]


def frames(seed: int, batch: int = B, cams: int = N_CAM) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(cams)]
        for _ in range(batch)
    ]


@pytest.fixture(scope="module")
def tiny() -> Backbone:
    return Backbone.tiny(seed=0)


@pytest.fixture(scope="module")
def images() -> list[list[np.ndarray]]:
    return frames(0)


@pytest.fixture(scope="module")
def outputs(tiny, images) -> dict:
    return tiny.encode(images, INSTRUCTIONS, output=("last", "tokens", "layers"))


def tokenizer_hash() -> str:
    return hashlib.sha256(build_tiny_tokenizer().backend_tokenizer.to_str().encode()).hexdigest()


def test_shapes_and_values(tiny, outputs):
    d = tiny.hidden_size
    assert d == 64 and tiny.num_image_tokens(SIZE, SIZE) == 16
    assert set(outputs) == {"last", "tokens", "layers", "attention_mask"}
    t = outputs["tokens"].shape[1]
    assert t >= N_CAM * 16 + 5
    assert outputs["last"].shape == (B, d)
    assert outputs["tokens"].shape == (B, t, d)
    assert outputs["attention_mask"].shape == (B, t)
    assert len(outputs["layers"]) == tiny.num_layers + 1
    for h in (outputs["last"], outputs["tokens"], *outputs["layers"]):
        assert h.dtype == torch.float32 and torch.isfinite(h).all()
    assert all(h.shape == (B, t, d) for h in outputs["layers"])
    # left padding: the last position is every sample's last token
    assert (outputs["attention_mask"][:, -1] == 1).all()
    assert (outputs["attention_mask"][:, 0] == 0).any()  # instructions differ in length
    torch.testing.assert_close(outputs["last"], outputs["tokens"][:, -1], atol=0, rtol=0)
    torch.testing.assert_close(outputs["layers"][-1], outputs["tokens"], atol=0, rtol=0)


def test_only_requested_keys(tiny, images, outputs):
    out = tiny.encode(images, INSTRUCTIONS)
    assert set(out) == {"last"}
    torch.testing.assert_close(out["last"], outputs["last"], atol=0, rtol=0)


def test_build_is_deterministic(tiny, images, outputs):
    rng_state = torch.get_rng_state()
    other = Backbone.tiny(seed=0)
    assert torch.equal(torch.get_rng_state(), rng_state)  # global RNG left alone
    a, b = tiny.model.state_dict(), other.model.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert other.identity() == tiny.identity()
    out = other.encode(images, INSTRUCTIONS, output=("last", "tokens"))
    torch.testing.assert_close(out["last"], outputs["last"], atol=0, rtol=0)
    assert Backbone.tiny(seed=1).identity() != tiny.identity()


def test_tokenizer_is_deterministic_across_processes():
    code = (
        "import hashlib; from nblib.models.tiny_qwen import build_tiny_tokenizer as b; "
        "print(hashlib.sha256(b().backend_tokenizer.to_str().encode()).hexdigest())"
    )
    env = dict(os.environ, PYTHONHASHSEED="123", HF_HUB_OFFLINE="1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == tokenizer_hash()


def test_save_load_roundtrip(tiny, images, outputs, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_ckpt")
    tiny.save_pretrained(path)
    loaded = Backbone.from_pretrained(path)
    proc = loaded.processor
    assert isinstance(proc, Qwen2_5_VLNoVideoProcessor)
    assert isinstance(proc.image_processor, BaseImageProcessor)
    assert isinstance(proc.tokenizer, PreTrainedTokenizerBase)
    assert proc.tokenizer.padding_side == "left"
    assert proc.chat_template == tiny.processor.chat_template
    assert loaded.num_image_tokens(SIZE, SIZE) == 16
    assert loaded.identity() == tiny.identity()
    out = loaded.encode(images, INSTRUCTIONS, output=("last", "tokens", "layers"))
    for key in ("last", "tokens", "attention_mask"):
        torch.testing.assert_close(out[key], outputs[key], atol=0, rtol=0)
    for x, y in zip(out["layers"], outputs["layers"], strict=True):
        torch.testing.assert_close(x, y, atol=0, rtol=0)
    # load_backbone: the notebooks' entry point takes the same directory
    assert load_backbone(str(path)).identity() == tiny.identity()


def test_instruction_and_image_matter(tiny, images, outputs):
    same_image = [images[0]] * 2
    last = tiny.encode(same_image, ["open the drawer", "close the drawer"])["last"]
    assert (last[0] - last[1]).abs().max() > 1e-4
    other = frames(1, batch=1)
    last = tiny.encode([images[0], other[0]], ["reach the goal"] * 2)["last"]
    assert (last[0] - last[1]).abs().max() > 1e-4


def test_prompt_fallback_matches_chat_template(tiny):
    with_template = tiny.prompt(2, "reach the goal")
    template, tiny.processor.chat_template = tiny.processor.chat_template, None
    try:
        assert tiny.prompt(2, "reach the goal") == with_template
    finally:
        tiny.processor.chat_template = template
    assert with_template.count("<|image_pad|>") == 2 and with_template.endswith("assistant\n")


def test_frozen_backbone_gets_no_grad(tiny, images):
    assert not any(p.requires_grad for p in tiny.parameters()) and not tiny.training
    head = torch.nn.Linear(tiny.hidden_size, 1)
    last = tiny.encode(images, INSTRUCTIONS)["last"]
    assert not last.requires_grad
    head(last).sum().backward()
    assert head.weight.grad is not None
    assert all(p.grad is None for p in tiny.parameters())


def test_unfreeze_then_freeze():
    bb = Backbone.tiny()
    bb.unfreeze()
    assert bb.training and all(p.requires_grad for p in bb.parameters())
    assert bb.encode(frames(2, batch=1, cams=1), ["reach the goal"])["last"].requires_grad
    bb.freeze()
    assert not bb.training and not bb.trainable_parameters()


def test_lora(images):
    bb = Backbone.tiny()
    base = bb.encode(images, INSTRUCTIONS)["last"]
    id_base = bb.identity()
    bb.apply_lora(rank=4, alpha=8)
    assert bb.lora_enabled
    names = [n for n, p in bb.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert len(names) == 2 * 4 * bb.num_layers  # A and B for q, k, v, o in every layer
    lora_modules = [n for n, _ in bb.model.named_modules() if n.endswith("lora_A")]
    assert lora_modules and not any("visual" in n for n in lora_modules)
    assert all(".language_model." in n for n in lora_modules)
    out = bb.encode(images, INSTRUCTIONS)["last"]
    assert out.requires_grad
    torch.testing.assert_close(out, base, atol=0, rtol=0)  # B = 0 at init
    id_init = bb.identity()
    assert id_init != id_base

    opt = torch.optim.SGD(bb.trainable_parameters(), lr=0.1)
    out.sum().backward()
    opt.step()
    opt.zero_grad()
    frozen = [p for n, p in bb.model.named_parameters() if "lora_" not in n]
    assert all(p.grad is None for p in frozen)
    tuned = bb.encode(images, INSTRUCTIONS)["last"].detach()
    assert (tuned - base).abs().max() > 1e-4
    assert bb.identity() != id_init
    with bb.disable_adapter():
        torch.testing.assert_close(bb.encode(images, INSTRUCTIONS)["last"], base, atol=0, rtol=0)
    torch.testing.assert_close(bb.encode(images, INSTRUCTIONS)["last"].detach(), tuned)
    with pytest.raises(ParameterError):
        bb.apply_lora()


def test_lora_save_load_roundtrip(images, tmp_path):
    bb = Backbone.tiny().apply_lora()
    with torch.no_grad():
        for n, p in bb.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    tuned = bb.encode(images, INSTRUCTIONS)["last"].detach()
    bb.save_pretrained(tmp_path)
    loaded = Backbone.from_pretrained(tmp_path)
    assert loaded.lora_enabled and not loaded.trainable_parameters()  # frozen by default
    assert loaded.identity() == bb.identity()
    torch.testing.assert_close(loaded.encode(images, INSTRUCTIONS)["last"], tuned, atol=0, rtol=0)


def test_identity_is_fast_and_tracks_weights():
    bb = Backbone.tiny()
    start = time.perf_counter()
    before = bb.identity()
    assert time.perf_counter() - start < 0.5
    assert len(before) == 16 and before == bb.identity()
    with torch.no_grad():
        next(iter(bb.model.parameters())).view(-1)[0] += 1e-3
    assert bb.identity() != before


# The tiny backbone's identity with RNG-free weights, recorded with transformers 5.24.0 /
# tokenizers 0.23.3. It names the feature-cache folders, so a refactor must leave it alone:
# a new value recomputes every cached feature. Regenerate (print the identity below) only
# when the config, tokenizer, processor, prompt or those libraries change on purpose.
PINNED_IDENTITY = "50e5a62bd6d67312"


def test_identity_is_pinned(tmp_path):
    bb = Backbone.tiny(seed=0)
    with torch.no_grad():  # exact dyadic values: no RNG, the same bytes on every CPU
        for p in bb.model.parameters():
            p.copy_((torch.arange(p.numel()) % 17 - 8).reshape(p.shape) / 16)
    assert bb.identity() == PINNED_IDENTITY
    bb.save_pretrained(tmp_path)
    assert load_backbone(str(tmp_path)).identity() == PINNED_IDENTITY


def test_autocast_bfloat16_on_cpu(images, outputs):
    bb = Backbone.tiny(autocast_dtype=torch.bfloat16)
    last = bb.encode(images, INSTRUCTIONS)["last"]
    assert last.dtype == torch.float32 and torch.isfinite(last).all()
    assert bb.identity() != Backbone.tiny().identity()


def test_missing_checkpoint_raises_parameter_error(tmp_path):
    missing = tmp_path / "no_such_checkpoint"
    with pytest.raises(ParameterError, match="no_such_checkpoint") as err:
        Backbone.from_pretrained(missing)
    assert "backbone='tiny'" in str(err.value)
    with pytest.raises(ParameterError, match="config.json"):
        Backbone.from_pretrained(tmp_path)


def test_bad_inputs(tiny, images):
    with pytest.raises(ParameterError, match="images"):
        tiny.encode(images[:2], INSTRUCTIONS)
    with pytest.raises(ParameterError, match="uint8"):
        tiny.encode([[np.zeros((SIZE, SIZE, 3), np.float32)]], ["reach the goal"])
    with pytest.raises(ParameterError, match="output"):
        tiny.encode(images, INSTRUCTIONS, output=("pooled",))
    with pytest.raises(ParameterError, match="at least one"):
        tiny.encode([[]], ["reach the goal"])


# --------------------------------------------------------------- unfreeze(last_layers=K)

LM = "model.language_model."


def trainable(bb: Backbone) -> set[str]:
    return {n for n, p in bb.model.named_parameters() if p.requires_grad}


def test_unfreeze_last_layers_trains_exactly_the_top_of_the_language_model():
    bb = Backbone.tiny()
    names = [n for n, _ in bb.model.named_parameters()]
    per_layer = {i: {n for n in names if n.startswith(f"{LM}layers.{i}.")} for i in range(2)}
    assert bb.num_layers == 2 and len(per_layer[0]) == len(per_layer[1]) == 12

    bb.unfreeze(last_layers=1)
    assert trainable(bb) == per_layer[1] | {f"{LM}norm.weight"}
    assert bb.training and bb.requires_grad
    # only the trained modules are in train mode: the frozen part computes as if frozen
    modes = dict((n, m.training) for n, m in bb.model.named_modules())
    assert modes[f"{LM}layers.1"] and modes[f"{LM}layers.1.mlp"] and modes[f"{LM}norm"]
    assert not modes[f"{LM}layers.0"] and not modes["model.visual"] and not modes[""]
    torch.nn.Sequential(bb).train()  # a training loop's model.train() keeps it so
    assert not bb.model.get_submodule(f"{LM}layers.0").training

    bb.unfreeze(last_layers=2)
    assert trainable(bb) == per_layer[0] | per_layer[1] | {f"{LM}norm.weight"}
    assert not any("embed_tokens" in n or "visual" in n or "lm_head" in n for n in trainable(bb))

    bb.unfreeze(last_layers=0)
    assert not trainable(bb) and not bb.training

    bb.unfreeze()  # None: everything, and the whole backbone trains again
    assert trainable(bb) == set(names) and all(m.training for m in bb.model.modules())


def test_unfreeze_last_layers_bad_values_name_the_parameter_and_the_layers():
    bb = Backbone.tiny()
    for bad in (3, -1, 1.0, True, "1"):
        with pytest.raises(ParameterError, match=r"last_layers.*\[0, 2\].*num_layers=2"):
            bb.unfreeze(last_layers=bad)
    assert not trainable(bb)  # a refused call changes nothing
    # a model whose layers are not an nn.ModuleList: a clear error, not a wrong guess
    lm = bb.model.get_submodule(LM.rstrip("."))
    lm.layers = torch.nn.Sequential(*lm.layers)
    with pytest.raises(ParameterError, match=r"decoder layers.*ModuleList of num_layers=2"):
        bb.unfreeze(last_layers=1)


def test_gradient_reaches_the_last_layer_and_not_the_first():
    bb = Backbone.tiny().unfreeze(last_layers=1)
    images = frames(3, batch=2, cams=1)
    last = bb(images, ["reach the goal", "open the drawer"])["last"]  # forward = encode
    assert last.requires_grad
    last.square().sum().backward()
    grads = {n: p.grad for n, p in bb.model.named_parameters()}
    top = [n for n in grads if n.startswith(f"{LM}layers.1.")]
    assert top and all(grads[n] is not None and grads[n].abs().sum() > 0 for n in top)
    assert grads[f"{LM}norm.weight"].abs().sum() > 0
    frozen = [n for n in grads if not n.startswith((f"{LM}layers.1.", f"{LM}norm."))]
    assert all(grads[n] is None for n in frozen)  # incl. layer 0, embeddings, vision tower


def test_unfreeze_last_layers_with_lora_trains_only_those_layers_adapters(images):
    bb = Backbone.tiny().apply_lora(rank=4, alpha=8)
    bb.unfreeze(last_layers=1)
    top = trainable(bb)
    assert len(top) == 2 * 4  # A and B for q, k, v, o of the last layer only
    assert all("lora_" in n and ".language_model.layers.1." in n for n in top)
    bb.unfreeze(last_layers=2)
    assert len(trainable(bb)) == 2 * 4 * 2 and all("lora_" in n for n in trainable(bb))
    bb.unfreeze()  # None: every adapter, as before
    assert len(trainable(bb)) == 2 * 4 * bb.num_layers

    bb.unfreeze(last_layers=1)  # a step on the last layer's adapters leaves the base intact
    base = bb.encode(images, INSTRUCTIONS)["last"]
    opt = torch.optim.SGD(bb.trainable_parameters(), lr=0.1)
    base.sum().backward()
    opt.step()
    assert all(p.grad is None for n, p in bb.model.named_parameters() if n not in top)
    with bb.disable_adapter():
        torch.testing.assert_close(
            bb.encode(images, INSTRUCTIONS)["last"], base.detach(), atol=0, rtol=0
        )
    assert (bb.encode(images, INSTRUCTIONS)["last"] - base).abs().max() > 1e-4
