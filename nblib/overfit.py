"""Can this pipeline overfit N demonstrations? (seed 001 as a tool)

If a policy cannot fit the actions of a handful of training demos, something between the
data and the head is broken (seed 001 found LoRA modules that were never applied); if it
can, poor closed-loop results come from elsewhere. The verdict is judged on action error,
never on the loss (see :func:`nblib.metrics.openloop.overfit_verdict`).

A negative control proves the verdict can fail: ``control="zero_inputs"`` makes every
sample's inputs identical (black frames, zero proprio, empty instruction), so no model can
tell samples apart; ``"shuffle_actions"`` re-pairs actions with random inputs every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from nblib.cache import FeatureCache, encode_batch
from nblib.data.dataset import ChunkDataset, DemoStore
from nblib.data.normalization import NormStats
from nblib.errors import ParameterError
from nblib.metrics.openloop import open_loop_errors, overfit_verdict
from nblib.models.policy import PolicyConfig, VLAPolicy

CONTROLS = ("none", "zero_inputs", "shuffle_actions")


@dataclass
class Samples:
    """Every (demo, t) sample of some demos, held in memory. Actions are normalised."""

    images: list[list[np.ndarray]]  # per sample, one frame per camera
    instructions: list[str]
    proprio: np.ndarray  # (N, P) normalised
    actions: np.ndarray  # (N, H, A) normalised
    mask: np.ndarray  # (N, H) True where the step is inside the episode
    demo: list[str]
    t: np.ndarray
    features: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.instructions)


def load_samples(
    store: DemoStore, horizon: int, stats: NormStats, control: str = "none"
) -> Samples:
    """All samples of ``store``'s demos, normalised with ``stats`` (mean/std)."""
    if control not in CONTROLS:
        raise ParameterError(f"control must be one of {CONTROLS}, got {control!r}")
    ds = ChunkDataset(store, horizon=horizon, normalization="mean_std", stats=stats)
    items = [ds[i] for i in range(len(ds))]
    images = [[it["images"][c][0] for c in store.cameras] for it in items]
    instructions = [it["instruction"] or "" for it in items]
    proprio = np.stack([it["proprio"] for it in items])
    if control == "zero_inputs":
        images = [[np.zeros_like(f) for f in imgs] for imgs in images]
        instructions = [""] * len(items)
        proprio = np.zeros_like(proprio)
    return Samples(
        images=images,
        instructions=instructions,
        proprio=proprio,
        actions=np.stack([it["actions"] for it in items]),
        mask=np.stack([it["action_mask"] for it in items]),
        demo=[it["demo"] for it in items],
        t=np.array([it["t"] for it in items]),
    )


def precompute_features(
    backbone,
    samples: Samples,
    output: str,
    cache: FeatureCache | None,
    batch_size: int = 16,
    progress: bool = True,
) -> None:
    """Frozen-backbone features of every sample (through the cache) into ``samples.features``."""
    from tqdm.auto import tqdm

    chunks = []
    for start in tqdm(
        range(0, len(samples), batch_size), desc="backbone features", disable=not progress
    ):
        sl = slice(start, start + batch_size)
        with torch.no_grad():
            chunks.append(
                encode_batch(backbone, samples.images[sl], samples.instructions[sl], output, cache)
            )
    if output == "last":
        samples.features = {"vlm": torch.cat([c["vlm"] for c in chunks])}
    else:  # re-pad to one common width (left padding)
        width = max(c["vlm"].shape[1] for c in chunks)
        vlm, mask = [], []
        for c in chunks:
            pad = width - c["vlm"].shape[1]
            vlm.append(torch.nn.functional.pad(c["vlm"], (0, 0, pad, 0)))
            mask.append(torch.nn.functional.pad(c["vlm_mask"], (pad, 0), value=False))
        samples.features = {"vlm": torch.cat(vlm), "vlm_mask": torch.cat(mask)}


class PolicyWithBackbone(nn.Module):
    """What the training loop optimises: the policy, plus the backbone when it trains (LoRA)."""

    def __init__(self, policy: VLAPolicy, backbone=None, output: str = "last"):
        super().__init__()
        self.policy = policy
        self.backbone = backbone
        self.output = output

    def batch_inputs(
        self, samples: Samples, idx: np.ndarray, cache: FeatureCache | None = None
    ) -> dict:
        if samples.features:
            feats = {k: v[idx] for k, v in samples.features.items()}
        else:
            feats = encode_batch(
                self.backbone,
                [samples.images[i] for i in idx],
                [samples.instructions[i] for i in idx],
                self.output,
                cache,
            )
        device = next(self.policy.parameters()).device
        feats = {k: v.to(device) for k, v in feats.items()}
        feats["vlm"] = feats["vlm"].float()
        feats["proprio"] = torch.as_tensor(samples.proprio[idx], device=device)
        return feats


