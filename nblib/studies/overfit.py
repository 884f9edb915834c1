"""Can this pipeline overfit N demonstrations? (notebook 01, seed 001)

If a policy cannot fit the actions of a handful of training demos, something between the
data and the head is broken (seed 001 found LoRA modules that were never applied); if it
can, poor closed-loop results come from elsewhere. The verdict is judged on action error,
never on the loss: a flow-matching loss measures a velocity error at random interpolation
times and stays high even when the sampled actions are right.

A negative control proves the verdict can fail: ``control="zero_inputs"`` makes every
sample's inputs identical (black frames, zero proprio, empty instruction), so no model can
tell samples apart; ``"shuffle_actions"`` re-pairs actions with random inputs every step.

The notebook's steps: ``prepare(config)`` (data, backbone, cached features, policy),
``fit(exp)``, ``assess(exp)`` (open-loop errors and the verdict), then the figures and
``metrics(exp, result)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nblib.cache import OUTPUTS, FeatureCache
from nblib.data.hdf5 import DemoStore
from nblib.data.normalization import NormStats, load_norm_stats
from nblib.data.splits import Split
from nblib.errors import NblibError, ParameterError, is_int, is_number, require
from nblib.metrics.openloop import open_loop_errors
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
)
from nblib.models.vla import save_policy as save_vla_policy
from nblib.studies import StudyConfig
from nblib.train import DEVICES, MIXED_PRECISIONS, SCHEDULES, History, TrainConfig
from nblib.verdict import Verdict

CONTROLS = ("none", "zero_inputs", "shuffle_actions")

# Mean chunk MAE/std at or below which a head "overfits". Flow matching samples from noise,
# so even a well-fit flow head keeps some spread: its bar is higher than regression's.
DEFAULT_THRESHOLDS = {
    "regression": {"pass": 0.15, "partial": 0.35},
    "flow": {"pass": 0.25, "partial": 0.45},
    "infobot": {"pass": 0.15, "partial": 0.35},  # deterministic, like regression
}

# Autocast dtype of the backbone forward for each mixed_precision setting (GPU runs; on
# the CPU only bf16 is allowed, as in the training loop).
AUTOCAST = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class OverfitConfig(StudyConfig):
    manifest: str = "metaworld_default"  # dataset manifest name or path
    demos: int = 5  # training demos to overfit: the first N of the fixed episode split
    val_demos: int = 5  # validation demos evaluated for comparison (the same for every N)
    horizon: int = 16  # action chunk length H
    head: str = "flow"  # flow (rectified flow matching), regression or infobot
    steps: int = 2000  # optimizer steps
    batch_size: int = 32  # samples per step
    lr: float = 2e-3  # peak learning rate
    schedule: str = "cosine_with_min_lr"  # a schedule of nblib.train.SCHEDULES
    warmup_steps: int = 100  # linear warmup steps
    min_lr_rate: float = 0.1  # LR floor as a fraction of the peak
    grad_clip: float | None = 1.0  # gradient norm clip (None disables)
    backbone: str = "tiny"  # tiny or a local checkpoint directory
    features: str = "last"  # last (last-token state) or tokens (all tokens)
    lora: bool = False  # LoRA on the VLM attention (trains the backbone, bypasses the cache)
    lora_rank: int = 8  # LoRA rank (alpha is twice the rank)
    cache: bool = True  # cache frozen-backbone features on disk
    device: str = "cpu"  # cpu, cuda or auto
    mixed_precision: str = "no"  # no, bf16 or fp16 (fp16: GPU only)
    seed: int = 0  # seed of the initialisation, the batches and the flow noise
    control: str = "none"  # negative control: none, zero_inputs or shuffle_actions
    mi_beta: float = 0.0  # infobot: weight of its I(Z; V) penalty
    geometry: str = "none"  # geometry compressor (seed 002): none, pool, per_layer or qformer
    pass_threshold: float | None = None  # mean chunk MAE/std for PASS (None: the head's)
    partial_threshold: float | None = None  # for PARTIAL (None: the head's, or the PASS bar)

    def __post_init__(self):
        own = "OverfitConfig"
        require(isinstance(self.manifest, str), own, "manifest", self.manifest, "a name or path")
        for name in ("demos", "horizon", "batch_size", "lora_rank"):
            value = getattr(self, name)
            require(is_int(value) and value >= 1, own, name, value, "an int >= 1")
        v = self.val_demos
        require(is_int(v) and v >= 0, own, "val_demos", v, "an int >= 0")
        require(self.head in POLICY_HEADS, own, "head", self.head, f"one of {POLICY_HEADS}")
        require(self.features in OUTPUTS, own, "features", self.features, f"one of {OUTPUTS}")
        require(self.control in CONTROLS, own, "control", self.control, f"one of {CONTROLS}")
        require(isinstance(self.backbone, str), own, "backbone", self.backbone, "tiny or a path")
        for name in ("lora", "cache"):
            value = getattr(self, name)
            require(isinstance(value, bool), own, name, value, "True or False")
        require(self.device in DEVICES, own, "device", self.device, f"one of {DEVICES}")
        mp = self.mixed_precision
        require(mp in MIXED_PRECISIONS, own, "mixed_precision", mp, f"one of {MIXED_PRECISIONS}")
        require(self.schedule in SCHEDULES, own, "schedule", self.schedule, f"one of {SCHEDULES}")
        mb = self.mi_beta
        require(is_number(mb) and mb >= 0, own, "mi_beta", mb, "a number >= 0")
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
        for name in ("pass_threshold", "partial_threshold"):
            value = getattr(self, name)
            require(
                value is None or (is_number(value) and value > 0), own, name, value, "None or > 0"
            )
        limits = self.thresholds()
        require(
            limits["pass"] <= limits["partial"],
            own,
            "pass_threshold",
            limits["pass"],
            f"<= the PARTIAL bar {limits['partial']}",
        )
        self.train_config()  # the training settings are checked now, not after the set-up

    def thresholds(self) -> dict[str, float]:
        """The PASS and PARTIAL bars: the head's defaults, overridden by the parameters; a
        raised PASS bar lifts the default PARTIAL bar with it."""
        limits = dict(DEFAULT_THRESHOLDS[self.head])
        if self.pass_threshold is not None:
            limits["pass"] = self.pass_threshold
        if self.partial_threshold is not None:
            limits["partial"] = self.partial_threshold
        else:
            limits["partial"] = max(limits["partial"], limits["pass"])
        return limits

    def train_config(self, progress: bool = True) -> TrainConfig:
        return TrainConfig(
            steps=self.steps,
            lr=self.lr,
            schedule=self.schedule,
            warmup_steps=self.warmup_steps,
            min_lr_rate=self.min_lr_rate,
            grad_clip=self.grad_clip,
            seed=self.seed,
            device=self.device,
            mixed_precision=self.mixed_precision,
            progress=progress,
            desc=f"overfit ({self.head})",
        )


def with_control(samples: Samples, control: str) -> Samples:
    """The samples as the negative control sees them: ``zero_inputs`` blanks every frame,
    instruction and proprio, so no model can tell the samples apart (``shuffle_actions``
    acts on the batches instead, see :func:`fit`)."""
    if control not in CONTROLS:
        raise ParameterError(f"control must be one of {CONTROLS}, got {control!r}")
    if control == "zero_inputs":
        samples.images = [[np.zeros_like(f) for f in imgs] for imgs in samples.images]
        samples.instructions = [""] * len(samples)
        samples.proprio = np.zeros_like(samples.proprio)
        if samples.geometry is not None:
            samples.geometry = np.zeros_like(samples.geometry)
    return samples


def evaluate(
    model, samples: Samples, stats: NormStats, seed: int = 0, cache=None
) -> tuple[dict, np.ndarray]:
    """Open-loop errors in action units (predictions un-normalised) and the predictions."""
    pred = stats.actions.unnormalize(
        predict_all(model, samples, seed=seed, cache=cache), "mean_std"
    )
    true = stats.actions.unnormalize(samples.actions, "mean_std")
    return open_loop_errors(pred, true, samples.mask, np.array(stats.actions.std)), pred


@dataclass
class Experiment:
    """Everything an overfit run needs and produces; built by :func:`prepare`."""

    config: OverfitConfig
    store: DemoStore
    split: Split
    stats: NormStats
    train: Samples
    val: Samples
    backbone: object
    model: PolicyWithBackbone
    cache: FeatureCache | None
    history: History | None = None

    @property
    def action_names(self) -> list[str]:
        return self.store.mapping.action_labels()


@dataclass
class Assessment:
    """Open-loop errors on the training (and validation) demos, the predictions and the
    verdict; built by :func:`assess`."""

    train: dict
    val: dict | None
    train_pred: np.ndarray
    val_pred: np.ndarray | None
    verdict: Verdict


def prepare(config: OverfitConfig, progress: bool = True) -> Experiment:
    """Data (fixed split, first ``demos`` training demos), backbone, features and policy."""
    from nblib.data.manifest import open_dataset
    from nblib.data.splits import split_episodes, subset_train
    from nblib.models.backbone import load_backbone
    from nblib.paths import cache_dir
    from nblib.train import seed_everything

    full = open_dataset(config.manifest, progress=progress)
    split = subset_train(
        split_episodes(full.demos, full.task, 0.2, config.seed), config.demos, config.val_demos
    )
    train_store = full.subset(split.train)
    stats = load_norm_stats(train_store)  # computed once per training split, kept beside the file
    train = load_samples(train_store, config.horizon, stats)
    val = load_samples(full.subset(split.val), config.horizon, stats)
    overrides = {"mi_beta": config.mi_beta}
    if config.geometry != "none":  # the frozen geometry encoder's tokens, cached (seed 002)
        from nblib.data.geometry import geometry_tokens

        tokens = geometry_tokens(full, split.train + split.val, progress=progress)
        for samples in (train, val):
            samples.attach_geometry(tokens)
        overrides |= {"geometry": config.geometry, "geom_dim": int(train.geometry.shape[-1])}
    train, val = with_control(train, config.control), with_control(val, config.control)

    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    # The tiny backbone is always built from seed 0: the experiment seed varies the policy
    # and the batches, not the (cached) features.
    bb = load_backbone(
        config.backbone, device=device, autocast_dtype=AUTOCAST[config.mixed_precision]
    )
    if config.lora:
        bb.apply_lora(rank=config.lora_rank, alpha=2 * config.lora_rank)
        bb.unfreeze()  # with LoRA applied only the adapter weights train
    feature_cache = (
        FeatureCache(cache_dir(), bb.identity(), config.features) if config.cache else None
    )
    if not config.lora:  # frozen backbone: compute every sample's features once
        precompute_features(bb, train, config.features, feature_cache, progress=progress)
        precompute_features(bb, val, config.features, feature_cache, progress=progress)
    seed_everything(config.seed)
    policy = build_policy(bb, train_store, config.horizon, config.head, **overrides)
    model = PolicyWithBackbone(policy, bb if config.lora else None, config.features)
    return Experiment(config, full, split, stats, train, val, bb, model, feature_cache)


def fit(exp: Experiment, progress: bool = True) -> History:
    """Train ``exp.model`` with the suite's one training loop; returns the history."""
    from nblib.train import train

    cfg = exp.config
    batches = make_batches(
        exp.train, cfg.batch_size, cfg.seed, shuffle_actions=cfg.control == "shuffle_actions"
    )
    exp.history = train(
        exp.model, batches, make_loss_fn(exp.train, exp.cache), cfg.train_config(progress)
    )
    return exp.history


