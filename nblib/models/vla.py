"""A VLA policy on its backbone, trained and queried on in-memory demo samples.

``Samples`` holds every (demo, t) sample of some demos with its frames, instruction,
proprio and normalised action chunk; ``precompute_features`` runs a frozen backbone over
them once (through the feature cache); ``PolicyWithBackbone`` is what the training loop
optimises (the policy, plus the backbone when LoRA trains it); ``make_batches`` and
``make_loss_fn`` feed :func:`nblib.train.train`; ``predict_all`` samples every chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from nblib.cache import FeatureCache, encode_batch
from nblib.data.dataset import ChunkDataset, DemoStore
from nblib.data.normalization import NormStats
from nblib.models.policy import VLAPolicy


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


def load_samples(store: DemoStore, horizon: int, stats: NormStats) -> Samples:
    """All samples of ``store``'s demos (one frame per camera, proprio, an action chunk of
    ``horizon`` steps), normalised with ``stats`` (mean/std)."""
    ds = ChunkDataset(store, horizon=horizon, normalization="mean_std", stats=stats)
    items = [ds[i] for i in range(len(ds))]
    return Samples(
        images=[[it["images"][c][0] for c in store.cameras] for it in items],
        instructions=[it["instruction"] or "" for it in items],
        proprio=np.stack([it["proprio"] for it in items]),
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
