"""Which schedule, peak LR, warmup and LR floor keep learning past warmup? (notebook 03, seed 003)

Seed 003 did this study by hand: a baseline at LR 1e-4 with cosine decay and no floor
stopped learning right after warmup (plateau from step ~500 of 15,834), runs at 3e-4 with a
10 % floor kept improving past 2k steps, and a table of both runs' losses at the same steps
decided the next config. This engine does it on live sweeps or on logs of runs done
elsewhere:

1. ``sweep_specs(config)``: the grid (schedule x peak LR x warmup x floor x weight decay x
   seed), with each schedule's LR curve for a preview (``lr_preview``);
2. ``run_sweep(config)``: each configuration a short run of the suite's one training loop on
   the embedded demos (the overfit policy on cached features), in parallel worker processes
   with a progress bar; or ``load_logs(config)``: JSON lines, CSV (W&B exports included)
   and text logs; either way one tidy table (run, step, loss, lr, grad_norm);
3. ``range_test(config)``: an exponential LR ramp with suggestions at the steepest descent
   and an order of magnitude below the minimum, as fastai's and Lightning's finders do;
4. ``analyse(study)``: per run the plateau, divergence and learning-stopped-after-warmup
   detectors (:mod:`nblib.metrics.curves`) and a next-config suggestion (a heuristic);
   ``matched_table(study)``: every run's loss at the same steps and its delta to a baseline;
5. ``verdict(study)`` and ``metrics(study)``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nblib.errors import ParameterError, is_int, is_number, require
from nblib.metrics import curves
from nblib.studies import StudyConfig
from nblib.studies.lr import plots
from nblib.train import SCHEDULES, TrainConfig, lr_curve
from nblib.verdict import Verdict

# Schedules whose LR settles on a floor (min_lr_rate x peak) instead of zero.
FLOOR_SCHEDULES = ("cosine_with_min_lr", "warmup_stable_decay")
SWEEP_SCHEDULES = tuple(s for s in SCHEDULES if s != "exponential")
HORIZON = 16  # action chunk of the policy the sweeps train
# Seed 003's auto-tuning raised the LR by 1.5x on a plateau; a divergence gets a third.
RAISE, LOWER = 1.5, 0.3


@dataclass
class LRConfig(StudyConfig):
    log_files: list[str] = field(default_factory=list)  # imported logs; empty: a live sweep
    loss_key: str | None = None  # the loss metric in imported logs (None: loss, train/loss, ...)
    log_warmup_steps: int = 0  # warmup of the imported runs, if known (0: unknown)
    manifest: str = "metaworld_default"  # live sweep: dataset manifest name or path
    head: str = "regression"  # live sweep: the policy's head (flow or regression)
    demos: int = 5  # live sweep: training demos
    steps: int = 400  # live sweep: optimizer steps per run
    batch_size: int = 32  # live sweep: samples per step
    schedules: list[str] = field(default_factory=lambda: ["cosine", "cosine_with_min_lr"])
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

    def __post_init__(self):
        own = "LRConfig"
        files = self.log_files
        ok = isinstance(files, (list, tuple)) and all(isinstance(f, str) for f in files)
        require(ok, own, "log_files", files, "a list of file paths")
        self.log_files = list(files)
        lk = self.loss_key
        require(lk is None or isinstance(lk, str), own, "loss_key", lk, "None or a name")
        for name in ("log_warmup_steps",):
            value = getattr(self, name)
            require(is_int(value) and value >= 0, own, name, value, "an int >= 0")
        require(self.head in ("flow", "regression"), own, "head", self.head, "flow or regression")
        for name in ("demos", "steps", "batch_size", "workers", "plateau_window", "smoothing"):
            value = getattr(self, name)
            require(is_int(value) and value >= 1, own, name, value, "an int >= 1")
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
        bl = self.baseline
        require(bl is None or isinstance(bl, str), own, "baseline", bl, "None or a run name")


@dataclass
class LRStudy:
    """What the notebook has found so far (filled in step by step)."""

    config: LRConfig
    specs: list[dict] = field(default_factory=list)  # the sweep's runs and their settings
    curves: pd.DataFrame | None = None  # tidy: run, step, loss, lr, grad_norm
    range: dict | None = None  # the LR range test and its suggestions
    runs: pd.DataFrame | None = None  # per run: detectors and suggestion

    @property
    def mode(self) -> str:
        return "imported logs" if self.config.log_files else "live sweep"


def prepare(config: LRConfig) -> LRStudy:
    return LRStudy(config, [] if config.log_files else sweep_specs(config))


# ----------------------------------------------------------------------------- the grid


def run_name(spec: dict) -> str:
    """A short unique name: schedule, peak LR, warmup, floor (floor schedules), weight
    decay and seed (when not the defaults)."""
    parts = [spec["schedule"], f"lr={spec['lr']:g}", f"wu={spec['warmup_steps']}"]
    if spec["schedule"] in FLOOR_SCHEDULES:
        parts.append(f"floor={spec['min_lr_rate']:g}")
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
        spec["run"] = run_name(spec)
        if spec["run"] not in seen:
            seen.add(spec["run"])
            specs.append(spec)
    return specs


def train_config(config: LRConfig, spec: dict, progress: bool = False) -> TrainConfig:
    return TrainConfig(
        steps=config.steps,
        lr=spec["lr"],
        schedule=spec["schedule"],
        warmup_steps=spec["warmup_steps"],
        min_lr_rate=spec["min_lr_rate"],
        weight_decay=spec["weight_decay"],
        grad_clip=config.grad_clip,
        seed=spec["seed"],
        threads=1,  # one per worker: two workers share the two cores (nblib.threads)
        progress=progress,
        desc=spec["run"],
    )


def lr_preview(study: LRStudy) -> pd.DataFrame:
    """Each run's learning rate at every step, before anything trains (tidy: run, step, lr)."""
    rows = []
    for spec in study.specs:
        lrs = lr_curve(train_config(study.config, spec))
        rows.append(pd.DataFrame({"run": spec["run"], "step": np.arange(len(lrs)), "lr": lrs}))
    return pd.concat(rows, ignore_index=True)


