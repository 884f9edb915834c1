"""A VLA policy on its backbone, trained and queried on in-memory demo samples.

``Samples`` holds every (demo, t) sample of some demos with its frames, instruction,
proprio and normalised action chunk; ``precompute_features`` runs a frozen backbone over
them once (through the feature cache); ``PolicyWithBackbone`` is what the training loop
optimises (the policy, plus the backbone when LoRA trains it); ``make_batches`` and
``make_loss_fn`` feed :func:`nblib.train.train`; ``predict_all`` samples every chunk;
``save_policy`` / ``load_policy`` keep a trained policy with what it needs to predict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nblib.cache import FeatureCache, encode_batch
from nblib.data.dataset import ChunkDataset
from nblib.data.hdf5 import DemoStore
from nblib.data.normalization import NormStats, Stats
from nblib.errors import DataError
from nblib.models.files import load_tagged, save_tagged, saved_file
from nblib.models.policy import PolicyConfig, VLAPolicy


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
    geometry: np.ndarray | None = None  # (N, G, D) geometry tokens (nblib.data.geometry)

    def __len__(self) -> int:
        return len(self.instructions)

    def attach_geometry(self, tokens: dict[str, np.ndarray]) -> None:
        """Each sample's geometry tokens: those of its demo's frame t (``tokens``: demo →
        (T, G, D), as :func:`nblib.data.geometry.geometry_tokens` returns)."""
        missing = sorted({d for d in self.demo if d not in tokens})
        if missing:
            raise DataError(f"geometry tokens are missing for demos {missing[:5]}")
        self.geometry = np.stack([tokens[d][t] for d, t in zip(self.demo, self.t, strict=True)])


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
        if samples.geometry is not None:
            feats["geom"] = torch.as_tensor(samples.geometry[idx], device=device)
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
        return model.policy.loss_terms(inputs)

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


def build_policy(backbone, store: DemoStore, horizon: int, head: str, **overrides) -> VLAPolicy:
    """A fresh policy sized for ``backbone``'s hidden width and ``store``'s proprio and
    action widths (``overrides``: other :class:`PolicyConfig` fields)."""
    return VLAPolicy(
        PolicyConfig(
            vlm_dim=backbone.hidden_size,
            proprio_dim=store.mapping.proprio_dim,
            action_dim=store.mapping.action_dim,
            horizon=horizon,
            head=head,
            **overrides,
        )
    )


# ----------------------------------------------------------------------------- saving

POLICY_FORMAT = "nblib.vla_policy/1"
POLICY_FILE = "policy.pt"
ADAPTER_DIR = "lora_adapter"


@dataclass
class SavedPolicy:
    """A policy loaded by :func:`load_policy`, ready to predict: the model (policy plus the
    backbone when it has LoRA), the backbone, the normalisation it was trained with, which
    VLM features it reads and what was recorded when it was saved."""

    model: PolicyWithBackbone
    backbone: object
    stats: NormStats
    features: str
    meta: dict


def save_policy(
    folder: str | Path,
    model: PolicyWithBackbone,
    backbone,
    backbone_spec: str,
    stats: NormStats,
    features: str,
    meta: dict | None = None,
) -> Path:
    """Write ``folder/policy.pt`` (policy config and weights, normalisation statistics,
    feature kind, the backbone's spec: ``"tiny"`` or its checkpoint directory) and, when
    the backbone carries LoRA, ``folder/lora_adapter/``. The backbone's base weights are not
    copied: ``"tiny"`` is rebuilt identically, a checkpoint is read from its directory.
    Returns ``folder``."""
    folder = Path(folder)
    state = {
        "policy_config": asdict(model.policy.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.policy.state_dict().items()},
        "stats": asdict(stats),
        "features": features,
        "backbone": str(backbone_spec),
        "lora": bool(backbone.lora_enabled),
        # the backbone's own weights that trained (unfrozen last layers): the base weights
        # read back from "tiny" or the checkpoint lack them
        "backbone_trained": {
            name: p.detach().cpu()
            for name, p in backbone.model.named_parameters()
            if p.requires_grad and "lora_" not in name
        },
        "meta": dict(meta or {}),
    }
    save_tagged(folder / POLICY_FILE, POLICY_FORMAT, state)
    if backbone.lora_enabled:
        backbone.save_adapter(folder / ADAPTER_DIR)
    return folder


def policy_file(path: str | Path) -> Path | None:
    """The ``policy.pt`` of a saved policy: ``path`` itself, ``path/policy.pt``, or
    ``path/policy/policy.pt`` (a notebook-01 run folder); None when there is none."""
    return saved_file(path, POLICY_FILE)


def load_policy(path: str | Path, device: str = "cpu") -> SavedPolicy:
    """A policy saved by :func:`save_policy` (``path``: its folder, its ``policy.pt`` or a
    notebook-01 run folder), with its backbone, in eval mode; predictions are identical to
    the saved model's."""
    from nblib.models.backbone import load_backbone

    file = policy_file(path)
    if file is None:
        raise DataError(
            f"{path}: no saved policy here (expected {POLICY_FILE}, or a notebook-01 run "
            f"folder holding policy/{POLICY_FILE})"
        )
    state = load_tagged(file, POLICY_FORMAT, "saved policy")
    backbone = load_backbone(state["backbone"], device=device)
    if state["lora"]:
        backbone.load_adapter(file.parent / ADAPTER_DIR)
    trained = state.get("backbone_trained") or {}
    if trained:
        unknown = backbone.model.load_state_dict(trained, strict=False).unexpected_keys
        if unknown:
            raise DataError(
                f"{file}: trained backbone weights {unknown[:3]} do not fit its backbone"
            )
    policy = VLAPolicy(PolicyConfig(**state["policy_config"]))
    policy.load_state_dict(state["state_dict"])
    joined = state["lora"] or bool(trained)  # the backbone is part of what was trained
    model = PolicyWithBackbone(policy, backbone if joined else None, state["features"])
    model.to(device).eval()
    stats = NormStats(
        Stats(**state["stats"]["actions"]),
        Stats(**state["stats"]["proprio"]),
        state["stats"]["demos"],
    )
    return SavedPolicy(model, backbone, stats, state["features"], state["meta"])
