"""Can this pipeline overfit N demonstrations? (notebook 01, seed 001)

If a policy cannot fit the actions of a handful of training demos, something between the
data and the head is broken (seed 001 found LoRA modules that were never applied); if it
can, poor closed-loop results come from elsewhere. The verdict is judged on action error,
never on the loss: a flow-matching loss measures a velocity error at random interpolation
times and stays high even when the sampled actions are right.

A negative control proves the verdict can fail: ``control="zero_inputs"`` makes every
sample's inputs identical (black frames, zero proprio, empty instruction), so no model can
tell samples apart; ``"shuffle_actions"`` re-pairs actions with random inputs every step.

The notebook's steps (the engine contract of :mod:`nblib.studies`): ``prepare(config)``
(data, backbone, cached features, policy: :mod:`nblib.studies.setup`), ``fit(study)`` (the
history), ``assess(study)`` (open-loop errors on train and val, each with a bootstrap
interval), the figures, then ``evidence`` -> ``verdict(evidence, config)`` -> ``metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nblib.cache import FeatureCache, encode_batch
from nblib.data.hdf5 import DemoStore
from nblib.data.normalization import NormStats
from nblib.data.splits import Split
from nblib.errors import is_int, is_number, require
from nblib.lr_schedule import SCHEDULES
from nblib.memory import MemoryTracker
from nblib.metrics.estimates import bootstrap_ratio
from nblib.metrics.openloop import open_loop_errors, relative_error_terms
from nblib.models.vla import PolicyWithBackbone, Samples
from nblib.studies import Evidence, Study, StudyConfig, long_runs
from nblib.studies.setup import (
    BATCH_SIZE,
    HORIZON,
    LR,
    SetupConfig,
    TrainingSetup,
    prepare_training,
    resolve_device,
    train_policy,
)
from nblib.train import History, TrainConfig
from nblib.verdict import Estimate, Verdict, straddle_note

# Mean chunk MAE/std at or below which a head "overfits". Flow matching samples from noise,
# so even a well-fit flow head keeps some spread: its bar is higher than regression's.
DEFAULT_THRESHOLDS = {
    "regression": {"pass": 0.15, "partial": 0.35},
    "flow": {"pass": 0.25, "partial": 0.45},
    "infobot": {"pass": 0.15, "partial": 0.35},  # deterministic, like regression
}
# Evaluations of the action error during training (train and val, full sets): enough
# points for a learning curve, few enough to cost a small share of the run (measured in
# metrics' ``eval_seconds``).
EVAL_POINTS = 10


@dataclass
class OverfitConfig(StudyConfig):
    manifest: str = "metaworld_default"  # dataset manifest name or path
    demos: int = 5  # training demos to overfit: the first N of the fixed episode split
    val_demos: int = 5  # validation demos evaluated for comparison (the same for every N)
    horizon: int = HORIZON  # action chunk length H
    head: str = "flow"  # flow (rectified flow matching), regression or infobot
    steps: int = 2000  # optimizer steps
    batch_size: int = BATCH_SIZE  # samples per step
    lr: float = LR  # peak learning rate
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
    seed: int = 0  # seed of the split, the initialisation, the batches and the flow noise
    control: str = "none"  # negative control: none, zero_inputs or shuffle_actions
    mi_beta: float = 0.0  # infobot: weight of its I(Z; V) penalty
    geometry: str = "none"  # geometry compressor (seed 002): none, pool, per_layer or qformer
    pass_threshold: float | None = None  # mean chunk MAE/std for PASS (None: the head's)
    partial_threshold: float | None = None  # for PARTIAL (None: the head's, or the PASS bar)
    policy: str = "nblib"  # nblib (the suite's VLA on backbone) or a plug-in spec file.py:factory
    policy_kwargs: dict = field(default_factory=dict)  # keyword arguments of the plug-in's factory
    lr_groups: dict = field(default_factory=dict)  # parameter-name prefix -> peak lr
    cycles: int = 1  # cosine_with_restarts: cosine cycles over the run (warm restarts)
    unfreeze_layers: int = 0  # train the VLM's last K layers too (0: frozen, features cached)
    checkpoint_every: int = 0  # checkpoint into OUT/checkpoints every N steps (0: off)
    resume: bool = True  # continue from the newest checkpoint in OUT/checkpoints
    grad_flow_every: int = 20  # log each module's gradient norm every N steps (0: off)

    def __post_init__(self):
        own = "OverfitConfig"
        self.setup_config()  # data, model and control settings, checked by the set-up
        long_runs.check_params(self, own)
        b = self.batch_size
        require(is_int(b) and b >= 1, own, "batch_size", b, "an int >= 1")
        require(self.schedule in SCHEDULES, own, "schedule", self.schedule, f"one of {SCHEDULES}")
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

    def setup_config(self) -> SetupConfig:
        return SetupConfig(
            manifest=self.manifest,
            demos=self.demos,
            val_demos=self.val_demos,
            horizon=self.horizon,
            head=self.head,
            split_seed=self.seed,
            backbone=self.backbone,
            features=self.features,
            lora=self.lora,
            lora_rank=self.lora_rank,
            unfreeze_layers=self.unfreeze_layers,
            cache=self.cache,
            device=self.device,
            mixed_precision=self.mixed_precision,
            geometry=self.geometry,
            mi_beta=self.mi_beta,
            control=self.control,
            policy=self.policy,
            policy_kwargs=self.policy_kwargs,
            owner="OverfitConfig",
        )

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

    def train_config(self, progress: bool = True, run_dir: str | Path | None = None) -> TrainConfig:
        """The training loop's settings; with ``run_dir``, checkpoints go to
        ``run_dir/checkpoints`` (when ``checkpoint_every`` > 0)."""
        return TrainConfig(
            steps=self.steps,
            lr=self.lr,
            lr_groups=self.lr_groups,
            schedule=self.schedule,
            warmup_steps=self.warmup_steps,
            min_lr_rate=self.min_lr_rate,
            cycles=self.cycles,
            grad_clip=self.grad_clip,
            seed=self.seed,
            device=self.device,
            mixed_precision=self.mixed_precision,
            grad_flow_every=self.grad_flow_every,
            progress=progress,
            desc=f"overfit ({self.head})",
            **long_runs.checkpoint_settings(self, run_dir),
        )


@dataclass(frozen=True)
class OpenLoop:
    """Open-loop errors in action units (see :func:`nblib.metrics.openloop.open_loop_errors`)
    and the predictions (N, H, A) of one set of samples."""

    errors: dict
    pred: np.ndarray
    relative: Estimate  # mean chunk MAE/std, with its bootstrap interval over samples


@dataclass(frozen=True)
class Assessment:
    """Open-loop errors on the training demos and on the validation demos (None without)."""

    train: OpenLoop
    val: OpenLoop | None


@dataclass(frozen=True)
class OverfitStudy(Study):
    """The prepared data and backbone (:class:`nblib.studies.setup.TrainingSetup`) and the
    policy :func:`fit` trains."""

    setup: TrainingSetup
    model: PolicyWithBackbone | torch.nn.Module  # nblib's VLA or a plug-in
    memory: MemoryTracker  # memory by phase: set-up, training, evaluation

    @property
    def store(self) -> DemoStore:
        return self.setup.store

    @property
    def split(self) -> Split:
        return self.setup.split

    @property
    def stats(self) -> NormStats:
        return self.setup.stats

    @property
    def train(self) -> Samples:
        return self.setup.train

    @property
    def val(self) -> Samples | None:
        return self.setup.val

    @property
    def backbone(self):
        return self.setup.backbone

    @property
    def cache(self) -> FeatureCache | None:
        return self.setup.cache

    @property
    def action_names(self) -> list[str]:
        return self.store.mapping.action_labels()


@dataclass(frozen=True)
class OverfitEvidence(Evidence):
    """What the verdict and metrics.json are made of."""

    head: str
    control: str
    assessment: Assessment
    history: History | None
    steps: int
    cache: dict | None
    action_names: tuple[str, ...] = ()  # the keys of the metrics' per_dimension
    cost: long_runs.Cost | None = None  # throughput, wall-time projection, memory


def prepare(config: OverfitConfig, progress: bool = True) -> OverfitStudy:
    """Data (fixed split, first ``demos`` training demos), backbone, features and policy."""
    memory = MemoryTracker(resolve_device(config.device))
    with memory.phase("set-up"):
        setup = prepare_training(config.setup_config(), progress=progress)
        model = setup.new_model(config.seed)
        setup.check(model)  # a plug-in answers correctly before the training starts
    return OverfitStudy(config, setup, model, memory)


def fit(study: OverfitStudy, run_dir: str | Path | None = None, progress: bool = True) -> History:
    """Train the study's policy with the suite's one training loop; returns the history.
    :data:`EVAL_POINTS` times during training (and after the last step) the mean chunk
    MAE/std on the training and the validation samples is measured as :func:`assess`
    does and recorded in that step's record (``eval_train_relative``,
    ``eval_val_relative``, ``eval_seconds``): the learning curve of the verdict's own
    quantity. The evaluation leaves the training bit-identical (RNG states and the
    train/eval mode are restored).

    With ``run_dir`` (the notebook's output folder) and ``checkpoint_every`` > 0, the run
    checkpoints into ``run_dir/checkpoints`` and, with ``resume``, continues from the
    newest checkpoint there (:mod:`nblib.studies.long_runs`)."""
    cfg = study.config
    every = eval_every(cfg.steps)

    def periodic_eval(step: int, record: dict, model) -> None:
        if (step + 1) % every == 0 or step == 0 or step + 1 == cfg.steps:
            record.update(_evaluate_quietly(study, model))

    train_config = cfg.train_config(progress, run_dir)
    with study.memory.phase("training"):
        return train_policy(study.setup, study.model, train_config, cfg.batch_size, periodic_eval)


def eval_every(steps: int) -> int:
    """Steps between two evaluations during training (:data:`EVAL_POINTS` in a run)."""
    return max(1, steps // EVAL_POINTS)


def _evaluate_quietly(study: OverfitStudy, model) -> dict:
    """The train (and val) mean chunk MAE/std of ``model`` now, with every RNG state and
    the train/eval mode restored, so the training does not see it happened."""
    import random
    import time

    t0 = time.perf_counter()
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    was_training = model.training
    try:
        seed, setup = study.config.seed, study.setup
        out = {"eval_train_relative": _relative_mean(setup, model, study.train, seed)}
        if study.val is not None:
            out["eval_val_relative"] = _relative_mean(setup, model, study.val, seed)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        model.train(was_training)
    out["eval_seconds"] = time.perf_counter() - t0
    return out


def _relative_mean(setup: TrainingSetup, model, samples: Samples, seed: int) -> float:
    """The mean chunk MAE/std of ``model`` on ``samples`` (no bootstrap: cheap)."""
    pred = setup.predict(model, samples, seed=seed)
    true = setup.stats.actions.unnormalize(samples.actions, "mean_std")
    std = np.array(setup.stats.actions.std)
    return open_loop_errors(pred, true, samples.mask, std)["relative_mean"]


def learning_curve(history: History | None) -> dict | None:
    """The action errors measured during training (:func:`fit`): optimizer steps done
    and the train (and val) mean chunk MAE/std there; None without evaluations."""
    rows = [r for r in (history or []) if "eval_train_relative" in r]
    if not rows:
        return None
    curve = {
        "step": [int(r["step"]) + 1 for r in rows],  # updates done when it was measured
        "train_relative_mean": [float(r["eval_train_relative"]) for r in rows],
    }
    if all("eval_val_relative" in r for r in rows):
        curve["val_relative_mean"] = [float(r["eval_val_relative"]) for r in rows]
    curve["seconds"] = float(sum(r["eval_seconds"] for r in rows))
    return curve


def evaluate(setup: TrainingSetup, model, samples: Samples, seed: int = 0) -> OpenLoop:
    """:func:`open_loop` of ``model``'s predictions (nblib's VLA or a plug-in, through the
    set-up) on ``samples``."""
    return open_loop(setup.predict(model, samples, seed=seed), samples, setup.stats, seed)


def open_loop(pred: np.ndarray, samples: Samples, stats: NormStats, seed: int = 0) -> OpenLoop:
    """Open-loop errors of predicted chunks ``pred`` (N, H, A, action units) against the
    samples' own; the mean chunk MAE/std with a bootstrap interval over the samples."""
    true = stats.actions.unnormalize(samples.actions, "mean_std")
    std = np.array(stats.actions.std)
    num, den = relative_error_terms(pred, true, samples.mask, std)
    relative = bootstrap_ratio(num, den, "samples", seed=seed)
    return OpenLoop(open_loop_errors(pred, true, samples.mask, std), pred, relative)