# ----------------------------------------------------------------------------- training

_PREPARED: dict = {}  # per worker process: the data and features, built once


def _prepared(manifest: str, demos: int, head: str):
    """Samples of the first ``demos`` training demos with their frozen-backbone features
    (from the on-disk cache) and a function building a fresh policy for them."""
    key = (manifest, demos, head)
    if key not in _PREPARED:
        from nblib.cache import FeatureCache
        from nblib.data.manifest import open_dataset
        from nblib.data.normalization import load_norm_stats
        from nblib.data.splits import split_episodes, subset_train
        from nblib.models.backbone import load_backbone
        from nblib.models.vla import build_policy, load_samples, precompute_features
        from nblib.paths import cache_dir

        store = open_dataset(manifest, progress=False)
        split = subset_train(split_episodes(store.demos, store.task, 0.2, 0), demos)
        train_store = store.subset(split.train)
        samples = load_samples(train_store, HORIZON, load_norm_stats(train_store))
        backbone = load_backbone("tiny")
        cache = FeatureCache(cache_dir(), backbone.identity(), "last")
        precompute_features(backbone, samples, "last", cache, progress=False)
        _PREPARED[key] = (
            samples,
            lambda: build_policy(backbone, train_store, HORIZON, head),
        )
    return _PREPARED[key]


def train_run(
    manifest: str,
    demos: int,
    head: str,
    batch_size: int,
    train_cfg: TrainConfig,
    stop_above: float | None = None,
):
    """One short run of the suite's training loop on the embedded demos; returns its
    per-step records. A run that produces NaN/Inf stops there, and its last record carries
    the non-finite loss (a diverged run must be seen, not dropped). ``stop_above``: stop
    once the mean of the last 5 losses exceeds that many times its lowest value so far (the
    range test's blow-up)."""
    import torch

    from nblib.models.vla import PolicyWithBackbone, make_batches, make_loss_fn
    from nblib.train import NonFiniteError, seed_everything, train

    torch.set_num_threads(train_cfg.threads or 1)
    samples, build = _prepared(manifest, demos, head)
    seed_everything(train_cfg.seed)
    model = PolicyWithBackbone(build())
    records = []
    lowest = [math.inf]

    def keep(step, record, model):
        records.append({k: record.get(k) for k in ("step", "loss", "lr", "grad_norm")})
        if stop_above is None or len(records) < 5:
            return False
        recent = float(np.mean([r["loss"] for r in records[-5:]]))
        lowest[0] = min(lowest[0], recent)
        return recent > stop_above * lowest[0]

    try:
        train(
            model,
            make_batches(samples, batch_size, train_cfg.seed),
            make_loss_fn(samples),
            train_cfg,
            callback=keep,
        )
    except NonFiniteError as err:
        records.append({"step": err.step, "loss": math.nan, "lr": math.nan, "grad_norm": math.nan})
    return records