def assess(exp: Experiment) -> Assessment:
    """Open-loop errors on train and val (flow noise drawn from the config's seed), the
    verdict and the predictions (for the figures)."""
    seed = exp.config.seed
    train_errors, train_pred = evaluate(exp.model, exp.train, exp.stats, seed=seed, cache=exp.cache)
    val_errors, val_pred = (
        evaluate(exp.model, exp.val, exp.stats, seed=seed, cache=exp.cache)
        if len(exp.val)
        else (None, None)
    )
    return Assessment(
        train_errors, val_errors, train_pred, val_pred, verdict(train_errors, exp.config)
    )


def save_policy(exp: Experiment, run_dir: str | Path) -> Path:
    """Keep the trained policy in ``run_dir/policy/`` (see :func:`nblib.models.vla.save_policy`):
    notebook 02 probes it from there, and loading it back gives identical predictions."""
    cfg = exp.config
    spec = (
        cfg.backbone if cfg.backbone == "tiny" else str(Path(cfg.backbone).expanduser().resolve())
    )
    meta = {
        "notebook": "01_overfit_diagnosis",
        "manifest": cfg.manifest,
        "train_demos": exp.split.train,
        "val_demos": exp.split.val,
        "steps": len(exp.history) if exp.history is not None else 0,
        "head": cfg.head,
        "geometry": cfg.geometry,
        "control": cfg.control,
        "seed": cfg.seed,
        # what closed-loop evaluation must render for it (nblib.eval.policies)
        "cameras": list(exp.store.cameras),
        "image_size": int(exp.train.images[0][0].shape[0]),
    }
    generator = _generator_settings(cfg.manifest)
    if generator and "color_bits" in generator:
        meta["color_bits"] = int(generator["color_bits"])
    return save_vla_policy(
        Path(run_dir) / "policy", exp.model, exp.backbone, spec, exp.stats, cfg.features, meta
    )