def assess(study: OverfitStudy) -> Assessment:
    """Open-loop errors on the training and the validation demos (flow noise drawn from
    the config's seed)."""
    seed, setup = study.config.seed, study.setup
    with study.memory.phase("evaluation"):
        train = evaluate(setup, study.model, study.train, seed=seed)
        val = evaluate(setup, study.model, study.val, seed=seed) if study.val is not None else None
    return Assessment(train, val)


def cost(study: OverfitStudy, history: History) -> long_runs.Cost:
    """Throughput, memory by phase and the wall time projected to longer runs: with the
    feature cache (the measured steps) and without it (plus one backbone forward over a
    batch per step, timed here; only nblib's VLA on a frozen, cached backbone has one)."""
    backbone = None
    if study.cache is not None and not study.setup.config.trains_backbone:
        samples, size = study.train, min(study.config.batch_size, len(study.train))
        images, texts = samples.images[:size], samples.instructions[:size]
        features = study.config.features

        @torch.no_grad()
        def forward():
            encode_batch(study.backbone, images, texts, features, cache=None)

        backbone = long_runs.time_backbone(forward)
    return long_runs.cost(history, study.memory, backbone)


def evidence(
    study: OverfitStudy,
    history: History | None,
    assessment: Assessment,
    run_cost: long_runs.Cost | None = None,
) -> OverfitEvidence:
    cfg = study.config
    cache = study.cache.stats() if study.cache is not None else None
    names = tuple(study.action_names)
    return OverfitEvidence(
        cfg.head, cfg.control, assessment, history, cfg.steps, cache, names, run_cost
    )


