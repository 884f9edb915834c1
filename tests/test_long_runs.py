"""Long runs (issue 27): notebook 01 killed mid-way and run again with the same command
resumes from its checkpoint to the same final numbers as a run left alone; a checkpoint
of other parameters is refused naming the difference; gradient flow, throughput and
memory reach metrics.json; the unfrozen last VLM layers train and save."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil  # an ipykernel dependency
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "01_overfit_diagnosis.ipynb"
# Small enough for CI, long enough that the kill lands between two checkpoints.
PARAMS = {
    "demos": 2,
    "val_demos": 1,
    "steps": 160,
    "warmup_steps": 10,
    "checkpoint_every": 40,
    "grad_flow_every": 10,
    "n_examples": 2,
}
# Metrics that measure the machine, not the training: they differ between any two runs.
TIMING = {"samples_per_second", "seconds_per_step", "memory", "peak_memory_bytes"}
TIMING |= {"wall_time_projection", "cache", "resumed_from_step", "throughput"}


def command(out: Path, manifest: str, **extra) -> list[str]:
    args = [sys.executable, "-m", "nblib", "run", str(NOTEBOOK), "--out", str(out)]
    for key, value in (PARAMS | {"manifest": manifest} | extra).items():
        args += ["-p", key, json.dumps(value) if not isinstance(value, str) else value]
    return args


def env() -> dict:
    return os.environ | {"MPLBACKEND": "Agg", "NBLIB_STRICT_FIGURES": "1"}


def training_numbers(metrics: dict) -> dict:
    """Everything metrics.json says about the trained policy, without the timings."""
    out = {k: v for k, v in metrics["metrics"].items() if k not in TIMING}
    curve = out.get("learning_curve") or {}
    out["learning_curve"] = {k: v for k, v in curve.items() if "seconds" not in k}
    return out | {"verdict": metrics["verdict"]}


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the runner and its kernel (a separate session of its own), as a preempted
    node would: no handler runs, nothing is flushed."""
    family = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGKILL)
    for child in family:
        try:
            child.kill()
        except psutil.Error:
            pass
    proc.wait(30)


def test_a_killed_run_resumes_to_the_numbers_of_a_run_left_alone(tiny_manifest, tmp_path):
    alone = tmp_path / "alone"
    subprocess.run(command(alone, tiny_manifest), check=True, env=env(), timeout=600)
    left_alone = json.loads((alone / "metrics.json").read_text())
    assert left_alone["metrics"]["resumed_from_step"] is None
    kept = sorted(p.name for p in (alone / "checkpoints").iterdir())
    assert kept == ["step-00000120.pt", "step-00000160.pt"]  # the newest two

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        command(killed, tiny_manifest),
        env=env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first = killed / "checkpoints" / "step-00000040.pt"
    deadline = time.monotonic() + 600
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.exists(), "no checkpoint appeared"
    kill_tree(proc)
    assert not (killed / "metrics.json").exists() or (
        json.loads((killed / "metrics.json").read_text())["verdict"] == "ERROR"
    )
    resumed_from = max(int(p.stem.split("-")[1]) for p in (killed / "checkpoints").iterdir())
    assert resumed_from < PARAMS["steps"], "the run finished before it was killed"

    subprocess.run(command(killed, tiny_manifest), check=True, env=env(), timeout=600)
    resumed = json.loads((killed / "metrics.json").read_text())
    assert resumed["metrics"]["resumed_from_step"] == resumed_from
    assert training_numbers(resumed) == training_numbers(left_alone)  # bit-identical on CPU
    flow = resumed["metrics"]["gradient_flow"]
    assert {"policy.projector", "policy.head"} <= set(flow)
    assert resumed["metrics"]["samples_per_second"] > 0
    figures = {Path(f).stem for f in resumed["figures"]}
    assert {"gradient_flow", "cost"} <= figures

    # the same folder with another learning rate: refused, the difference named
    other = subprocess.run(
        command(killed, tiny_manifest, lr=1e-3), env=env(), capture_output=True, text=True
    )
    assert other.returncode != 0
    said = other.stdout + other.stderr
    assert "lr: 0.002 in the checkpoint, 0.001 now" in said, said[-2000:]


