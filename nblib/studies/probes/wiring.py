"""Is the pipeline wired as configured, and can the heads learn alone? (seed 001)

Seed 001's LoRA adapters were registered but never applied; its flow head was then tested
alone on random conditions -> random targets (its "test 3").
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch

from nblib.models.vla import Samples
from nblib.studies.probes.study import (
    ProbesConfig,
    ProbesStudy,
    attach_policy_geometry,
    subset_samples,
)
from nblib.studies.setup import HORIZON


def pipeline_checks(study: ProbesStudy) -> pd.DataFrame:
    """Rows: the LoRA check (on the policy's adapters; on fresh adapters applied to a copy
    of the backbone when it has none, to show the check itself works) and one gradient row
    per module after one backward pass of the policy's loss on probe samples. A plug-in:
    :func:`plugin_checks`."""
    if study.plugin is not None:
        return plugin_checks(study)
    from nblib.models.checks import gradient_check, lora_check
    from nblib.models.vla import make_batches, make_loss_fn, precompute_features

    samples = study.samples
    n = min(4, len(samples))
    images, texts = samples.images[:n], samples.instructions[:n]
    backbone = study.backbone
    note = "the policy's adapters"
    if not backbone.lora_enabled:
        backbone = copy.deepcopy(backbone).apply_lora(rank=4, alpha=8)
        note = "fresh adapters on a copy (the policy has none)"
    lora = lora_check(backbone, images, texts)
    rows = [
        {
            "check": f"LoRA adapters in the forward path ({note})",
            "ok": bool(lora["ok"]),
            "detail": f"{lora['adapters']} adapter tensors; output change {lora['output_change']:.2g} "
            f"when enabled vs zeroed; {lora['with_gradient']} receive a gradient",
            **_lora_numbers(lora),
        }
    ]
    model = study.model
    # the policy's loss needs chunks of its own horizon: the probe samples have 1 step
    train_samples = _with_horizon(study, model.policy.config.horizon)
    if not model.backbone:  # frozen backbone: features first, as training does
        precompute_features(study.backbone, train_samples, study.features, None, progress=False)
    batch = make_batches(train_samples, min(16, len(train_samples)), study.config.seed)(0)
    policy = model.policy
    modules = {
        "backbone (VLM)": study.backbone,
        "projector": policy.projector,
        "proprio encoder": policy.proprio,
        "action expert": policy.expert,
        f"head ({policy.config.head})": policy.head,
    }
    if policy.geometry is not None:  # seed 002: does the compressor get a gradient?
        modules[f"geometry compressor ({policy.config.geometry})"] = policy.geometry
    model.train()
    try:
        grads = gradient_check(model, make_loss_fn(train_samples), batch, modules)
    finally:
        model.eval()
    rows += _gradient_rows(grads)
    return pd.DataFrame(rows)


def _lora_numbers(lora: dict) -> dict:
    """The LoRA row's numbers for the wiring figure and metrics (``name`` "lora")."""
    keys = ("adapters", "output_change", "with_gradient")
    return {"name": "lora"} | {k: float(lora.get(k) or 0.0) for k in keys}


def _gradient_rows(grads: list[dict]) -> list[dict]:
    """The checks table's rows of :func:`nblib.models.checks.gradient_check`'s results,
    with their numbers (``name`` the module, ``trainable``, ``frozen``, ``grad_norm``) for
    the wiring figure."""
    rows = []
    for row in grads:
        trains = row["trainable"] > 0
        state = "trainable, gets a gradient" if trains else "frozen, gets none"
        rows.append(
            {
                "check": f"{row['module']}: {state}",
                "ok": row["ok"],
                "detail": f"{row['trainable']} trainable / {row['frozen']} frozen parameters; "
                f"grad norm {row['grad_norm']:.3g}; frozen tensors with a gradient "
                f"{row['frozen_with_grad']}; trainable without {row['trainable_without_grad']}",
                "name": row["module"],
                "trainable": float(row["trainable"]),
                "frozen": float(row["frozen"]),
                "grad_norm": float(row["grad_norm"]),
            }
        )
    return rows


