"""The one experiment set-up of every study that trains a policy (notebooks 01, 02, 03).

From a :class:`SetupConfig` of plain values: open the dataset, split it per episode
(stratified by task, before any subsetting), compute the normalisation statistics of the
training demos, load the training and validation samples, load the backbone (tiny offline
Qwen2.5-VL or a local checkpoint), cache its frozen features, and build the policy.
:func:`train_policy` then fits it with the suite's one training loop.

The defaults below are the suite's: the overfit notebook exposes them as parameters,
the probes notebook trains with them when it is not handed a trained policy, and the LR
sweep trains its runs with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nblib.cache import OUTPUTS, FeatureCache
from nblib.data.hdf5 import DemoStore
from nblib.data.normalization import NormStats, load_norm_stats
from nblib.data.splits import VAL_FRACTION, Split
from nblib.devices import DEVICES, MIXED_PRECISIONS
from nblib.errors import ParameterError, is_int, is_number
from nblib.errors import require as _require
from nblib.models.geometry import COMPRESSORS
from nblib.models.policy import POLICY_HEADS
from nblib.models.vla import (
    PolicyWithBackbone,
    Samples,
    build_policy,
    load_samples,
    make_batches,
    make_loss_fn,
    precompute_features,
)
from nblib.train import History, TrainConfig

HORIZON = 16  # action chunk length H
BATCH_SIZE = 32  # samples per optimizer step
LR = 2e-3  # peak learning rate of the policy (its backbone frozen)
CONTROLS = ("none", "zero_inputs", "shuffle_actions")
# Autocast dtype of the backbone forward for each mixed_precision setting (GPU runs; on
# the CPU only bf16 is allowed, as in the training loop).
AUTOCAST = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class SetupConfig:
    """What to train on and with. ``demos`` training demos (the first of the fixed
    episode split) and at most ``val_demos`` validation demos (None: all)."""

    manifest: str = "metaworld_default"  # dataset manifest name or path
    demos: int = 5  # training demos
    val_demos: int | None = 0  # validation demos loaded (None: every held-out demo)
    horizon: int = HORIZON  # action chunk length
    head: str = "flow"  # flow, regression or infobot
    split_seed: int = 0  # seed of the episode split
    val_fraction: float = VAL_FRACTION
    backbone: str = "tiny"  # tiny or a local checkpoint directory
    features: str = "last"  # last (last-token state) or tokens
    lora: bool = False  # LoRA on the VLM attention (trains the backbone, no feature cache)
    lora_rank: int = 8
    cache: bool = True  # frozen-backbone features cached on disk
    device: str = "cpu"  # cpu, cuda or auto
    mixed_precision: str = "no"  # no, bf16 or fp16
    geometry: str = "none"  # geometry compressor (seed 002) or none
    mi_beta: float = 0.0  # infobot head: weight of its I(Z; V) penalty
    control: str = "none"  # negative control: none, zero_inputs or shuffle_actions
    # Errors name the study's config and parameters: e.g. owner "ProbesConfig" and
    # {"demos": "train_demos"} for the probes notebook, whose parameter has another name.
    owner: str = field(default="SetupConfig", compare=False, repr=False)
    names: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        own = self.owner

        def require(ok, owner, name, value, expected):
            _require(ok, owner, self.names.get(name, name), value, expected)

        require(isinstance(self.manifest, str), own, "manifest", self.manifest, "a name or path")
        for name in ("demos", "horizon", "lora_rank"):
            value = getattr(self, name)
            require(is_int(value) and value >= 1, own, name, value, "an int >= 1")
        v = self.val_demos
        require(v is None or (is_int(v) and v >= 0), own, "val_demos", v, "None or an int >= 0")
        require(self.head in POLICY_HEADS, own, "head", self.head, f"one of {POLICY_HEADS}")
        require(is_int(self.split_seed), own, "split_seed", self.split_seed, "an int")
        vf = self.val_fraction
        require(is_number(vf) and 0 <= vf < 1, own, "val_fraction", vf, "a number in [0, 1)")
        require(isinstance(self.backbone, str), own, "backbone", self.backbone, "tiny or a path")
        require(self.features in OUTPUTS, own, "features", self.features, f"one of {OUTPUTS}")
        for name in ("lora", "cache"):
            value = getattr(self, name)
            require(isinstance(value, bool), own, name, value, "True or False")
        require(self.device in DEVICES, own, "device", self.device, f"one of {DEVICES}")
        mp = self.mixed_precision
        require(mp in MIXED_PRECISIONS, own, "mixed_precision", mp, f"one of {MIXED_PRECISIONS}")
        geometries = ("none", *COMPRESSORS)
        g = self.geometry
        require(g in geometries, own, "geometry", g, f"one of {list(geometries)}")
        require(
            g == "none" or self.head != "infobot",
            own,
            "geometry",
            g,
            "none with head='infobot' (the compressors feed the action expert)",
        )
        mb = self.mi_beta
        require(is_number(mb) and mb >= 0, own, "mi_beta", mb, "a number >= 0")
        require(self.control in CONTROLS, own, "control", self.control, f"one of {CONTROLS}")


@dataclass(frozen=True)
class TrainingSetup:
    """The prepared data, backbone and feature cache; :meth:`new_model` builds a policy."""

    config: SetupConfig
    store: DemoStore  # the whole dataset
    split: Split  # train: the ``demos`` fitted; val: the held-out demos evaluated
    train_store: DemoStore
    stats: NormStats  # of the training demos
    train: Samples
    val: Samples | None  # None when no validation demo is loaded
    backbone: object
    cache: FeatureCache | None
    device: str

    def new_model(self, seed: int) -> PolicyWithBackbone:
        """A freshly initialised policy (from ``seed``) on the backbone; the backbone joins
        the model when LoRA trains it."""
        from nblib.train import seed_everything

        cfg = self.config
        overrides = {"mi_beta": cfg.mi_beta}
        if self.train.geometry is not None:
            overrides |= {"geometry": cfg.geometry, "geom_dim": int(self.train.geometry.shape[-1])}
        seed_everything(seed)
        policy = build_policy(self.backbone, self.train_store, cfg.horizon, cfg.head, **overrides)
        return PolicyWithBackbone(policy, self.backbone if cfg.lora else None, cfg.features)


def with_control(samples: Samples, control: str) -> Samples:
    """The samples as the negative control sees them: ``zero_inputs`` blanks every frame,
    instruction and proprio, so no model can tell the samples apart (``shuffle_actions``
    acts on the batches instead, see :func:`train_policy`)."""
    if control not in CONTROLS:
        raise ParameterError(f"control must be one of {CONTROLS}, got {control!r}")
    if control == "zero_inputs":
        samples.images = [[np.zeros_like(f) for f in imgs] for imgs in samples.images]
        samples.instructions = [""] * len(samples)
        samples.proprio = np.zeros_like(samples.proprio)
        if samples.geometry is not None:
            samples.geometry = np.zeros_like(samples.geometry)
    return samples


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _check_backbone_folder(cfg: SetupConfig) -> None:
    """A backbone other than ``tiny`` must be an existing folder; the error names the
    study's parameter (``policy`` in the probes notebook), not the set-up's field."""
    if cfg.backbone == "tiny":
        return
    folder = Path(cfg.backbone).expanduser()
    if not folder.is_dir():
        name = cfg.names.get("backbone", "backbone")
        raise ParameterError(
            f"{cfg.owner}.{name}={cfg.backbone!r}: no such folder ({folder.absolute()}); "
            f"expected 'tiny' or a local checkpoint folder. Relative paths are taken from "
            f"the kernel's working folder: the notebook's folder in JupyterLab, the folder "
            f"you run `nblib run` in otherwise"
        )


def prepare_training(cfg: SetupConfig, progress: bool = True) -> TrainingSetup:
    """Data (fixed split, first ``demos`` training demos), backbone and cached features."""
    from nblib.data.manifest import open_dataset
    from nblib.data.splits import split_episodes, subset_train
    from nblib.models.backbone import load_backbone
    from nblib.paths import cache_dir

    _check_backbone_folder(cfg)  # before the data: a mistyped folder fails at once
    full = open_dataset(cfg.manifest, progress=progress)
    split = subset_train(
        split_episodes(full.demos, full.task, cfg.val_fraction, cfg.split_seed),
        cfg.demos,
        cfg.val_demos,
    )
    train_store = full.subset(split.train)
    stats = load_norm_stats(train_store)  # computed once per training split, kept beside the file
    train = load_samples(train_store, cfg.horizon, stats)
    val = load_samples(full.subset(split.val), cfg.horizon, stats) if split.val else None
    if cfg.geometry != "none":  # the frozen geometry encoder's tokens, cached (seed 002)
        from nblib.data.geometry import geometry_tokens

        tokens = geometry_tokens(full, split.train + split.val, progress=progress)
        for samples in (train, val):
            if samples is not None:
                samples.attach_geometry(tokens)
    train = with_control(train, cfg.control)
    val = with_control(val, cfg.control) if val is not None else None

    device = resolve_device(cfg.device)
    # The tiny backbone is always built from seed 0: the experiment seed varies the policy
    # and the batches, not the (cached) features.
    bb = load_backbone(cfg.backbone, device=device, autocast_dtype=AUTOCAST[cfg.mixed_precision])
    if cfg.lora:
        bb.apply_lora(rank=cfg.lora_rank, alpha=2 * cfg.lora_rank)
        bb.unfreeze()  # with LoRA applied only the adapter weights train
    cache = FeatureCache(cache_dir(), bb.identity(), cfg.features) if cfg.cache else None
    if not cfg.lora:  # frozen backbone: compute every sample's features once
        for samples in (train, val):
            if samples is not None:
                precompute_features(bb, samples, cfg.features, cache, progress=progress)
    return TrainingSetup(cfg, full, split, train_store, stats, train, val, bb, cache, device)


def train_policy(
    setup: TrainingSetup,
    model: PolicyWithBackbone,
    train_config: TrainConfig,
    batch_size: int = BATCH_SIZE,
    callback=None,
) -> History:
    """Fit ``model`` on the set-up's training samples with the suite's one training loop
    (batches drawn from the training config's seed; ``shuffle_actions`` re-pairs them)."""
    from nblib.train import train

    batches = make_batches(
        setup.train,
        batch_size,
        train_config.seed,
        shuffle_actions=setup.config.control == "shuffle_actions",
    )
    return train(
        model, batches, make_loss_fn(setup.train, setup.cache), train_config, callback=callback
    )