def _worker(args: tuple) -> tuple[str, list[dict]]:
    manifest, demos, head, batch_size, spec, train_cfg = args
    return spec["run"], train_run(manifest, demos, head, batch_size, train_cfg)


def run_sweep(study: LRStudy, progress: bool = True) -> pd.DataFrame:
    """Every run of the grid in ``workers`` processes (spawned: no torch state is forked),
    with a progress bar; the tidy table of all their steps."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from tqdm.auto import tqdm

    cfg = study.config
    _prepared(cfg.manifest, cfg.demos, cfg.head)  # features into the cache once, not per worker
    jobs = [
        (cfg.manifest, cfg.demos, cfg.head, cfg.batch_size, spec, train_config(cfg, spec))
        for spec in study.specs
    ]
    results: dict[str, list[dict]] = {}
    bar = tqdm(total=len(jobs), desc="sweep", unit="run", disable=not progress)
    try:
        if cfg.workers == 1:
            for job in jobs:
                name, records = _worker(job)
                results[name] = records
                bar.update()
        else:
            ctx = get_context("spawn")
            with ProcessPoolExecutor(min(cfg.workers, len(jobs)), mp_context=ctx) as pool:
                futures = [pool.submit(_worker, job) for job in jobs]
                for fut in as_completed(futures):
                    name, records = fut.result()
                    results[name] = records
                    bar.update()
    finally:
        bar.close()
    frames = [pd.DataFrame(results[spec["run"]]).assign(run=spec["run"]) for spec in study.specs]
    study.curves = pd.concat(frames, ignore_index=True)[["run", "step", "loss", "lr", "grad_norm"]]
    return study.curves


def load_logs(study: LRStudy) -> pd.DataFrame:
    """The imported logs as the tidy table (see :mod:`nblib.data.training_logs`)."""
    from nblib.data.training_logs import read_logs

    study.curves = read_logs(study.config.log_files, loss_key=study.config.loss_key)
    return study.curves


def range_test(study: LRStudy, progress: bool = True) -> dict | None:
    """LR range test on the sweep's policy: the LR ramps exponentially from
    ``range_min_lr`` to ``range_max_lr`` over ``range_test_steps`` steps and stops once the
    smoothed loss exceeds 4x its minimum; suggestions from
    :func:`nblib.metrics.curves.range_test_suggestions`. None for imported logs."""
    cfg = study.config
    if cfg.log_files or not cfg.range_test_steps:
        return None
    train_cfg = TrainConfig(
        steps=cfg.range_test_steps,
        lr=cfg.range_max_lr,
        schedule="exponential",
        min_lr_rate=cfg.range_min_lr / cfg.range_max_lr,
        grad_clip=None,  # the test looks for the LR where training breaks: do not hide it
        seed=0,
        progress=progress,
        desc="LR range test",
    )
    records = train_run(
        cfg.manifest, cfg.demos, cfg.head, cfg.batch_size, train_cfg, stop_above=4.0
    )
    table = pd.DataFrame(records)
    finite = np.isfinite(table["loss"].to_numpy())
    lrs, losses = table["lr"].to_numpy()[finite], table["loss"].to_numpy()[finite]
    study.range = {
        "lr": lrs,
        "loss": losses,
        **curves.range_test_suggestions(lrs, losses, smoothing=max(cfg.smoothing // 2, 1)),
    }
    return study.range


# ----------------------------------------------------------------------------- analysis


def analyse(study: LRStudy) -> pd.DataFrame:
    """Per run: steps, final (smoothed) loss, plateau, divergence, learning stopped right
    after warmup, and the suggested next config with its reason."""
    cfg = study.config
    if study.curves is None:
        raise ParameterError("no curves yet: run lr.run_sweep(study) or lr.load_logs(study)")
    specs = {s["run"]: s for s in study.specs}
    rows = []
    for run, part in study.curves.groupby("run", sort=False):
        steps = part["step"].to_numpy()
        loss = part["loss"].to_numpy(dtype=float)
        grad = part["grad_norm"].to_numpy(dtype=float)
        spec = specs.get(run)
        warmup = spec["warmup_steps"] if spec else cfg.log_warmup_steps
        # Sparse logs (a W&B export of 20 points) must not be averaged over their whole run.
        smoothing = run_smoothing(cfg.smoothing, len(loss))
        div = curves.divergence(
            steps, loss, grad if np.isfinite(grad).any() else None, smoothing=smoothing
        )
        finite = np.isfinite(loss)
        if div["diverged"]:
            plat = {"plateau": False, "step": None}
            stop = {"stopped": False}
        else:
            kw = {"window": cfg.plateau_window, "threshold": cfg.plateau_threshold}
            plat = curves.plateau(steps, loss, smoothing=smoothing, **kw)
            stop = (
                curves.stopped_after_warmup(steps, loss, warmup, smoothing=smoothing, **kw)
                if warmup
                else {"stopped": False}
            )
        smoothed = curves.smooth(loss[finite], smoothing) if finite.any() else np.array([])
        row = {
            "run": run,
            "steps": int(steps[-1]) + 1 if len(steps) else 0,
            "final_loss": float(smoothed[-1]) if len(smoothed) else None,
            "min_loss": float(np.min(loss[finite])) if finite.any() else None,
            "plateau_step": plat["step"],
            "stopped_after_warmup": bool(stop["stopped"]),
            "diverged": bool(div["diverged"]),
            "divergence_step": div["step"],
            "grad_spikes": len(div["grad_spikes"]),
        }
        row["suggestion"], row["next"] = suggest(row, spec, study.range)
        rows.append(row)
    study.runs = pd.DataFrame(rows).set_index("run")
    return study.runs


def run_smoothing(smoothing: int, points: int) -> int:
    """The moving-average width used for a run of ``points`` logged losses: ``smoothing``,
    but never more than a tenth of the run (at least 1)."""
    return max(1, min(smoothing, points // 10))


def suggest(row: dict, spec: dict | None, range_result: dict | None = None) -> tuple[str, dict]:
    """A heuristic next config for one run, with its reason: divergence -> lower the peak
    (to the range test's steepest-descent LR when it is lower), double the warmup, clip;
    learning stopped after warmup or a plateau -> raise the floor (no floor yet) or the peak
    by 1.5x (seed 003's auto-tuning); still improving -> train longer."""
    lr = spec["lr"] if spec else None
    nxt: dict = {}
    if row["diverged"]:
        target = lr * LOWER if lr else None
        steepest = (range_result or {}).get("steepest")
        if target and steepest and steepest < target:
            target = steepest
        if target:
            nxt["lr"] = float(f"{target:.2g}")
        if spec:
            nxt["warmup_steps"] = max(2 * spec["warmup_steps"], 10)
        nxt["grad_clip"] = 1.0
        why = f"diverged at step {row['divergence_step']}: lower the peak LR"
        why += f" to {nxt['lr']:g}" if "lr" in nxt else ""
        return why + ", double the warmup and clip gradients at 1.0 (heuristic)", nxt
    if row["stopped_after_warmup"] or row["plateau_step"] is not None:
        when = "right after warmup" if row["stopped_after_warmup"] else "later"
        if spec and spec["schedule"] not in FLOOR_SCHEDULES:
            nxt = {"schedule": "cosine_with_min_lr", "min_lr_rate": 0.1}
            return (
                f"stopped improving {when} (plateau from step {row['plateau_step']}): keep a "
                "10 % LR floor (cosine_with_min_lr), as seed 003 did (heuristic)",
                nxt,
            )
        if lr:
            nxt = {"lr": float(f"{lr * RAISE:.2g}")}
        why = f"stopped improving {when} (plateau from step {row['plateau_step']}): raise the peak"
        why += f" LR to {nxt['lr']:g}" if nxt else " LR"
        return why + " (x1.5, seed 003's auto-tuning) (heuristic)", nxt
    return "still improving at the end: train longer at these settings (heuristic)", nxt


def matched_table(study: LRStudy, at: list[int] | None = None) -> pd.DataFrame:
    """Seed 003's "Comparison at Same Steps": every run's raw and smoothed loss at the same
    steps, and the smoothed delta to the baseline (``config.baseline`` or the first run);
    a step x run table of smoothed losses with deltas in brackets is ``matched_pivot``."""
    cfg = study.config
    runs = {
        run: (part["step"].to_numpy(), part["loss"].to_numpy(dtype=float))
        for run, part in study.curves.groupby("run", sort=False)
        if np.isfinite(part["loss"].to_numpy(dtype=float)).all()
    }
    if not runs:
        raise ParameterError("every run diverged: no loss to compare at the same steps")
    baseline = cfg.baseline if cfg.baseline is not None else next(iter(runs))
    if baseline not in runs:
        raise ParameterError(
            f"baseline {baseline!r} is not a run with a finite loss; runs: {sorted(runs)}"
        )
    return curves.matched_steps(runs, at=at, baseline=baseline, smoothing=cfg.smoothing)


def matched_pivot(table: pd.DataFrame) -> pd.DataFrame:
    """step x run: smoothed loss (delta to the baseline)."""
    cell = table.apply(
        lambda r: (
            f"{r['smoothed']:.4g}"
            + ("" if pd.isna(r["delta"]) or r["delta"] == 0 else f" ({r['delta']:+.3g})")
        ),
        axis=1,
    )
    return table.assign(cell=cell).pivot(index="step", columns="run", values="cell")


# ----------------------------------------------------------------------------- figures


def loss_figure(study: LRStudy, show=None, smoothing: int | None = None):
    return plots.plot_loss_curves(
        study.curves, study.runs, smoothing or study.config.smoothing, show=show
    )


def run_browser(study: LRStudy):
    """ipywidgets (``interactive=True``): toggle runs and change the smoothing."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(study.curves["run"]))

    def show(runs, smoothing):
        loss_figure(study, show=list(runs), smoothing=smoothing)
        plt.show()

    return w.interactive(
        show,
        runs=w.SelectMultiple(options=names, value=tuple(names), description="runs", rows=6),
        smoothing=w.IntSlider(
            value=study.config.smoothing, min=1, max=100, description="smoothing"
        ),
    )


# ----------------------------------------------------------------------------- verdict


def best_run(study: LRStudy) -> str | None:
    runs = _runs(study)
    ok = runs[~runs["diverged"] & runs["final_loss"].notna()]
    return None if ok.empty else str(ok["final_loss"].astype(float).idxmin())


def verdict(study: LRStudy) -> Verdict:
    """FOUND when some run keeps learning past warmup without diverging (the best one is
    named), STALLED when every run that did not diverge stopped right after warmup,
    DIVERGED when every run diverged."""
    runs = _runs(study)
    diverged = runs.index[runs["diverged"]].tolist()
    stalled = runs.index[runs["stopped_after_warmup"]].tolist()
    plateaued = runs.index[runs["plateau_step"].notna() & ~runs["diverged"]].tolist()
    best = best_run(study)
    numbers = {
        "runs": len(runs),
        "best_run": best,
        "best_final_loss": None if best is None else float(runs.loc[best, "final_loss"]),
        "diverged": len(diverged),
        "stopped_after_warmup": len(stalled),
        "plateaued": len(plateaued),
    }
    if study.range is not None:
        numbers |= {
            "range_steepest_lr": study.range.get("steepest"),
            "range_min_fraction_lr": study.range.get("min_fraction"),
        }
    reasons = []
    if best is None:
        label = "DIVERGED"
        reasons.append(f"all {len(runs)} runs diverged: " + ", ".join(diverged))
    else:
        learning = [r for r in runs.index if r not in diverged and r not in stalled]
        label = "FOUND" if learning else "STALLED"
        reasons.append(
            f"best run {best}: final smoothed loss {runs.loc[best, 'final_loss']:.4g}"
            + ("" if best in learning else " (but it stopped learning right after warmup)")
        )
        if stalled:
            reasons.append("stopped learning right after warmup: " + ", ".join(stalled))
        if diverged:
            reasons.append("diverged: " + ", ".join(diverged))
        reasons.append(f"next config for {best}: {runs.loc[best, 'suggestion']}")
    if study.range is not None and study.range.get("steepest"):
        reasons.append(
            f"LR range test: steepest descent at {study.range['steepest']:.2g}, "
            f"minimum at {study.range['minimum']:.2g} (a tenth: {study.range['min_fraction']:.2g})"
        )
    return Verdict(label, reasons, numbers)


def metrics(study: LRStudy) -> dict:
    """What metrics.json records beside the verdict's numbers."""
    runs = _runs(study)
    table = runs.astype(object).where(runs.notna(), None)  # JSON has no NaN
    out = {"mode": study.mode, "runs_table": [{"run": r, **row} for r, row in table.iterrows()]}
    if study.specs:
        out["grid"] = study.specs
    if study.range is not None:
        out["range_test"] = {k: v for k, v in study.range.items() if k not in ("lr", "loss")}
    return out


def _runs(study: LRStudy) -> pd.DataFrame:
    if study.runs is None:
        raise ParameterError("no analysis yet: run lr.analyse(study) first")
    return study.runs
