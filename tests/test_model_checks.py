"""Pipeline checks (nblib.models.checks): adapters in the forward path, gradients where the
configuration says (seed 001's LoRA modules were registered but never applied)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from nblib.models.backbone import Backbone
from nblib.models.checks import gradient_check, lora_check
from nblib.models.policy import PolicyConfig, VLAPolicy

FRAMES = [[np.full((32, 32, 3), v, np.uint8)] for v in (40, 200)]
TEXTS = ["reach the goal", "press the button"]


@pytest.fixture(scope="module")
def tiny():
    return Backbone.tiny(image_size=32)


def test_peft_adapters_are_applied_and_restored(tiny):
    bb = copy.deepcopy(tiny).apply_lora(rank=2, alpha=4)
    before = {n: p.detach().clone() for n, p in bb.model.named_parameters() if "lora_" in n}
    result = lora_check(bb, FRAMES, TEXTS)
    assert result["ok"] and result["applied"] and result["output_change"] > 1e-3
    assert result["with_gradient"] == result["adapters"] == len(before) > 0
    for n, p in bb.model.named_parameters():  # every weight and flag as it was
        if n in before:
            assert torch.equal(p, before[n]) and p.requires_grad
    assert all(v.abs().sum() == 0 for n, v in before.items() if "lora_B" in n)


def test_unhooked_adapters_are_flagged(tiny):
    """Seed 001's bug: adapters registered as submodules, saved and counted, but not in the
    forward pass."""
    bb = copy.deepcopy(tiny)
    width = bb.hidden_size
    bb.model.lora_modules = nn.ModuleDict(
        {"q_proj": nn.Linear(width, width), "v_proj": nn.Linear(width, width)}
    )
    result = lora_check(bb, FRAMES, TEXTS)
    assert result["adapters"] == 4 and result["applied"] is False and result["ok"] is False
    assert result["output_change"] == 0.0
    assert result["without_gradient"] == 4 and result["unreached"][0].startswith("lora_modules")


def test_no_adapters(tiny):
    assert lora_check(tiny, FRAMES, TEXTS) == {
        "adapters": 0,
        "applied": None,
        "ok": None,
        "reason": "no LoRA adapters",
    }


def test_gradients_reach_trainable_modules_and_spare_frozen_ones():
    torch.manual_seed(0)
    policy = VLAPolicy(PolicyConfig(vlm_dim=16, proprio_dim=3, action_dim=2, horizon=4, d_model=32))
    policy.projector.requires_grad_(False)  # frozen on purpose
    unused = nn.Linear(4, 4)  # trainable but outside the loss: the wiring bug to catch
    batch = {
        "vlm": torch.randn(6, 16),
        "proprio": torch.randn(6, 3),
        "actions": torch.randn(6, 4, 2),
    }
    rows = gradient_check(
        policy,
        lambda m, b: m.loss(b),
        batch,
        {
            "projector": policy.projector,
            "expert": policy.expert,
            "head": policy.head,
            "unused": unused,
        },
    )
    by = {r["module"]: r for r in rows}
    assert by["projector"]["trainable"] == 0 and by["projector"]["frozen_with_grad"] == 0
    assert by["projector"]["ok"] and by["expert"]["ok"] and by["head"]["ok"]
    assert by["expert"]["grad_norm"] > 0
    assert not by["unused"]["ok"] and by["unused"]["trainable_without_grad"] == 2
    assert all(p.grad is None for p in policy.parameters())  # cleared afterwards