def judge(relative: Estimate, limits: dict[str, float]) -> str:
    """PASS when the whole interval of the mean chunk MAE/std is at or below the PASS bar,
    FAIL when it is all above the PARTIAL bar, PARTIAL otherwise (the verdict's rule, also
    what the figures say)."""
    if relative.high <= limits["pass"]:
        return "PASS"
    if relative.low > limits["partial"]:
        return "FAIL"
    return "PARTIAL"


def verdict(evidence: OverfitEvidence, config: OverfitConfig) -> Verdict:
    """PASS / PARTIAL / FAIL from the mean chunk MAE/std on the training demos against the
    config's bars (:meth:`OverfitConfig.thresholds`), judged on its bootstrap interval over
    the training samples (:func:`judge`): PASS when the whole interval is at or below the
    PASS bar, FAIL when it is above the PARTIAL bar, PARTIAL otherwise (an interval
    straddling a bar is said). The loss is deliberately not used."""
    limits = config.thresholds()
    rel = evidence.assessment.train.relative
    per_dim = evidence.assessment.train.errors["relative_chunk"]
    worst = int(np.argmax(per_dim))
    numbers = {
        **rel.numbers("train_relative_mean"),
        "pass_threshold": limits["pass"],
        "partial_threshold": limits["partial"],
    }
    detail = (
        f"mean chunk MAE/std on the training demos = {rel} ({rel.method}; "
        f"worst dim {worst}: {per_dim[worst]:.3f})"
    )
    note = straddle_note("the mean chunk MAE/std", rel, (limits["pass"], limits["partial"]))
    label = judge(rel, limits)
    # seed 002's question, whatever the label: did every trainable module get a gradient?
    flow = long_runs.gradient_reasons(evidence.history)
    if label == "PASS":
        reasons = [f"{detail} <= {limits['pass']}: the pipeline can fit these demos"]
        return Verdict("PASS", reasons + flow, numbers)
    if label == "FAIL":
        why = (
            f"{detail} > {limits['partial']}: the pipeline cannot fit these demos; check that "
            "inputs differ between samples and reach the head"
        )
        return Verdict("FAIL", [why, *flow], numbers)
    why = (
        f"{detail} is not clearly below {limits['pass']} nor above {limits['partial']}: "
        "train longer or check the inputs"
    )
    return Verdict("PARTIAL", [why, *([note] if note else []), *flow], numbers)


