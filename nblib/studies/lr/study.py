"""Which schedule, peak LR, warmup and LR floor keep learning past warmup? (notebook 03, seed 003)

Seed 003 did this study by hand: a baseline at LR 1e-4 with cosine decay and no floor
stopped learning right after warmup (plateau from step ~500 of 15,834), runs at 3e-4 with a
10 % floor kept improving past 2k steps, and a table of both runs' losses at the same steps
decided the next config. This engine does it on live sweeps or on logs of runs done
elsewhere (the engine contract of :mod:`nblib.studies`):

1. ``prepare(config)``: the grid (schedule x peak LR x warmup x floor x weight decay x
   seed) of a live sweep, with each schedule's LR curve for a preview (``lr_preview``);
2. ``loss_curves(study)``: each run of the grid trained by the suite's one set-up
   (:mod:`nblib.studies.lr.sweep`), or the imported logs read; one tidy table either way;
   ``range_test(study)`` and ``mean_action_loss(study)`` (the loss of a predictor that
   outputs the mean action, seed 003's "random baseline") for live sweeps;
3. ``analyse``, ``matched_table``, then ``evidence`` -> ``verdict`` -> ``metrics``
   (:mod:`nblib.studies.lr.analysis`).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from nblib.errors import is_int, is_number, require
from nblib.lr_schedule import SCHEDULES, lr_curve
from nblib.studies import Study, StudyConfig, long_runs
from nblib.studies.setup import BATCH_SIZE, SetupConfig
from nblib.train import TrainConfig

# Schedules whose LR settles on a floor (min_lr_rate x peak) instead of zero.
FLOOR_SCHEDULES = ("cosine_with_min_lr", "warmup_stable_decay", "cosine_with_restarts")
SWEEP_SCHEDULES = tuple(s for s in SCHEDULES if s != "exponential")  # not the range test's ramp


@dataclass
class LRConfig(StudyConfig):
    log_files: list[str] = field(default_factory=list)  # imported logs; empty: a live sweep
    loss_key: str | None = None  # the loss metric in imported logs (None: loss, train/loss, ...)
    log_pattern: str | None = None  # text logs: regex with groups step and loss (None: built-in)
    log_warmup_steps: int = 0  # warmup of the imported runs, if known (0: unknown)
    manifest: str = "metaworld_default"  # live sweep: dataset manifest name or path
    backbone: str = "tiny"  # live sweep: tiny or a local VLM checkpoint directory
    policy: str = (
        "nblib"  # live sweep: nblib (VLA on backbone), a plug-in spec or its 01 run folder
    )
    policy_kwargs: dict = field(default_factory=dict)  # live sweep: the plug-in factory's kwargs
    head: str = "regression"  # live sweep: the policy's head (flow or regression)
    demos: int = 5  # live sweep: training demos
    steps: int = 400  # live sweep: optimizer steps per run
    batch_size: int = BATCH_SIZE  # live sweep: samples per step
    schedules: list[str] = field(default_factory=lambda: ["cosine", "cosine_with_min_lr"])
    cycles: int = 2  # cosine_with_restarts runs: cosine cycles per run (1 = cosine_with_min_lr)
    peak_lrs: list[float] = field(default_factory=lambda: [1e-4, 3e-4, 1e-3])
    warmups: list[int] = field(default_factory=lambda: [40])
    floors: list[float] = field(default_factory=lambda: [0.1])
    weight_decays: list[float] = field(default_factory=lambda: [0.0])
    seeds: list[int] = field(default_factory=lambda: [0])
    grad_clip: float | None = 1.0  # gradient norm clip of every run (None: off)
    workers: int = 2  # parallel worker processes of the sweep
    range_test_steps: int = 200  # LR range test: steps of the ramp (0: skip it)
    range_min_lr: float = 1e-6  # ... its first LR
    range_max_lr: float = 1.0  # ... its last LR
    plateau_window: int = 100  # steps over which the smoothed loss must improve ...
    plateau_threshold: float = 0.01  # ... by at least this fraction, or it is a plateau
    smoothing: int = 20  # points of the trailing moving average
    baseline: str | None = None  # run the matched-step deltas refer to (None: the first)
    checkpoint_every: int = 0  # live sweep: checkpoint each run every N steps (0: off)
    resume: bool = True  # ... and continue each from its newest checkpoint in OUT/checkpoints

    def __post_init__(self):
        own = "LRConfig"
        files = self.log_files
        ok = isinstance(files, (list, tuple)) and all(isinstance(f, str) for f in files)
        require(ok, own, "log_files", files, "a list of file paths")
        self.log_files = list(files)
        for name in ("loss_key", "log_pattern"):
            value = getattr(self, name)
            require(value is None or isinstance(value, str), own, name, value, "None or a str")
        lw = self.log_warmup_steps
        require(is_int(lw) and lw >= 0, own, "log_warmup_steps", lw, "an int >= 0")
        require(self.head in ("flow", "regression"), own, "head", self.head, "flow or regression")
        for name in ("steps", "batch_size", "workers", "plateau_window", "smoothing"):
            value = getattr(self, name)
            require(is_int(value) and value >= 1, own, name, value, "an int >= 1")
        self.setup_config()  # manifest, backbone, demos: checked by the set-up
        rs = self.range_test_steps
        require(is_int(rs) and (rs == 0 or rs >= 10), own, "range_test_steps", rs, "0 or >= 10")
        lo, hi = self.range_min_lr, self.range_max_lr
        ok = is_number(lo) and is_number(hi) and 0 < lo < hi
        require(ok, own, "range_min_lr", lo, f"a number in (0, range_max_lr={hi})")
        th = self.plateau_threshold
        require(is_number(th) and th > 0, own, "plateau_threshold", th, "a number > 0")
        gc = self.grad_clip
        require(gc is None or (is_number(gc) and gc > 0), own, "grad_clip", gc, "None or > 0")
        lists = {
            "schedules": lambda v: v in SWEEP_SCHEDULES,
            "peak_lrs": lambda v: is_number(v) and v > 0,
            "warmups": lambda v: is_int(v) and 0 <= v <= self.steps,
            "floors": lambda v: is_number(v) and 0 <= v < 1,
            "weight_decays": lambda v: is_number(v) and v >= 0,
            "seeds": lambda v: is_int(v) and v >= 0,
        }
        for name, check in lists.items():
            value = getattr(self, name)
            ok = isinstance(value, (list, tuple)) and value and all(check(v) for v in value)
            require(ok, own, name, value, f"a non-empty list of valid values for {name}")
            setattr(self, name, list(value))
        if "cosine_with_restarts" in self.schedules:  # every cycle at least one step long
            span = self.steps - max(self.warmups)
            ok = is_int(self.cycles) and 1 <= self.cycles <= span
            require(ok, own, "cycles", self.cycles, f"an int in [1, steps - warmup = {span}]")
        bl = self.baseline
        require(bl is None or isinstance(bl, str), own, "baseline", bl, "None or a run name")
        long_runs.check_params(self, own)

    def setup_config(self) -> SetupConfig:
        """The set-up every run of a live sweep trains on: the first ``demos`` training
        demos of the fixed split (seed 0, so every run of every seed sees the same data).
        A plug-in's notebook-01 run folder stands for its spec and kwargs: every run
        trains that policy afresh."""
        from nblib.plugins.runtime import saved_spec

        policy, kwargs = saved_spec(self.policy) or (self.policy, self.policy_kwargs)
        return SetupConfig(
            manifest=self.manifest,
            demos=self.demos,
            head=self.head,
            backbone=self.backbone,
            policy=policy,
            policy_kwargs=kwargs | self.policy_kwargs,
            owner="LRConfig",
        )

    @property
    def live(self) -> bool:
        return not self.log_files


@dataclass(frozen=True)
class LRStudy(Study):
    """The study's runs: the grid of a live sweep (``specs``; empty for imported logs)."""

    specs: tuple[dict, ...]

    @property
    def mode(self) -> str:
        return "live sweep" if self.config.live else "imported logs"