@pytest.mark.parametrize("resume", [False])
def test_resume_false_starts_afresh(tiny_manifest, tmp_path, resume):
    """resume=False ignores (and then replaces) the checkpoints of an earlier run."""
    from nblib.studies import overfit

    params = {k: v for k, v in PARAMS.items() if k != "n_examples"}
    config = overfit.OverfitConfig(manifest=tiny_manifest, **params | {"steps": 40})
    study = overfit.prepare(config, progress=False)
    overfit.fit(study, tmp_path, progress=False)
    again = overfit.prepare(
        overfit.OverfitConfig(manifest=tiny_manifest, resume=resume, **params | {"steps": 40}),
        progress=False,
    )
    history = overfit.fit(again, tmp_path, progress=False)
    assert history.resumed_from_step is None and len(history) == 40


UNUSED_PLUGIN = """
import sys
sys.path.insert(0, {examples!r})
from torch import nn
from conv_mlp import make_policy as conv_mlp


def make_policy(info, **kwargs):
    policy = conv_mlp(info, **kwargs)
    policy.compressor = nn.Linear(8, 8)  # trainable, but forward() never calls it
    return policy
"""


def test_a_module_that_never_receives_a_gradient_is_named_in_the_verdict(tiny_manifest, tmp_path):
    """Seed 002's question on a plug-in written outside nblib: its extra compressor is
    trainable but unused, so it never receives a gradient; the verdict says so."""
    from nblib.studies import overfit

    file = tmp_path / "unused_part.py"
    file.write_text(UNUSED_PLUGIN.format(examples=str(REPO / "examples" / "policies")))
    config = overfit.OverfitConfig(
        manifest=tiny_manifest,
        policy=f"{file}:make_policy",
        policy_kwargs={"width": 16},
        head="regression",
        demos=2,
        val_demos=0,
        steps=30,
        warmup_steps=3,
        grad_flow_every=5,
    )
    study = overfit.prepare(config, progress=False)
    history = overfit.fit(study, progress=False)
    evidence = overfit.evidence(study, history, overfit.assess(study), overfit.cost(study, history))
    verdict = overfit.verdict(evidence, config)
    named = [r for r in verdict.reasons if "compressor" in r]
    assert len(named) == 1 and "never received a gradient" in named[0], verdict.reasons
    flow = overfit.metrics(evidence)["gradient_flow"]
    assert flow["compressor"]["last"] == 0.0 and flow["compressor"]["median"] == 0.0
    assert all(v["median"] > 0 for k, v in flow.items() if k != "compressor")
    assert not any("never received" in r for r in _healthy_reasons(tiny_manifest))


def _healthy_reasons(manifest: str) -> list[str]:
    from nblib.studies import overfit

    config = overfit.OverfitConfig(
        manifest=manifest, demos=2, val_demos=0, steps=30, warmup_steps=3, grad_flow_every=5
    )
    study = overfit.prepare(config, progress=False)
    history = overfit.fit(study, progress=False)
    return overfit.verdict(overfit.evidence(study, history, overfit.assess(study)), config).reasons


def test_the_last_vlm_layers_train_save_and_load_back(tiny_manifest, tmp_path):
    """unfreeze_layers=1: the backbone's last layer trains with the policy (no feature
    cache), per-module LR groups apply, and the saved policy predicts identically."""
    import numpy as np
    import torch

    from nblib.models.vla import load_policy
    from nblib.studies import overfit

    config = overfit.OverfitConfig(
        manifest=tiny_manifest,
        demos=1,
        val_demos=0,
        steps=4,
        warmup_steps=0,
        head="regression",
        unfreeze_layers=1,
        lr_groups={"backbone.": 1e-4},
        grad_flow_every=1,
    )
    study = overfit.prepare(config, progress=False)
    trained = {n for n, p in study.model.named_parameters() if p.requires_grad}
    backbone = sorted(n for n in trained if n.startswith("backbone."))
    assert backbone and all(".layers.1." in n or n.endswith("norm.weight") for n in backbone)
    before = {n: p.detach().clone() for n, p in study.model.named_parameters() if n in backbone}
    history = overfit.fit(study, progress=False)
    assert history[0]["lr/backbone."] == 1e-4 and history[0]["lr"] == config.lr
    assert any(
        not torch.equal(before[n], p) for n, p in study.model.named_parameters() if n in before
    )
    assert history[-1]["grad_norm/backbone"] > 0
    folder = overfit.save_policy(study, history, tmp_path)
    loaded = load_policy(folder)
    again = overfit.evaluate(study.setup, loaded.model, study.train, seed=0)
    np.testing.assert_array_equal(again.pred, overfit.assess(study).train.pred)


