"""The one experiment set-up of every study that trains a policy (notebooks 01, 02, 03).

From a :class:`SetupConfig` of plain values: open the dataset, split it per episode
(stratified by task, before any subsetting), compute the normalisation statistics of the
training demos, load the training and validation samples, then the policy source: nblib's
own VLA (``policy="nblib"``: the backbone, tiny offline Qwen2.5-VL or a local checkpoint,
with its frozen features cached) or a plug-in (``policy`` a spec, :mod:`nblib.plugins`).
:class:`TrainingSetup` builds, trains (:func:`train_policy`, the suite's one training
loop), queries and saves either the same way; this module is the one place that tells
them apart.

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
    predict_all,
    save_policy,
)
from nblib.plugins.runtime import PluginSource
from nblib.train import History, TrainConfig

HORIZON = 16  # action chunk length H
BATCH_SIZE = 32  # samples per optimizer step
LR = 2e-3  # peak learning rate of the policy (its backbone frozen)
CONTROLS = ("none", "zero_inputs", "shuffle_actions")
NBLIB = "nblib"  # the policy value naming the suite's own VLA
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
    # the VLM's last K language layers train too (0: frozen; the features are then computed
    # every step, not cached, as with LoRA)
    unfreeze_layers: int = 0
    cache: bool = True  # frozen-backbone features cached on disk
    device: str = "cpu"  # cpu, cuda or auto
    mixed_precision: str = "no"  # no, bf16 or fp16
    geometry: str = "none"  # geometry compressor (seed 002) or none
    mi_beta: float = 0.0  # infobot head: weight of its I(Z; V) penalty
    control: str = "none"  # negative control: none, zero_inputs or shuffle_actions
    policy: str = NBLIB  # nblib (the suite's VLA on backbone) or a plug-in spec
    # passed to a plug-in's factory; left out of the hash (a dict has none): sweeps key
    # their prepared set-ups by config
    policy_kwargs: dict = field(default_factory=dict, hash=False)
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
        k = self.unfreeze_layers
        require(is_int(k) and k >= 0, own, "unfreeze_layers", k, "an int >= 0 (0: frozen VLM)")
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
        from nblib.plugins import is_policy_spec

        p = self.policy
        require(
            p == NBLIB or is_policy_spec(p),
            own,
            "policy",
            p,
            f"{NBLIB!r} or a plug-in spec ('path/to/file.py:factory', 'package.module:factory' "
            "or an installed nblib.policies entry point)",
        )
        pk = self.policy_kwargs
        require(isinstance(pk, dict), own, "policy_kwargs", pk, "a dict")
        if self.plugin:  # nblib's own model options mean nothing to a plug-in
            for name, default in (("lora", False), ("geometry", "none"), ("unfreeze_layers", 0)):
                value = getattr(self, name)
                require(
                    value == default,
                    own,
                    name,
                    value,
                    f"{default!r} with a plug-in policy (its own model decides)",
                )

    @property
    def plugin(self) -> bool:
        return self.policy != NBLIB

    @property
    def trains_backbone(self) -> bool:
        """LoRA or unfrozen layers: the backbone joins the trained model, no feature cache."""
        return self.lora or self.unfreeze_layers > 0


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
    backbone: object  # None for a plug-in
    cache: FeatureCache | None
    device: str
    plugin: PluginSource | None = None  # the plug-in policy source, None for nblib's VLA

    def new_model(self, seed: int) -> PolicyWithBackbone | torch.nn.Module:
        """A freshly initialised policy (from ``seed``): nblib's on the backbone (which
        joins the model when LoRA trains it), or the plug-in's factory's."""
        from nblib.train import seed_everything

        if self.plugin is not None:
            return self.plugin.new_model(seed).to(self.device)
        cfg = self.config
        overrides = {"mi_beta": cfg.mi_beta}
        if self.train.geometry is not None:
            overrides |= {"geometry": cfg.geometry, "geom_dim": int(self.train.geometry.shape[-1])}
        seed_everything(seed)
        policy = build_policy(self.backbone, self.train_store, cfg.horizon, cfg.head, **overrides)
        backbone = self.backbone if cfg.trains_backbone else None
        return PolicyWithBackbone(policy, backbone, cfg.features)

    def check(self, model) -> None:
        """A plug-in answers on two training samples before any long work: a chunk of the
        right shape, finite, and a finite loss with a gradient (the contract's errors name
        the spec). nblib's own VLA needs no check."""
        if self.plugin is not None:
            self.plugin.check(model, self.train, self.stats)

    def loss_fn(self):
        """The training loop's ``loss_fn(model, batch)`` on the training samples."""
        if self.plugin is not None:
            return self.plugin.loss_fn(self.train, self.stats)
        return make_loss_fn(self.train, self.cache)

    def predict(self, model, samples: Samples, seed: int = 0) -> np.ndarray:
        """Every sample's predicted chunk (N, H, A) in action units (a sampling policy's
        noise drawn from ``seed``)."""
        if self.plugin is not None:
            return self.plugin.predict(model, samples, self.stats, seed=seed)
        normalised = predict_all(model, samples, seed=seed, cache=self.cache)
        return self.stats.actions.unnormalize(normalised, "mean_std")

    def parts(self, model) -> dict:
        """The model's parts by name, for a parameter table: nblib's pipeline stages, or a
        plug-in's top-level children."""
        if self.plugin is not None:
            return dict(model.named_children()) or {type(model).__name__: model}
        policy = model.policy
        return {
            "backbone (VLM)": self.backbone,
            "projector": policy.projector,
            "proprio encoder": policy.proprio,
            "action expert": policy.expert,
            f"geometry compressor ({policy.config.geometry})": policy.geometry,
            f"head ({policy.config.head})": policy.head,
        }

    def save(self, model, folder: str | Path, meta: dict) -> Path:
        """Keep the trained policy in ``folder`` so that it loads back wherever a
        notebook-01 run works (notebook 02, ``nblib eval``)."""
        if self.plugin is not None:
            return self.plugin.save(folder, model, meta, self.stats)
        cfg = self.config
        spec = (
            cfg.backbone
            if cfg.backbone == "tiny"
            else str(Path(cfg.backbone).expanduser().resolve())
        )
        return save_policy(folder, model, self.backbone, spec, self.stats, cfg.features, meta)


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
    from nblib.plugins.spec import load_factory

    if cfg.plugin:
        load_factory(cfg.policy)  # before the data: a mistyped spec fails at once
    else:
        _check_backbone_folder(cfg)  # likewise a mistyped folder
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
    if cfg.plugin:  # the plug-in reads frames, state and instructions itself: no backbone
        from nblib.plugins.contract import policy_info

        info = policy_info(train_store, cfg.horizon, stats, train.images[0][0].shape[:2])
        source = PluginSource.create(cfg.policy, cfg.policy_kwargs, info)
        return TrainingSetup(
            cfg, full, split, train_store, stats, train, val, None, None, device, source
        )
    # The tiny backbone is always built from seed 0: the experiment seed varies the policy
    # and the batches, not the (cached) features.
    bb = load_backbone(cfg.backbone, device=device, autocast_dtype=AUTOCAST[cfg.mixed_precision])
    if cfg.lora:
        bb.apply_lora(rank=cfg.lora_rank, alpha=2 * cfg.lora_rank)
    if cfg.trains_backbone:  # with LoRA applied only the adapter weights train
        bb.unfreeze(last_layers=cfg.unfreeze_layers or None)
    # a training backbone's features change every step: no cache (one keyed by the
    # initial weights would hand stale features to whoever predicts with it later)
    frozen = not cfg.trains_backbone
    cache = FeatureCache(cache_dir(), bb.identity(), cfg.features) if cfg.cache and frozen else None
    if frozen:  # compute every sample's features once
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
    return train(model, batches, setup.loss_fn(), train_config, callback=callback)
