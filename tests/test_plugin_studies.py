"""Notebook 01's engine and the closed loop on policies written outside nblib
(``examples/policies/``): a plug-in overfits, its negative control fails, its run folder
loads back with identical predictions and drives `nblib eval`, and a broken plug-in stops
before the training with the contract's error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from nblib.errors import PluginError
from nblib.studies import overfit

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "policies"
CONV = f"{EXAMPLES / 'conv_mlp.py'}:make_policy"
SMOLVLM = f"{EXAMPLES / 'smolvlm_lora.py'}:make_policy"


def _config(**kw) -> overfit.OverfitConfig:
    base = dict(
        policy=CONV,
        policy_kwargs={"width": 32},
        head="regression",  # the bars of a deterministic head
        demos=1,
        val_demos=1,
        steps=200,  # measured: 0.074 [0.059, 0.095] against the PASS bar 0.15
        warmup_steps=10,
        lr=2e-3,
    )
    return overfit.OverfitConfig(**(base | kw))


def _run(config):
    study = overfit.prepare(config, progress=False)
    history = overfit.fit(study, progress=False)
    assessment = overfit.assess(study)
    return (
        study,
        history,
        assessment,
        overfit.verdict(overfit.evidence(study, history, assessment), config),
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    study, history, assessment, verdict = _run(_config())
    run = tmp_path_factory.mktemp("plugin_run")
    overfit.save_policy(study, history, run)
    return study, history, assessment, verdict, run


def test_a_plugin_overfits_one_demo(trained):
    study, history, assessment, verdict, _ = trained
    assert study.setup.plugin is not None and study.setup.backbone is None
    assert verdict.label == "PASS", verdict
    assert history.final("loss") < history.column("loss")[0] / 3
    assert "l1" in history.to_frame().columns  # the plug-in's own logs reach the history
    described = overfit.describe(study)
    assert "plug-in policy" in described and "encoder" in described and "trunk" in described


def test_the_negative_control_fails_for_a_plugin():
    # Two demos: one demo's chunks vary so little that its mean already scores ~0.42 (too
    # near the 0.35 bar); two give 0.705 [0.636, 0.775] (measured).
    *_, verdict = _run(_config(control="zero_inputs", demos=2, steps=100))
    assert verdict.label == "FAIL", verdict


def test_the_saved_run_loads_back_with_identical_predictions(trained):
    from nblib.plugins.runtime import load_plugin

    study, _, assessment, _, run = trained
    saved = load_plugin(run)
    assert saved.source.spec == CONV and saved.source.kwargs == {"width": 32}
    again = saved.source.predict(saved.model, study.train, study.stats, seed=0)
    np.testing.assert_array_equal(again, assessment.train.pred)


def test_the_closed_loop_runs_a_plugin_run_and_a_spec(trained, tmp_path):
    import pandas as pd

    from nblib.eval.rollout import EvalConfig, evaluate

    *_, run = trained
    for policy, kwargs in ((str(run), {}), (CONV, {"width": 16})):
        out = tmp_path / f"{len(kwargs)}.csv"
        config = EvalConfig(
            tasks=["reach"], policy=policy, policy_kwargs=kwargs, episodes=1, max_steps=6
        )
        frame = evaluate(config, out, progress=False)
        assert len(frame) == 1 and bool(frame["complete"].iloc[0])
        assert pd.read_csv(out)["task"].tolist() == ["reach"]


BROKEN = """
import torch

class Broken(torch.nn.Module):
    def __init__(self, info):
        super().__init__()
        self.layer = torch.nn.Linear(info.state_dim, info.action_dim)

    def forward(self, batch):
        return self.layer(batch["observation.state"]).abs().mean(), {}

    def predict_action_chunk(self, batch):
        return self.layer(batch["observation.state"])  # forgot the chunk dimension

def make(info):
    return Broken(info)