def metrics(evidence: OverfitEvidence) -> dict:
    """What metrics.json records beside the verdict's numbers: also what the figures show
    (per action dimension MAE/std, the validation interval, the learning curve)."""
    history = evidence.history
    train, val = evidence.assessment.train, evidence.assessment.val
    out = {
        "head": evidence.head,
        "control": evidence.control,
        "val_relative_mean": val.errors["relative_mean"] if val else None,
        "train_first_step_mae": train.errors["first_step_mae_mean"],
        "train_chunk_mae": train.errors["chunk_mae_mean"],
        "final_loss": history.final("loss") if history is not None and len(history) else None,
        "train_samples": train.errors["samples"],
        "steps": evidence.steps,
        "cache": evidence.cache,
        **long_runs.metrics(history, evidence.cost),
    }
    if val is not None:
        out["val_relative_mean_low"] = val.relative.low
        out["val_relative_mean_high"] = val.relative.high
        out["val_samples"] = val.errors["samples"]
    out["per_dimension"] = per_dimension(evidence.assessment, evidence.action_names)
    curve = learning_curve(history)
    if curve is not None:
        out["learning_curve"] = curve
    return out


def per_dimension(assessment: Assessment, names: tuple[str, ...] | list[str]) -> dict:
    """Per action dimension (by name, else ``dim<i>``): the chunk MAE/std on the training
    and the validation demos, the quantity whose mean the verdict judges."""
    train, val = assessment.train.errors, assessment.val.errors if assessment.val else None
    count = len(train["relative_chunk"])
    keys = list(names) if len(names) == count else [f"dim{i}" for i in range(count)]
    out = {}
    for i, key in enumerate(keys):
        out[key] = {"train_mae_over_std": float(train["relative_chunk"][i])}
        if val is not None:
            out[key]["val_mae_over_std"] = float(val["relative_chunk"][i])
    return out