def prepare(config: LRConfig) -> LRStudy:
    return LRStudy(config, tuple(sweep_specs(config)) if config.live else ())


def describe(study: LRStudy) -> str:
    n = len(study.specs) if study.specs else len(study.config.log_files)
    return f"{study.mode}: {n} {'runs' if study.specs else 'files'}"


# ----------------------------------------------------------------------------- the grid


def run_name(spec: dict, cycles: int = 1) -> str:
    """A short unique name: schedule, peak LR, warmup, floor (floor schedules), cycles
    (cosine_with_restarts), weight decay and seed (when not the defaults)."""
    parts = [spec["schedule"], f"lr={spec['lr']:g}", f"wu={spec['warmup_steps']}"]
    if spec["schedule"] in FLOOR_SCHEDULES:
        parts.append(f"floor={spec['min_lr_rate']:g}")
    if spec["schedule"] == "cosine_with_restarts":
        parts.append(f"cycles={cycles}")
    if spec["weight_decay"]:
        parts.append(f"wd={spec['weight_decay']:g}")
    if spec["seed"]:
        parts.append(f"s={spec['seed']}")
    return " ".join(parts)


def sweep_specs(config: LRConfig) -> list[dict]:
    """Every combination of the grid, once: the floor only varies for schedules that have
    one (for the others it is recorded as 0)."""
    specs, seen = [], set()
    grid = itertools.product(
        config.schedules,
        config.peak_lrs,
        config.warmups,
        config.floors,
        config.weight_decays,
        config.seeds,
    )
    for schedule, lr, warmup, floor, wd, seed in grid:
        floor = floor if schedule in FLOOR_SCHEDULES else 0.0
        spec = {
            "schedule": schedule,
            "lr": float(lr),
            "warmup_steps": int(warmup),
            "min_lr_rate": float(floor),
            "weight_decay": float(wd),
            "seed": int(seed),
        }
        spec["run"] = run_name(spec, config.cycles)
        if spec["run"] not in seen:
            seen.add(spec["run"])
            specs.append(spec)
    return specs