"""


def test_a_broken_plugin_stops_before_the_training(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text(textwrap.dedent(BROKEN))
    config = _config(policy=f"{path}:make", policy_kwargs={})
    with pytest.raises(
        PluginError, match=r"broken\.py:make.*shape \(2, 4\); expected .* = \(2, 16, 4\)"
    ):
        overfit.prepare(config, progress=False)


def test_a_mistyped_spec_fails_before_the_data_is_read(tmp_path, monkeypatch):
    import nblib.data.manifest as manifest

    monkeypatch.setattr(manifest, "open_dataset", lambda *a, **k: pytest.fail("data read"))
    with pytest.raises(PluginError, match=r"no such file .*nope\.py"):
        overfit.prepare(_config(policy=str(tmp_path / "nope.py:make")), progress=False)


def test_nblibs_own_model_options_are_refused_with_a_plugin():
    with pytest.raises(Exception, match=r"lora=True is invalid; expected False with a plug-in"):
        _config(lora=True)


@pytest.mark.parametrize(
    "policy, kwargs",
    [(CONV, {"width": 16}), (SMOLVLM, {"lora_rank": 2, "width": 32})],
    ids=["conv_mlp", "smolvlm_lora"],
)
def test_the_lr_sweep_trains_a_plugin_in_worker_processes(policy, kwargs):
    from nblib.studies import lr

    config = lr.LRConfig(
        policy=policy,
        policy_kwargs=kwargs,
        schedules=["constant"],
        peak_lrs=[1e-3, 3e-3],
        warmups=[0],
        steps=25,
        demos=1,
        range_test_steps=0,
        workers=2,
        smoothing=5,
        plateau_window=10,
    )
    study = lr.prepare(config)
    curves = lr.loss_curves(study, progress=False)
    assert set(curves["run"]) == {"constant lr=0.001 wu=0", "constant lr=0.003 wu=0"}
    assert curves.groupby("run")["step"].max().tolist() == [24, 24]
    first, last = curves.groupby("run")["loss"].first(), curves.groupby("run")["loss"].last()
    assert (last < first).all()  # the plug-in's own L1 loss falls
    assert lr.mean_action_loss(study) is None  # its loss is its own: no baseline in its units
    evidence = lr.evidence(study, lr.analyse(study, curves), baseline_loss=None)
    assert lr.verdict(evidence, config).label in ("FOUND", "STALLED")


def test_a_smolvlm_plugin_trains_its_lora_adapters_and_runs_closed_loop(tmp_path):
    """Another VLM family than nblib's (Idefics3, SmolVLM's), LoRA through peft: the
    adapters learn, the base weights stay as they were, the run loads back and drives the
    closed loop."""
    import torch
    from peft.tuners.lora import LoraLayer

    from nblib.eval.rollout import EvalConfig, evaluate
    from nblib.plugins.runtime import load_plugin

    kwargs = {"lora_rank": 4, "width": 64}
    config = _config(policy=SMOLVLM, policy_kwargs=kwargs, steps=40, val_demos=0)
    study = overfit.prepare(config, progress=False)
    before = {k: v.clone() for k, v in study.model.state_dict().items()}
    history = overfit.fit(study, progress=False)
    assert history.final("loss", window=5) < history.column("loss")[:5].mean()
    after = study.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    lora = {k for k in changed if "lora_" in k}
    assert any("lora_B" in k for k in lora)  # peft starts B at zero: it moved
    assert not {k for k in changed if "text_model" in k or "vision_model" in k} - lora
    layers = [m for m in study.model.modules() if isinstance(m, LoraLayer)]
    assert len(layers) == 4  # q_proj and v_proj of the 2 text layers, none in the vision tower
    overfit.save_policy(study, history, tmp_path)
    saved = load_plugin(tmp_path)
    again = saved.source.predict(saved.model, study.train, study.stats, seed=0)
    np.testing.assert_allclose(again, overfit.assess(study).train.pred, rtol=0, atol=1e-5)
    frame = evaluate(
        EvalConfig(tasks=["reach"], policy=str(tmp_path), episodes=1, max_steps=4),
        tmp_path / "eval.csv",
        progress=False,
    )
    assert len(frame) == 1


def test_the_readmes_policy_runs_as_written(tmp_path):
    """The README's plug-in, copied out as a user would, trains and is judged."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("```python\n# my_policy.py\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my_policy.py").write_text(block)
    config = _config(policy=f"{tmp_path / 'my_policy.py'}:make_policy", policy_kwargs={}, steps=30)
    study, history, assessment, _ = _run(config)
    assert len(history) == 30 and history.final("loss", window=5) < history.column("loss")[0]
    assert assessment.train.pred.shape == (len(study.train), 16, 4)


def test_the_lr_sweep_takes_a_plugins_run_folder_for_its_spec(trained):
    from nblib.studies import lr

    *_, run = trained
    setup = lr.LRConfig(policy=str(run)).setup_config()
    assert setup.plugin and setup.policy == CONV and setup.policy_kwargs == {"width": 32}
    wider = lr.LRConfig(policy=str(run), policy_kwargs={"width": 48}).setup_config()
    assert wider.policy_kwargs == {"width": 48}  # the notebook's kwargs override the run's