def make_batches(samples: Samples, batch_size: int, seed: int, shuffle_actions: bool = False):
    """A callable ``step -> indices/targets``: random minibatches, reproducible per step."""

    def batch(step: int) -> dict:
        rng = np.random.default_rng([seed, step])
        idx = rng.choice(len(samples), size=min(batch_size, len(samples)), replace=False)
        target = idx if not shuffle_actions else rng.permutation(idx)
        return {
            "idx": idx,
            "actions": torch.from_numpy(samples.actions[target]),
            "action_mask": torch.from_numpy(samples.mask[target]),
        }

    return batch


def make_loss_fn(samples: Samples, cache: FeatureCache | None = None):
    def loss_fn(model: PolicyWithBackbone, batch: dict) -> torch.Tensor:
        inputs = model.batch_inputs(samples, batch["idx"], cache)
        inputs["actions"] = batch["actions"].to(inputs["vlm"].device)
        inputs["action_mask"] = batch["action_mask"].to(inputs["vlm"].device)
        return model.policy.loss(inputs)

    return loss_fn


@torch.no_grad()
def predict_all(
    model: PolicyWithBackbone, samples: Samples, batch_size: int = 64, seed: int = 0, cache=None
) -> np.ndarray:
    """Predicted (normalised) chunks for every sample; flow noise drawn from ``seed``."""
    model.eval()
    device = next(model.policy.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    out = []
    for start in range(0, len(samples), batch_size):
        idx = np.arange(start, min(start + batch_size, len(samples)))
        out.append(
            model.policy.predict(model.batch_inputs(samples, idx, cache), generator=gen)
            .cpu()
            .numpy()
        )
    model.train()
    return np.concatenate(out)


def evaluate(
    model, samples: Samples, stats: NormStats, seed: int = 0, cache=None
) -> tuple[dict, np.ndarray]:
    """Open-loop errors in action units (predictions un-normalised) and the predictions."""
    pred = stats.actions.unnormalize(
        predict_all(model, samples, seed=seed, cache=cache), "mean_std"
    )
    true = stats.actions.unnormalize(samples.actions, "mean_std")
    return open_loop_errors(pred, true, samples.mask, np.array(stats.actions.std)), pred


def summarize(
    train_errors: dict, val_errors: dict | None, head: str, thresholds: dict | None, history
) -> dict:
    verdict = overfit_verdict(train_errors, head, thresholds)
    return {
        "verdict": verdict.verdict,
        "reasons": verdict.reasons,
        "train": train_errors,
        "val": val_errors,
        "final_loss": history.final("loss") if len(history) else None,
    }


def policy_config_for(
    backbone_dim: int, store: DemoStore, horizon: int, head: str, **overrides
) -> PolicyConfig:
    return PolicyConfig(
        vlm_dim=backbone_dim,
        proprio_dim=store.mapping.proprio_dim,
        action_dim=store.mapping.action_dim,
        horizon=horizon,
        head=head,
        **overrides,
    )


def plot_dim_errors(train_errors: dict, val_errors: dict | None, action_std, names: list[str]):
    """Per-dimension chunk MAE on train (and val) next to the action std (seed 001's table)."""
    from nblib.plots import color_for, new_figure

    x = np.arange(len(names))
    fig, ax = new_figure(width=3.5, height=2.2)
    bars = [
        ("action std", np.asarray(action_std), "#bbbbbb"),
        ("train MAE", np.asarray(train_errors["chunk_mae"]), color_for("train")),
    ]
    if val_errors:
        bars.append(("val MAE", np.asarray(val_errors["chunk_mae"]), color_for("val")))
    width = 0.8 / len(bars)
    for i, (label, values, colour) in enumerate(bars):
        ax.bar(x + (i - (len(bars) - 1) / 2) * width, values, width, label=label, color=colour)
    ax.set_xticks(x, names)
    ax.set_ylabel("action units")
    ax.legend()
    return fig, ax


def plot_chunks(
    pred: np.ndarray,
    true: np.ndarray,
    mask: np.ndarray,
    indices: list[int],
    labels: list[str],
    names: list[str],
):
    """Predicted (dashed) vs true (solid) action chunks, one row per sample, one column per dim."""
    from nblib.plots import PALETTE, new_figure

    fig, axes = new_figure(
        ncols=len(names),
        nrows=len(indices),
        width=7.16,
        height=1.1 * len(indices) + 0.4,
        squeeze=False,
        sharex=True,
    )
    for r, (row, i) in enumerate(zip(axes, indices, strict=True)):
        valid = mask[i]
        for d, ax in enumerate(row):
            steps = np.arange(pred.shape[1])
            ax.plot(steps[valid], true[i, valid, d], color=PALETTE[d % len(PALETTE)], label="true")
            ax.plot(
                steps[valid],
                pred[i, valid, d],
                color=PALETTE[d % len(PALETTE)],
                linestyle="--",
                label="predicted",
            )
            if r == 0:
                ax.set_title(names[d])
        row[0].set_ylabel(labels[i] if i < len(labels) else str(i), fontsize=6)
    axes[0][0].legend(fontsize=5)
    for ax in axes[-1]:
        ax.set_xlabel("chunk step")
    return fig, axes


@dataclass
class Experiment:
    """Everything an overfit run needs and produces; built by :func:`prepare`."""

    store: DemoStore
    split: object
    stats: NormStats
    train: Samples
    val: Samples
    backbone: object
    model: PolicyWithBackbone
    cache: FeatureCache | None
    features: str
    history: object = None


def prepare(
    manifest: str = "metaworld_default",
    demos: int = 5,
    val_demos: int = 5,
    horizon: int = 16,
    head: str = "flow",
    backbone: str = "tiny",
    features: str = "last",
    lora: bool = False,
    lora_rank: int = 8,
    cache: bool = True,
    device: str = "cpu",
    seed: int = 0,
    control: str = "none",
    policy_overrides: dict | None = None,
    autocast_dtype: torch.dtype | None = None,
    progress: bool = True,
) -> Experiment:
    """Data (fixed split, first ``demos`` training demos), backbone, features and policy."""
    from nblib.data.manifest import ensure_dataset, load_manifest
    from nblib.data.splits import split_episodes, subset_train
    from nblib.models.backbone import load_backbone
    from nblib.paths import cache_dir
    from nblib.train import seed_everything

    m = load_manifest(manifest)
    path = ensure_dataset(m, progress=progress)
    full = DemoStore(path, mapping=m.key_mapping)
    split = subset_train(split_episodes(full.demos, full.task, 0.2, seed), demos, val_demos)
    train_store = DemoStore(path, mapping=m.key_mapping, demos=split.train)
    stats = train_store.norm_stats()
    train = load_samples(train_store, horizon, stats, control)
    val = load_samples(
        DemoStore(path, mapping=m.key_mapping, demos=split.val), horizon, stats, control
    )

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    # The tiny backbone is always built from seed 0: the experiment seed varies the policy
    # and the batches, not the (cached) features.
    bb = load_backbone(backbone, device=device, autocast_dtype=autocast_dtype)
    if lora:
        bb.apply_lora(rank=lora_rank, alpha=2 * lora_rank)
        bb.unfreeze()  # with LoRA applied only the adapter weights train
    feature_cache = FeatureCache(cache_dir(), bb.identity(), features) if cache else None
    if not lora:  # frozen backbone: compute every sample's features once
        precompute_features(bb, train, features, feature_cache, progress=progress)
        precompute_features(bb, val, features, feature_cache, progress=progress)
    seed_everything(seed)
    config = policy_config_for(
        bb.hidden_size, train_store, horizon, head, **(policy_overrides or {})
    )
    model = PolicyWithBackbone(VLAPolicy(config), bb if lora else None, features)
    return Experiment(full, split, stats, train, val, bb, model, feature_cache, features)


def fit(exp: Experiment, train_config, batch_size: int = 32, control: str = "none"):
    """Train ``exp.model`` with the suite's one training loop; returns the history."""
    from nblib.train import train

    batches = make_batches(
        exp.train, batch_size, train_config.seed, shuffle_actions=control == "shuffle_actions"
    )
    exp.history = train(exp.model, batches, make_loss_fn(exp.train, exp.cache), train_config)
    return exp.history


def assess(exp: Experiment, head: str, thresholds: dict | None = None, seed: int = 0) -> dict:
    """Open-loop errors on train and val, the verdict and the predictions (for plots)."""
    train_errors, train_pred = evaluate(exp.model, exp.train, exp.stats, seed=seed, cache=exp.cache)
    val_errors, val_pred = (
        evaluate(exp.model, exp.val, exp.stats, seed=seed, cache=exp.cache)
        if len(exp.val)
        else (None, None)
    )
    result = summarize(train_errors, val_errors, head, thresholds, exp.history)
    result["train_pred"], result["val_pred"] = train_pred, val_pred
    return result


def parameter_rows(exp: Experiment) -> list[dict]:
    from nblib.models.policy import parameter_table

    policy = exp.model.policy
    return parameter_table(
        {
            "backbone (VLM)": exp.backbone,
            "projector": policy.projector,
            "proprio encoder": policy.proprio,
            "action expert": policy.expert,
            f"head ({policy.config.head})": policy.head,
        }
    )