def test_bad_long_run_parameters_are_named():
    from nblib.errors import ParameterError
    from nblib.studies import overfit

    for name, value, expected in [
        ("checkpoint_every", -1, "an int >= 0"),
        ("resume", "yes", "True or False"),
        ("unfreeze_layers", -2, "an int >= 0"),
        ("lr_groups", [1e-3], "a dict"),
        ("cycles", 0, "an int >= 1"),
    ]:
        # the study's own check or the training loop's, for a field of the same name
        with pytest.raises(ParameterError, match=rf"(Overfit|Train)Config\.{name}=.*{expected}"):
            overfit.OverfitConfig(**{name: value})


def test_the_lr_sweep_checkpoints_each_run_and_resumes_it(tiny_manifest, tmp_path):
    """Notebook 03: each run of a live sweep checkpoints into OUT/checkpoints/<run>; the
    same sweep into the same folder resumes every run (here: each finished, so nothing is
    trained again) and gives the same curves; metrics.json says where each resumed."""
    from nblib.studies import lr

    config = lr.LRConfig(
        manifest=tiny_manifest,
        schedules=["constant", "cosine_with_restarts"],
        cycles=2,
        peak_lrs=[1e-3],
        warmups=[0],
        steps=20,
        demos=1,
        range_test_steps=0,
        workers=1,
        checkpoint_every=10,
    )
    study = lr.prepare(config)
    first = lr.loss_curves(study, tmp_path, progress=False)
    assert first.attrs["resumed_from_step"] == {s["run"]: None for s in study.specs}
    for spec in study.specs:
        kept = sorted(p.name for p in (tmp_path / "checkpoints" / spec["run"]).iterdir())
        assert kept == ["step-00000010.pt", "step-00000020.pt"]
    again = lr.loss_curves(study, tmp_path, progress=False)
    assert again.equals(first)
    assert again.attrs["resumed_from_step"] == {s["run"]: 20 for s in study.specs}
    runs = lr.analyse(study, again)
    numbers = lr.metrics(lr.evidence(study, runs, curves=again))
    assert numbers["resumed_from_step"] == {s["run"]: 20 for s in study.specs}


def test_the_probes_own_training_checkpoints_and_resumes(tiny_manifest, tmp_path):
    """Notebook 02 trains a policy when given a backbone: with checkpoint_every it
    checkpoints into OUT/checkpoints and a second prepare resumes (here: from the end)."""
    from nblib.studies import probes

    config = probes.ProbesConfig(
        manifest=tiny_manifest, samples=8, train_steps=12, train_demos=1, checkpoint_every=6
    )
    first = probes.prepare(config, tmp_path, progress=False)
    assert first.history.resumed_from_step is None
    again = probes.prepare(config, tmp_path, progress=False)
    assert again.history.resumed_from_step == 12
    assert again.history.column("loss").tolist() == first.history.column("loss").tolist()


def test_a_plugin_policy_resumes_through_the_same_loop(tiny_manifest, tmp_path):
    """A policy written outside nblib trains through the suite's loop, so it resumes too:
    with its last checkpoint gone (killed between steps 10 and 20), the rerun continues
    from step 10 and ends with the history and predictions of the uninterrupted run."""
    import numpy as np

    from nblib.studies import overfit

    config = overfit.OverfitConfig(
        manifest=tiny_manifest,
        policy=f"{REPO / 'examples' / 'policies' / 'conv_mlp.py'}:make_policy",
        policy_kwargs={"width": 16},
        head="regression",
        demos=1,
        val_demos=0,
        steps=20,
        warmup_steps=2,
        checkpoint_every=10,
    )
    study = overfit.prepare(config, progress=False)
    straight = overfit.fit(study, tmp_path, progress=False)
    expected = overfit.assess(study).train.pred
    (tmp_path / "checkpoints" / "step-00000020.pt").unlink()
    again = overfit.prepare(config, progress=False)
    resumed = overfit.fit(again, tmp_path, progress=False)
    assert resumed.resumed_from_step == 10
    assert resumed.column("loss").tolist() == straight.column("loss").tolist()
    np.testing.assert_array_equal(overfit.assess(again).train.pred, expected)