def _generator_settings(manifest: str) -> dict | None:
    from nblib.data.manifest import load_manifest

    try:
        return load_manifest(manifest).generator
    except NblibError:  # a path to a plain file, not a manifest: nothing recorded
        return None


def verdict(train_errors: dict, config: OverfitConfig) -> Verdict:
    """PASS / PARTIAL / FAIL from the mean chunk MAE/std on the training demos against the
    config's bars (:meth:`OverfitConfig.thresholds`). The loss is deliberately not used."""
    limits = config.thresholds()
    rel = train_errors["relative_mean"]
    worst = int(np.argmax(train_errors["relative_chunk"]))
    numbers = {
        "train_relative_mean": rel,
        "pass_threshold": limits["pass"],
        "partial_threshold": limits["partial"],
    }
    detail = (
        f"mean chunk MAE/std on the training demos = {rel:.3f} "
        f"(worst dim {worst}: {train_errors['relative_chunk'][worst]:.3f})"
    )
    if rel <= limits["pass"]:
        why = f"{detail} <= {limits['pass']}: the pipeline can fit these demos"
        return Verdict("PASS", [why], numbers)
    if rel <= limits["partial"]:
        why = (
            f"{detail} is between {limits['pass']} and {limits['partial']}: "
            "train longer or check the inputs"
        )
        return Verdict("PARTIAL", [why], numbers)
    why = (
        f"{detail} > {limits['partial']}: the pipeline cannot fit these demos; check that "
        "inputs differ between samples and reach the head"
    )
    return Verdict("FAIL", [why], numbers)