def plugin_checks(study: ProbesStudy) -> pd.DataFrame:
    """A plug-in's wiring: its peft LoRA layers (found by type) must change the predicted
    chunk when their weights change and receive a gradient from its ``forward`` loss; one
    backward pass of that loss reaches every trainable top-level child and no frozen one."""
    from nblib.models.checks import adapter_check, gradient_check, peft_lora_parameters
    from nblib.plugins.runtime import model_device, samples_batch

    plugin, model = study.plugin, study.model
    samples = _with_horizon(study, plugin.info.horizon)
    idx = np.arange(min(8, len(samples)))
    device = model_device(model)

    def batch(training: bool) -> dict:
        cameras = plugin.info.cameras
        return samples_batch(samples, idx, study.stats, cameras, device=device, targets=training)

    def predicted() -> torch.Tensor:
        return model.predict_action_chunk(batch(False)).float()

    def loss() -> torch.Tensor:
        return model(batch(True))[0]

    model.eval()
    lora = adapter_check(peft_lora_parameters(model), predicted, loss, seed=study.config.seed)
    if lora["adapters"]:
        row = {
            "check": "LoRA adapters in the forward path (peft layers of the plug-in)",
            "ok": bool(lora["ok"]),
            "detail": f"{lora['adapters']} adapter tensors; chunk change "
            f"{lora['output_change']:.2g} when set vs zeroed; {lora['with_gradient']} receive "
            "a gradient from forward's loss"
            + (f"; without: {', '.join(lora['unreached'])}" if lora["unreached"] else ""),
            **_lora_numbers(lora),
        }
    else:
        row = {
            "check": "LoRA adapters in the forward path",
            "ok": True,
            "detail": "the plug-in holds no peft LoRA layer: nothing to check",
            "name": "lora",
            "adapters": 0.0,
        }
    modules = dict(model.named_children()) or {type(model).__name__: model}
    model.train()
    try:
        grads = gradient_check(model, lambda m, b: m(b)[0], batch(True), modules)
    finally:
        model.eval()
    return pd.DataFrame([row, *_gradient_rows(grads)])


def _with_horizon(study: ProbesStudy, horizon: int) -> Samples:
    """The probe samples with action chunks of ``horizon`` steps (and their geometry)."""
    from nblib.models.vla import load_samples

    samples = study.samples
    if samples.actions.shape[1] == horizon:
        return copy.copy(samples)
    demos, ts = list(samples.demo), [int(t) for t in samples.t]
    full = load_samples(study.store.subset(sorted(set(demos))), horizon, study.stats)
    out = subset_samples(full, demos, ts)
    if study.plugin is None:
        attach_policy_geometry(study.model, study.store, out)
    return out


def head_isolation(
    config: ProbesConfig, cond_dim: int = 128, horizon: int = HORIZON, action_dim: int = 4
) -> dict:
    """Seed 001's test 3: can the head map unique conditions to targets at all? The flow
    head and the regression head, each trained alone on ``isolation_samples`` random
    conditions -> random targets (both N(0, 1)) with the suite's training loop. Returns
    per head its History and the final action MAE of its predictions on those targets (a
    constant predictor scores ~0.8). None for a plug-in: the test is of nblib's heads, not
    of the plug-in's."""
    if config.plugin:
        return None
    from nblib.models.heads import make_head
    from nblib.train import TrainConfig, train

    g = torch.Generator().manual_seed(config.seed)
    cond = torch.randn(config.isolation_samples, cond_dim, generator=g)
    target = torch.randn(config.isolation_samples, horizon, action_dim, generator=g)

    def batch(step: int) -> dict:
        rng = np.random.default_rng([config.seed, step])
        idx = rng.choice(len(cond), size=min(32, len(cond)), replace=False)
        return {"cond": cond[idx], "actions": target[idx]}

    out = {}
    for kind in ("flow", "regression"):
        torch.manual_seed(config.seed)
        head = make_head(kind, cond_dim, horizon, action_dim)
        history = train(
            head,
            batch,
            lambda m, b: m.loss(b["cond"], b["actions"]),
            TrainConfig(steps=config.isolation_steps, lr=1e-3, seed=config.seed, progress=False),
        )
        head.eval()
        with torch.no_grad():
            pred = head.predict(cond, generator=torch.Generator().manual_seed(config.seed))
        out[kind] = {
            "history": history,
            "final_loss": history.final("loss", 20),
            "first_loss": float(np.mean(history.column("loss")[:20])),
            "mae": float((pred - target).abs().mean()),
        }
    return out
