"""The runs of notebook 03: a live sweep trained by the suite's one set-up, or imported logs.

Each configuration of the grid is a short run of the suite's one training loop on the
policy of :mod:`nblib.studies.setup` (the overfit policy on cached frozen-backbone
features), in parallel worker processes with a progress bar. The LR range test ramps the
LR of the same policy; the mean-action loss is the loss of a predictor that ignores every
input (seed 003's "random baseline").
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from nblib.metrics import curves
from nblib.studies.lr.study import LRConfig, LRStudy, train_config
from nblib.studies.setup import SetupConfig, TrainingSetup
from nblib.train import History, TrainConfig

COLUMNS = ["run", "step", "loss", "lr", "grad_norm"]

_PREPARED: dict = {}  # per process: the set-up of each SetupConfig, built once


def _prepared(setup_config: SetupConfig) -> TrainingSetup:
    """The set-up of a sweep (data, backbone, features from the on-disk cache), once per
    process: every run of the grid trains a fresh policy on it."""
    if setup_config not in _PREPARED:
        from nblib.studies.setup import prepare_training

        _PREPARED[setup_config] = prepare_training(setup_config, progress=False)
    return _PREPARED[setup_config]


def train_run(
    setup_config: SetupConfig,
    batch_size: int,
    train_cfg: TrainConfig,
    stop_above: float | None = None,
) -> list[dict]:
    """One short run of the suite's training loop on the set-up; returns its per-step
    records. A run that produces NaN/Inf stops there, and its last record carries the
    non-finite loss (a diverged run must be seen, not dropped). ``stop_above``: stop once
    the mean of the last 5 losses exceeds that many times its lowest value so far (the
    range test's blow-up)."""
    import torch

    from nblib.studies.setup import train_policy
    from nblib.train import NonFiniteError

    torch.set_num_threads(train_cfg.threads or 1)
    setup = _prepared(setup_config)
    model = setup.new_model(train_cfg.seed)
    setup.check(model)  # a broken plug-in fails with the contract's error, not mid-run
    losses = []
    lowest = [math.inf]

    def blown_up(step, record, model):
        losses.append(record["loss"])
        if stop_above is None or len(losses) < 5:
            return False
        recent = float(np.mean(losses[-5:]))
        lowest[0] = min(lowest[0], recent)
        return recent > stop_above * lowest[0]

    # the history, not what the callback saw: a resumed run's earlier steps are in it
    try:
        history = train_policy(setup, model, train_cfg, batch_size, callback=blown_up)
        tail = []
    except NonFiniteError as err:
        history = err.history or []
        tail = [{"step": err.step, "loss": math.nan, "lr": math.nan, "grad_norm": math.nan}]
    keys = ("step", "loss", "lr", "grad_norm")
    records = History([{k: r.get(k) for k in keys} for r in history] + tail)
    records.resumed_from_step = getattr(history, "resumed_from_step", None)
    return records


def _worker(args: tuple) -> tuple[str, list[dict]]:
    setup_config, batch_size, spec, train_cfg = args
    return spec["run"], train_run(setup_config, batch_size, train_cfg)


def run_sweep(study: LRStudy, progress: bool = True, run_dir=None) -> pd.DataFrame:
    """Every run of the grid in ``workers`` processes (spawned: no torch state is forked),
    with a progress bar; the tidy table of all their steps. With ``run_dir`` and
    ``checkpoint_every``, each run checkpoints into ``run_dir/checkpoints/<run>`` and
    resumes from there."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from tqdm.auto import tqdm

    cfg = study.config
    setup_config = cfg.setup_config()
    _prepared(setup_config)  # features into the cache once, not per worker
    jobs = [
        (setup_config, cfg.batch_size, spec, train_config(cfg, spec, run_dir=run_dir))
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
    curves = pd.concat(frames, ignore_index=True)[COLUMNS]
    # which runs continued from a checkpoint (metrics.json's resumed_from_step)
    resumed = {spec["run"]: results[spec["run"]].resumed_from_step for spec in study.specs}
    curves.attrs["resumed_from_step"] = resumed
    return curves


def load_logs(config: LRConfig) -> pd.DataFrame:
    """The imported logs as the tidy table (see :mod:`nblib.data.training_logs`)."""
    from nblib.data.training_logs import read_logs

    return read_logs(config.log_files, loss_key=config.loss_key, pattern=config.log_pattern)


def loss_curves(study: LRStudy, run_dir=None, progress: bool = True) -> pd.DataFrame:
    """The study's runs as one tidy table (run, step, loss, lr, grad_norm): the live sweep
    trained (checkpointed into ``run_dir/checkpoints`` with ``checkpoint_every``), or the
    imported logs read."""
    return run_sweep(study, progress, run_dir) if study.specs else load_logs(study.config)


def range_test(study: LRStudy, progress: bool = True) -> dict | None:
    """LR range test on the sweep's policy: the LR ramps exponentially from
    ``range_min_lr`` to ``range_max_lr`` over ``range_test_steps`` steps and stops once the
    smoothed loss exceeds 4x its minimum; suggestions from
    :func:`nblib.metrics.curves.range_test_suggestions`. None for imported logs or
    ``range_test_steps=0``."""
    cfg = study.config
    if not cfg.live or not cfg.range_test_steps:
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
    records = train_run(cfg.setup_config(), cfg.batch_size, train_cfg, stop_above=4.0)
    table = pd.DataFrame(records)
    finite = np.isfinite(table["loss"].to_numpy())
    lrs, losses = table["lr"].to_numpy()[finite], table["loss"].to_numpy()[finite]
    smoothing = max(cfg.smoothing // 2, 1)
    return {
        "lr": lrs,
        "loss": losses,
        **curves.range_test_suggestions(lrs, losses, smoothing=smoothing),
        "smoothing": smoothing,  # the figure draws the smoothed loss the suggestions read
    }


def mean_action_loss(study: LRStudy) -> float | None:
    """The training loss of a predictor that outputs the mean action whatever its inputs
    (seed 003's "random predictor" baseline), on the sweep's training samples, in the
    units of the curves: the masked mean squared deviation of the normalised actions from
    their mean per dimension; for the flow head plus 1, the variance of the noise its
    velocity target subtracts (seed 001's "random predictor baseline ~2.0"). None for
    imported logs and plug-in policies (their loss is their own)."""
    cfg = study.config
    if not cfg.live or cfg.setup_config().plugin:
        return None
    samples = _prepared(cfg.setup_config()).train
    w = samples.mask.astype(float)[..., None]  # (N, H, 1)
    mean = (samples.actions * w).sum(axis=(0, 1)) / max(w.sum(), 1.0)
    mse = float((((samples.actions - mean) ** 2) * w).sum() / max(w.sum() * mean.size, 1.0))
    return mse + (1.0 if cfg.head == "flow" else 0.0)