def metrics(exp: Experiment, result: Assessment) -> dict:
    """What metrics.json records beside the verdict's numbers."""
    history = exp.history
    return {
        "head": exp.config.head,
        "control": exp.config.control,
        "val_relative_mean": result.val["relative_mean"] if result.val else None,
        "train_first_step_mae": result.train["first_step_mae_mean"],
        "train_chunk_mae": result.train["chunk_mae_mean"],
        "final_loss": history.final("loss") if history is not None and len(history) else None,
        "train_samples": len(exp.train),
        "steps": exp.config.steps,
        "seconds_per_step": float(np.median(history.column("seconds"))) if history else None,
        "cache": exp.cache.stats() if exp.cache is not None else None,
    }


def describe(exp: Experiment) -> str:
    """Which demos are fitted, what the model is, and what trains (frozen parameters are
    counted apart)."""
    cfg = exp.config
    lines = [
        f"train demos {exp.split.train} -> {len(exp.train)} samples; "
        f"val demos {exp.split.val} -> {len(exp.val)} samples",
        f"backbone {cfg.backbone!r}: hidden size {exp.backbone.hidden_size}, "
        f"LoRA {'on' if cfg.lora else 'off'}; features {cfg.features!r}; head {cfg.head!r}; "
        f"control {cfg.control!r}"
        + (f"; geometry {cfg.geometry!r}" if cfg.geometry != "none" else ""),
        pd.DataFrame(parameter_rows(exp)).to_string(index=False),
    ]
    return "\n".join(lines)