def train_config(config: LRConfig, spec: dict, progress: bool = False, run_dir=None) -> TrainConfig:
    """One run's training settings; with ``run_dir``, its checkpoints go to
    ``run_dir/checkpoints/<run>`` and must match the run's set-up to be resumed."""
    setup = asdict(config.setup_config())
    identity = {k: v for k, v in setup.items() if k not in ("owner", "names")}
    identity["batch_size"] = config.batch_size
    # one thread per worker: two workers share the two cores (nblib.threads)
    checkpoints = long_runs.checkpoint_settings(config, run_dir, spec["run"], identity, threads=1)
    return TrainConfig(
        steps=config.steps,
        lr=spec["lr"],
        schedule=spec["schedule"],
        warmup_steps=spec["warmup_steps"],
        min_lr_rate=spec["min_lr_rate"],
        cycles=config.cycles,  # read by cosine_with_restarts only
        weight_decay=spec["weight_decay"],
        grad_clip=config.grad_clip,
        seed=spec["seed"],
        progress=progress,
        desc=spec["run"],
        **({"threads": 1} | checkpoints),
    )


def grid_table(study: LRStudy) -> pd.DataFrame | None:
    """A live sweep's grid, one row per run (its schedule, peak LR, warmup, floor, weight
    decay, seed): the study's inputs, shown as a table; None for imported logs."""
    if not study.specs:
        return None
    return pd.DataFrame(list(study.specs)).set_index("run")


def lr_preview(study: LRStudy) -> pd.DataFrame | None:
    """Each run's learning rate at every step, before anything trains (tidy: run, step,
    lr); None for imported logs (their schedules are not known)."""
    if not study.specs:
        return None
    rows = []
    for spec in study.specs:
        lrs = lr_curve(train_config(study.config, spec))
        rows.append(pd.DataFrame({"run": spec["run"], "step": np.arange(len(lrs)), "lr": lrs}))
    return pd.concat(rows, ignore_index=True)
