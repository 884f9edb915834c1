"""Notebook 02's engine on policies written outside nblib, with known answers: a plug-in
whose middle stage outputs a constant collapses *at that stage's name*, a peft adapter
injected but bypassed is flagged, and what needs nblib's own pipeline is reported as not
available instead of crashing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nblib.errors import PluginError
from nblib.studies import probes

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "policies"

# A policy whose "squeeze" stage throws its encoder's features away (a constant) while the
# state still reaches the trunk another way: collapsed at "squeeze", not at the action.
SQUEEZED = """
import torch
from torch import nn

class Squeezed(nn.Module):
    def __init__(self, info, bypass_lora=False):
        super().__init__()
        self.camera = info.cameras[0]
        self.h, self.a = info.horizon, info.action_dim
        self.register_buffer("mean", torch.as_tensor(info.stats["state"]["mean"]))
        self.register_buffer("std", torch.as_tensor(info.stats["state"]["std"]).clamp_min(1e-6))
        self.encoder = nn.Sequential(nn.Linear(info.state_dim, 16, bias=False), nn.Tanh())
        self.squeeze = nn.Linear(16, 16)
        self.trunk = nn.Sequential(nn.Linear(16 + info.state_dim, 32), nn.ReLU())
        self.head = nn.Linear(32, self.h * self.a)
        self.bypass = bypass_lora
        self.probe_stages = {"encoder": "encoder", "squeeze": "squeeze", "trunk": "trunk"}

    def chunk(self, batch):
        state = (batch["observation.state"] - self.mean) / self.std
        x = self.encoder(state)
        squeezed = self.squeeze(x * 0.0)  # a constant whatever the input
        fused = self.trunk(torch.cat([squeezed, state], -1))
        head = self.head
        if self.bypass:  # the adapter is injected, but its base layer is called directly
            head = self.head.base_layer
        return head(fused).view(-1, self.h, self.a)

    def forward(self, batch):
        return (self.chunk(batch) - batch["action"]).abs().mean(), {}

    @torch.no_grad()
    def predict_action_chunk(self, batch):
        return self.chunk(batch)

def make(info, bypass_lora=False, lora=False):
    model = Squeezed(info, bypass_lora)
    if lora:
        from peft import LoraConfig, inject_adapter_in_model
        model = inject_adapter_in_model(LoraConfig(r=2, target_modules=["trunk.0", "head"]), model)
    return model
"""


@pytest.fixture(scope="module")
def squeezed(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("plugins") / "squeezed.py"
    path.write_text(textwrap.dedent(SQUEEZED))
    return f"{path}:make"


def _study(policy: str, **kw):
    base = dict(policy=policy, samples=16, train_steps=20, train_demos=1)
    config = probes.ProbesConfig(**(base | kw))
    return config, probes.prepare(config, progress=False)


def test_a_constant_middle_stage_is_collapsed_at_its_name(squeezed):
    config, study = _study(squeezed)
    representations = probes.collect(study)
    assert list(representations) == ["images", "encoder", "squeeze", "trunk", "action"]
    table = probes.summaries(study, representations)
    found = probes.collapse(table, config)
    assert found["first"] == "squeeze" and "squeeze" in found["collapsed"]
    assert "trunk" not in found["collapsed"] and "action" not in found["collapsed"]
    language = probes.language_reliance(study)
    checks = probes.pipeline_checks(study)
    isolation = probes.head_isolation(config)
    assert isolation is None and probes.plots.plot_isolation(isolation) == (None, None)
    evidence = probes.evidence(study, table, language, checks, isolation)
    verdict = probes.verdict(evidence, config)
    assert verdict.label == "BOTTLENECK"
    assert verdict.numbers["first_collapsed_stage"] == "squeeze"
    metrics = probes.metrics(evidence)
    assert set(metrics["not_available"]) == {
        "head_isolation",
        "instruction_attention",
        "infobot_mi_estimate",
    }
    assert all({"check", "ok", "detail"} <= set(row) for row in metrics["checks"])
    assert probes.mi_estimate(study) is None and probes.instruction_attention(study) is None


def test_a_bypassed_peft_adapter_is_flagged_and_an_applied_one_passes(squeezed):
    _, applied = _study(squeezed, policy_kwargs={"lora": True})
    rows = probes.pipeline_checks(applied)
    lora = rows.iloc[0]
    assert "peft layers" in lora["check"] and bool(lora["ok"]), lora["detail"]
    _, bypassed = _study(squeezed, policy_kwargs={"lora": True, "bypass_lora": True})
    lora = probes.pipeline_checks(bypassed).iloc[0]
    assert not bool(lora["ok"])
    assert "without: head.lora_A.default.weight, head.lora_B.default.weight" in lora["detail"]


def test_stages_select_and_extend_the_plugins_own(squeezed):
    _, study = _study(squeezed, stages=["trunk"])
    assert list(probes.collect(study)) == ["images", "trunk", "action"]
    _, study = _study(squeezed, stages={"head": "head"})
    assert list(probes.collect(study)) == [
        "images",
        "encoder",
        "squeeze",
        "trunk",
        "head",
        "action",
    ]
    with pytest.raises(PluginError, match=r"stages \['neck'\] are not among its probe_stages"):
        _study(squeezed, stages=["neck"])
    with pytest.raises(PluginError, match=r"'neck' names 'body', which is not a submodule"):
        _study(squeezed, stages={"neck": "body"})


def test_a_notebook01_plugin_run_and_the_smolvlm_example_are_probed(tmp_path):
    from nblib.studies import overfit

    conv = f"{EXAMPLES / 'conv_mlp.py'}:make_policy"
    config = overfit.OverfitConfig(
        policy=conv, policy_kwargs={"width": 16}, demos=1, val_demos=0, steps=10, warmup_steps=2
    )
    study = overfit.prepare(config, progress=False)
    overfit.save_policy(study, overfit.fit(study, progress=False), tmp_path)
    _, probed = _study(str(tmp_path))
    assert probed.source.startswith("saved plug-in") and probed.history is None
    assert list(probes.collect(probed)) == ["images", "vision", "language", "trunk", "action"]

    smol = f"{EXAMPLES / 'smolvlm_lora.py'}:make_policy"
    _, study = _study(smol, policy_kwargs={"lora_rank": 2, "width": 32}, train_steps=5)
    names = list(probes.collect(study))
    assert names == ["images", "vision_connector", "text_model", "fusion", "action"]
    lora = probes.pipeline_checks(study).iloc[0]
    assert bool(lora["ok"]) and "8 adapter tensors" in lora["detail"], lora["detail"]