def parameter_rows(exp: Experiment) -> list[dict]:
    from nblib.models.policy import parameter_table

    policy = exp.model.policy
    return parameter_table(
        {
            "backbone (VLM)": exp.backbone,
            "projector": policy.projector,
            "proprio encoder": policy.proprio,
            "action expert": policy.expert,
            f"geometry compressor ({policy.config.geometry})": policy.geometry,
            f"head ({policy.config.head})": policy.head,
        }
    )


def error_table(exp: Experiment, result: Assessment) -> pd.DataFrame:
    """Per action dimension: action std, first-step and chunk MAE and MAE/std on the
    training demos (and MAE/std on the validation demos)."""
    table = pd.DataFrame(
        {
            "action std": np.array(exp.stats.actions.std),
            "train first-step MAE": result.train["first_step_mae"],
            "train chunk MAE": result.train["chunk_mae"],
            "train MAE/std": result.train["relative_chunk"],
        },
        index=exp.action_names,
    )
    if result.val:
        table["val MAE/std"] = result.val["relative_chunk"]
    return table


# ----------------------------------------------------------------------------- figures


def plot_training(exp: Experiment):
    from nblib.plots import plot_training_curves

    return plot_training_curves(exp.history, label=exp.config.head)


def plot_dim_errors(exp: Experiment, result: Assessment):
    """Per-dimension chunk MAE on train (and val) next to the action std (seed 001's table)."""
    from nblib.plots import color_for, new_figure

    names = exp.action_names
    x = np.arange(len(names))
    fig, ax = new_figure(width=3.5, height=2.2)
    bars = [
        ("action std", np.asarray(exp.stats.actions.std), "#bbbbbb"),
        ("train MAE", np.asarray(result.train["chunk_mae"]), color_for("train")),
    ]
    if result.val:
        bars.append(("val MAE", np.asarray(result.val["chunk_mae"]), color_for("val")))
    width = 0.8 / len(bars)
    for i, (label, values, colour) in enumerate(bars):
        ax.bar(x + (i - (len(bars) - 1) / 2) * width, values, width, label=label, color=colour)
    ax.set_xticks(x, names)
    ax.set_ylabel("action units")
    ax.legend()
    return fig, ax


def example_indices(exp: Experiment, n: int) -> list[int]:
    """``n`` random training samples (reproducible for the config's seed)."""
    from nblib.data.splits import sample_indices

    return sample_indices(len(exp.train), n, exp.config.seed)


def plot_predicted_chunks(exp: Experiment, result: Assessment, indices: list[int]):
    """Predicted (dashed) vs true (solid) chunks of the given training samples."""
    true = exp.stats.actions.unnormalize(exp.train.actions, "mean_std")
    labels = [f"{d} t={t}" for d, t in zip(exp.train.demo, exp.train.t, strict=True)]
    return plot_chunks(result.train_pred, true, exp.train.mask, indices, labels, exp.action_names)


def plot_chunks(
    pred: np.ndarray,
    true: np.ndarray,
    mask: np.ndarray,
    indices: list[int],
    labels: list[str],
    names: list[str],
):
    """Predicted (dashed) vs true (solid) action chunks, one row per sample, one column per
    dim. pred/true (N, H, A) in action units, mask (N, H): padded steps are not drawn."""
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


def chunk_browser(exp: Experiment, result: Assessment):
    """ipywidgets slider over the training samples showing predicted against true chunks
    (``interactive=True`` in JupyterLab)."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    def show(i=0):
        plot_predicted_chunks(exp, result, [i])
        plt.show()

    return w.interactive(show, i=w.IntSlider(min=0, max=len(exp.train) - 1, description="sample"))
