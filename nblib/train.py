"""The one training loop every notebook uses.

``train(model, batches, loss_fn, config)`` runs AdamW with a transformers LR schedule
through ``accelerate`` (CPU, one GPU, or several under ``accelerate launch``) and returns a
``History`` of per-step records. Two research logs shaped it:

- Seed 000: NaNs were silently masked until the model collapsed (loss 0.0000 at step 1850).
  Here a non-finite loss, logged scalar, gradient or parameter *raises* ``NonFiniteError``
  naming the step and the tensor; nothing is ever skipped or masked.
- Seed 003: cosine decay without a floor stopped learning right after warmup. The schedule
  is a named, plottable choice (:func:`nblib.lr_schedule.lr_curve`); ``cosine_with_min_lr``,
  ``cosine_with_restarts`` and WSD keep a floor of ``min_lr_rate * lr``, and the LR of
  every group is logged every step.
- Seeds 000-002 ran for hours on GPU nodes: checkpoints carry everything a resumption needs
  and the run's identity (a checkpoint of other settings or code is refused), and every
  ``grad_flow_every`` steps each module's gradient norm is logged (seed 002 could not tell
  whether its compressor received any); each step records its samples per second.

The schedules live in :mod:`nblib.lr_schedule`, the device and mixed-precision settings in
:mod:`nblib.devices` and the resumable checkpoints in :mod:`nblib.checkpoints`.

Example::

    cfg = TrainConfig(steps=200, lr=1e-3, schedule="cosine_with_min_lr", warmup_steps=20)
    hist = train(model, lambda step: make_batch(step), lambda m, b: m(b["x"]).sub(b["y"]).pow(2).mean(), cfg)
    hist.final("loss")
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.utils import clip_grads_with_norm_, get_total_norm

from nblib.checkpoints import (
    checkpoints,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from nblib.checkpoints import identity as run_identity
from nblib.devices import DEVICES, MIXED_PRECISIONS, make_accelerator, to_device
from nblib.errors import NblibError, ParameterError, is_int, is_number, require
from nblib.lr_schedule import SCHEDULES, decay_steps, make_scheduler
from nblib.module_groups import gradient_groups, group_norms
from nblib.paths import write_text_atomic
from nblib.threads import ThreadGovernor, pinned_threads, torch_threads
from nblib.versions import code_version

# Record keys the loop writes itself; loss_fn may not return scalars with these names.
_RESERVED = ("step", "lr", "grad_norm", "seconds", "samples_per_second", "loss_scale")
# fp16 only (GPU): GradScaler overflows are normal, but this many in a row means the
# gradients themselves are non-finite, not just the loss scale being too high.
_MAX_FP16_OVERFLOWS = 20


class NonFiniteError(NblibError, FloatingPointError):
    """A loss, logged scalar, gradient or parameter became NaN/Inf; ``step`` and ``name`` say where."""

    def __init__(self, message: str, step: int, name: str):
        super().__init__(message)
        self.step = step
        self.name = name
        self.history: History | None = None  # set by train(): the records before the failure


@dataclass
class TrainConfig:
    steps: int = 500  # optimizer steps in total (the schedule spans exactly these)
    lr: float = 3e-4  # peak learning rate of every parameter no lr_groups prefix matches
    # parameter-name prefix -> peak lr, e.g. {"backbone.": 1e-5, "head.": 1e-4}; the longest
    # matching prefix wins; a prefix matching no trainable parameter is an error
    lr_groups: dict[str, float] = field(default_factory=dict)
    # one of SCHEDULES; all multiply each group's peak lr. "exponential" ramps from
    # min_lr_rate * lr to lr over the run (an LR range test), ignoring warmup
    schedule: str = "constant"
    warmup_steps: int = 0  # linear ramp from 0 (WSD: from min_lr_rate) to the peak lr
    min_lr_rate: float = 0.1  # LR floor, a fraction of peak: cosine_with_min_lr, _restarts, WSD
    decay_fraction: float = 0.1  # WSD: fraction of steps spent in the final decay
    cycles: int = 1  # cosine_with_restarts: cosine cycles over the run (warm restarts, seed 001)
    weight_decay: float = 0.0  # AdamW decoupled weight decay, applied to every trainable tensor
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW betas
    grad_clip: float | None = 1.0  # max total grad norm; None = no clipping (norm still logged)
    seed: int = 0  # seeds python, numpy and torch at the start of train()
    device: str = "cpu"  # "cpu", "cuda" (error if absent) or "auto" (GPU when there is one)
    mixed_precision: str = "no"  # "no", "bf16" (CPU or GPU) or "fp16" (GPU only, loss scaling)
    checkpoint_dir: str | None = None  # where checkpoints go (step-*.pt); None = none
    checkpoint_every: int = 0  # save every N steps (0 = only at the end); needs checkpoint_dir
    keep_checkpoints: int = 2  # the newest this many checkpoints are kept
    # continue from the newest checkpoint in checkpoint_dir when there is one (a fresh run
    # otherwise); one written with other settings, identity or code is refused
    resume: bool = False
    # what else a checkpoint must match to be resumed, e.g. a notebook's parameters
    identity: dict = field(default_factory=dict)
    # log each module's gradient norm (nblib.module_groups) every N steps and at the last
    # step as "grad_norm/<module>" (0 = never)
    grad_flow_every: int = 0
    # torch CPU threads while training; None = the cores other jobs leave idle, measured
    # at the start and every few seconds (nblib.threads); restored afterwards
    threads: int | None = None
    progress: bool = True  # tqdm progress bar (main process only)
    desc: str = "train"  # progress-bar label

    def __post_init__(self):
        req = _require
        req(is_int(self.steps) and self.steps >= 1, "steps", self.steps, "an int >= 1")
        req(is_number(self.lr) and self.lr > 0, "lr", self.lr, "a number > 0")
        req(isinstance(self.lr_groups, dict), "lr_groups", self.lr_groups, "a dict prefix -> lr")
        for prefix, lr in self.lr_groups.items():
            req(isinstance(prefix, str) and prefix != "", "lr_groups", prefix, "non-empty str keys")
            req(is_number(lr) and lr > 0, f"lr_groups[{prefix!r}]", lr, "a number > 0")
        req(self.schedule in SCHEDULES, "schedule", self.schedule, f"one of {SCHEDULES}")
        w = self.warmup_steps
        # The bound shows steps' value: a short run (steps=60) keeps the default warmup of 100.
        req(
            is_int(w) and 0 <= w <= self.steps,
            "warmup_steps",
            w,
            f"an int in [0, steps={self.steps}]",
        )
        for name in ("min_lr_rate", "decay_fraction"):
            value = getattr(self, name)
            req(is_number(value) and 0 <= value <= 1, name, value, "a number in [0, 1]")
        c = self.cycles
        req(is_int(c) and c >= 1, "cycles", c, "an int >= 1")
        if self.schedule == "exponential":
            r = self.min_lr_rate
            req(0 < r < 1, "min_lr_rate", r, "a number in (0, 1) for the exponential ramp")
        if self.schedule == "warmup_stable_decay":
            req(w + decay_steps(self) <= self.steps, "warmup_steps", w, "w + decay <= steps")
        wd = self.weight_decay
        req(is_number(wd) and wd >= 0, "weight_decay", wd, "a number >= 0")
        req(
            isinstance(self.betas, (tuple, list)) and len(self.betas) == 2,
            "betas",
            self.betas,
            "a pair",
        )
        self.betas = tuple(self.betas)  # lists come from JSON/YAML configs
        for i, beta in enumerate(self.betas):
            req(is_number(beta) and 0 <= beta < 1, f"betas[{i}]", beta, "a number in [0, 1)")
        clip = self.grad_clip
        req(
            clip is None or (is_number(clip) and clip > 0),
            "grad_clip",
            clip,
            "None or a number > 0",
        )
        req(is_int(self.seed) and 0 <= self.seed < 2**32, "seed", self.seed, "an int in [0, 2**32)")
        req(self.device in DEVICES, "device", self.device, f"one of {DEVICES}")
        mp = self.mixed_precision
        req(mp in MIXED_PRECISIONS, "mixed_precision", mp, f"one of {MIXED_PRECISIONS}")
        # accelerate would silently train in fp32 here
        req(not (mp == "fp16" and self.device == "cpu"), "mixed_precision", mp, "'bf16' on cpu")
        ckdir = self.checkpoint_dir
        req(
            ckdir is None or isinstance(ckdir, (str, os.PathLike)),
            "checkpoint_dir",
            ckdir,
            "a path",
        )
        self.checkpoint_dir = None if ckdir is None else str(ckdir)
        for name in ("checkpoint_every", "grad_flow_every"):
            every = getattr(self, name)
            req(is_int(every) and every >= 0, name, every, "an int >= 0")
        keep = self.keep_checkpoints
        req(is_int(keep) and keep >= 1, "keep_checkpoints", keep, "an int >= 1")
        req(isinstance(self.identity, dict), "identity", self.identity, "a dict")
        th = self.threads
        req(th is None or (is_int(th) and th >= 1), "threads", th, "None or an int >= 1")
        for name in ("resume", "progress"):
            req(isinstance(getattr(self, name), bool), name, getattr(self, name), "True or False")
        every = self.checkpoint_every
        req(not every or ckdir is not None, "checkpoint_every", every, "checkpoint_dir set too")
        req(isinstance(self.desc, str), "desc", self.desc, "a string")


def _require(ok: bool, name: str, value: Any, expected: str) -> None:
    require(ok, "TrainConfig", name, value, expected)


# ----------------------------------------------------------------------------- helpers


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and every GPU)."""
    from accelerate.utils import set_seed

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    set_seed(seed)  # accelerate: the same, plus other accelerators (xpu, npu, ...)


def _param_groups(model: torch.nn.Module, config: TrainConfig) -> list[dict]:
    """One AdamW group for unmatched parameters (lr) and one per lr_groups prefix."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise ParameterError("train(): the model has no parameter with requires_grad=True")
    groups = {None: []} | {prefix: [] for prefix in config.lr_groups}
    for name, p in trainable:
        matches = [prefix for prefix in config.lr_groups if name.startswith(prefix)]
        groups[max(matches, key=len) if matches else None].append(p)
    for prefix, params in groups.items():
        if prefix is not None and not params:
            roots = sorted({n.split(".")[0] + "." for n, _ in trainable})
            raise ParameterError(
                f"TrainConfig.lr_groups prefix {prefix!r} matches no trainable parameter; "
                f"trainable parameter names start with {roots}"
            )
    return [
        {"params": params, "lr": config.lr_groups.get(prefix, config.lr), "prefix": prefix}
        for prefix, params in groups.items()
        if params  # the default group is empty when the prefixes cover everything
    ]


def _batch_stream(batches, start: int) -> Iterator:
    """Batches for steps start, start+1, ...: call ``batches(step)`` or cycle an iterable."""
    if callable(batches):
        return (batches(step) for step in count(start))
    if not isinstance(batches, Iterable):
        raise ParameterError(
            f"batches must be an iterable or a callable step -> batch, got {type(batches).__name__}"
        )

    def cycle():
        served = 0
        while True:
            before = served
            for batch in batches:
                served += 1
                yield batch
            if served == before:
                raise ParameterError(
                    f"batches ran out after {served} batches; pass a re-iterable "
                    "(list, DataLoader) or a callable step -> batch, not a one-shot iterator"
                )

    stream = cycle()
    for _ in range(start):  # resume: skip the batches already trained on
        next(stream)
    return stream


def batch_samples(batch: Any) -> int | None:
    """Samples in a batch: the leading dimension of its first array or tensor (depth
    first through dicts, lists and tuples); None when it holds none."""
    if isinstance(batch, (torch.Tensor, np.ndarray)):
        return int(batch.shape[0]) if batch.ndim else None
    items = batch.values() if isinstance(batch, dict) else batch
    if isinstance(items, (list, tuple)) or isinstance(batch, dict):
        for item in items:
            found = batch_samples(item)
            if found is not None:
                return found
    return None


def _split_loss(out: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """loss_fn's output -> (loss to backprop, {name: detached scalar}) with "loss" first."""
    if isinstance(out, torch.Tensor):
        out = {"loss": out}
    if not isinstance(out, dict) or "loss" not in out:
        raise ParameterError(
            f"loss_fn must return a scalar tensor or a dict with a 'loss' key, got {type(out).__name__}"
        )
    loss = out["loss"]
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ParameterError(
            f"loss_fn's 'loss' must be a scalar tensor, got {shape}; reduce it (e.g. .mean())"
        )
    if not loss.requires_grad:
        raise ParameterError(
            "loss_fn's 'loss' does not depend on any trainable parameter (requires_grad=False)"
        )
    scalars = {}
    for name, value in sorted(out.items(), key=lambda kv: kv[0] != "loss"):  # "loss" first
        if name in _RESERVED or name.startswith(("lr/", "grad_norm/")):
            raise ParameterError(
                f"loss_fn returned {name!r}, a name the loop logs itself; rename it"
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = torch.tensor(float(value))
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ParameterError(
                f"loss_fn's {name!r} must be a scalar (number or 1-element tensor) to be logged"
            )
        scalars[name] = value.detach().float().reshape(())
    return loss.reshape(()), scalars


def _first_nonfinite(named: list[tuple[str, torch.Tensor]]) -> str | None:
    """Name of the first tensor holding a NaN/Inf, or None; one device sync when all are fine."""
    named = [(n, t) for n, t in named if t is not None]
    if not named or bool(torch.stack([torch.isfinite(t).all() for _, t in named]).all()):
        return None
    return next(n for n, t in named if not bool(torch.isfinite(t).all()))


# ----------------------------------------------------------------------------- history


class History(list):
    """Per-step records (dicts: step, loss, lr, lr/<prefix>, grad_norm, seconds,
    samples_per_second, grad_norm/<module> every ``grad_flow_every`` steps, extras).
    ``resumed_from_step``: the step a resumed run continued from (None: a fresh run)."""

    resumed_from_step: int | None = None

    def column(self, name: str) -> np.ndarray:
        """Values of ``name`` over steps, shape (len(self),); NaN where a record lacks it."""
        if not any(name in r for r in self):
            known = sorted({k for r in self for k in r})
            raise ParameterError(f"History has no column {name!r}; columns: {known}")
        return np.asarray([r.get(name, np.nan) for r in self], dtype=float)

    def final(self, name: str = "loss", window: int = 10) -> float:
        """Mean of ``name`` over the last ``window`` records (a less noisy 'final loss')."""
        if window < 1:
            raise ParameterError(f"window={window} is invalid; expected an int >= 1")
        return float(np.nanmean(self.column(name)[-window:]))

    def to_frame(self):
        """A pandas DataFrame, one row per step."""
        import pandas as pd

        return pd.DataFrame(list(self))

    def save(self, path: str | os.PathLike) -> None:
        """Write JSON lines, one record per line."""
        write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in self))

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        lines = Path(path).read_text().splitlines()
        return cls(json.loads(line) for line in lines if line.strip())


# ----------------------------------------------------------------------------- the loop


def train(
    model: torch.nn.Module,
    batches: Iterable | Callable[[int], Any],
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor | dict],
    config: TrainConfig,
    callback: Callable[[int, dict, torch.nn.Module], bool | None] | None = None,
) -> History:
    """Train ``model`` in place for ``config.steps`` AdamW steps and return the History.

    batches: a callable ``step -> batch`` (deterministic, resumable) or an iterable of
        batches, re-iterated when exhausted (list, DataLoader). Tensors in nested
        dicts/lists/tuples are moved to the device.
    loss_fn(model, batch): a scalar tensor, or a dict with "loss" plus other scalars to
        log. Under DDP ``model`` is the DDP wrapper: call ``model(...)``, not submodules.
    callback(step, record, model): called after every step with the unwrapped model
        (``p.grad`` still holds that step's clipped gradient); return True to stop early.

    With ``checkpoint_dir``, a checkpoint is written every ``checkpoint_every`` steps and
    after the last (or an early stop); with ``resume``, training continues from the
    newest checkpoint there (the returned History holds the earlier records too and says
    ``resumed_from_step``) and ends as an uninterrupted run would at the same thread count.

    Raises NonFiniteError at the first NaN/Inf in the loss, a logged scalar, a gradient or
    a parameter, naming the step and the tensor.
    """
    if not isinstance(config, TrainConfig):
        raise ParameterError(f"config must be a TrainConfig, got {type(config).__name__}")
    seed_everything(config.seed)
    accelerator = make_accelerator(config.device, config.mixed_precision)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        _param_groups(model, config),
        lr=config.lr,
        betas=config.betas,
        weight_decay=config.weight_decay,
        # One fused kernel instead of a loop over tensors: ~3x faster steps for the small
        # policies trained on cached features here (CPU and CUDA both support it).
        fused=all(p.is_floating_point() for _, p in named),
    )
    scheduler = make_scheduler(optimizer, config)
    was_training = model.training
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    if accelerator.num_processes > 1 and isinstance(batches, torch.utils.data.DataLoader):
        # GPU-only (DDP): shard the DataLoader so each process gets different batches. A
        # list or a callable gives every process the same batches.
        batches = accelerator.prepare_data_loader(batches)

    history, start = History(), 0
    ckdir = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    ident = None
    if ckdir is not None:
        ident = run_identity(config, code_version(), device=accelerator.device.type)
    latest = checkpoints(ckdir)[-1:] if config.resume else []
    if latest:
        state = load_checkpoint(latest[0], accelerator, model, optimizer, scheduler, ident)
        history, start = History(state["history"]), state["step"]
        history.resumed_from_step = start
    stream = _batch_stream(batches, start)
    if latest:
        set_rng_state(state["rng"])  # after skipping batches, so steps see the saved RNG
    data = {"kind": "step -> batch" if callable(batches) else type(batches).__name__}

    from tqdm.auto import tqdm

    bar = tqdm(
        total=config.steps,
        initial=start,
        desc=config.desc,
        disable=not (config.progress and accelerator.is_main_process),
    )
    max_norm = config.grad_clip if config.grad_clip is not None else math.inf  # inf: measure only
    lr_keys = ["lr" if g["prefix"] is None else f"lr/{g['prefix']}" for g in optimizer.param_groups]
    overflows, saved_at, done = 0, start, start
    keep = config.keep_checkpoints
    save = partial(save_checkpoint, ckdir, accelerator, model, optimizer, scheduler, history, ident)
    flow_every = config.grad_flow_every
    groups = gradient_groups(accelerator.unwrap_model(model)) if flow_every else {}
    model.train()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(config.threads or torch_threads())
    governor = ThreadGovernor() if config.threads is None and pinned_threads() is None else None
    try:
        for step in range(start, config.steps):
            t0 = time.perf_counter()
            batch = next(stream)
            samples = batch_samples(batch)
            batch = to_device(batch, accelerator.device)
            optimizer.zero_grad(set_to_none=True)
            with accelerator.autocast():
                loss, scalars = _split_loss(loss_fn(model, batch))

            # Every process checks the mean over processes, so under DDP all of them raise
            # together instead of the others hanging in the gradient all-reduce.
            stacked = torch.stack([v.to(accelerator.device) for v in scalars.values()])
            values = accelerator.reduce(stacked, "mean")
            values = dict(zip(scalars, values.tolist(), strict=True))
            for name, value in values.items():
                if not math.isfinite(value):
                    params = accelerator.unwrap_model(model).named_parameters()
                    _raise_nonfinite_scalar(step, name, value, list(params), history)

            accelerator.backward(loss)
            # One fused norm over every gradient tells whether all are finite (NaN and Inf
            # propagate into it); only a non-finite norm pays for naming the tensor. fp16
            # (GPU): unscaled first, as accelerate's clip_grad_norm_ does.
            accelerator.unscale_gradients()
            grads = [p.grad for _, p in named if p.grad is not None]
            grad_norm = get_total_norm(grads) if grads else torch.zeros(())
            finite = bool(torch.isfinite(grad_norm))
            bad = None if finite else _first_nonfinite([(n, p.grad) for n, p in named])
            if not finite and (accelerator.scaler is None or overflows >= _MAX_FP16_OVERFLOWS):
                msg = f"step {step}: the gradient of parameter {bad!r} is not finite although "
                msg += f"the loss ({values['loss']:.6g}) is; look for sqrt/log/div at 0 or overflow"
                raise NonFiniteError(msg, step, bad)
            # GPU-only (fp16): a GradScaler overflow; the optimizer step below skips the update
            # and lowers the loss scale. Counted so a persistent overflow still raises above.
            overflows = 0 if finite else overflows + 1
            last = step + 1 == config.steps
            flow = {}
            if groups and (step % flow_every == 0 or last):  # before clipping: what arrived
                flow = {f"grad_norm/{k}": v for k, v in group_norms(groups).items()}
            if finite and max_norm < math.inf:  # p.grad becomes the clipped gradient
                clip_grads_with_norm_([p for _, p in named], max_norm, grad_norm)

            lrs = dict(zip(lr_keys, (g["lr"] for g in optimizer.param_groups), strict=True))
            optimizer.step()
            scheduler.step()
            # An update that makes a parameter non-finite makes the next loss non-finite,
            # where _raise_nonfinite_scalar names the parameter and this step's update; the
            # parameters themselves are scanned only before a checkpoint and after the last
            # step (a scan of every tensor each step cost ~10 % of a step here).
            checkpoint = ckdir is not None and config.checkpoint_every
            if last or (checkpoint and (step + 1) % config.checkpoint_every == 0):
                bad = _first_nonfinite(named)
                if bad is not None:
                    msg = f"step {step}: parameter {bad!r} is not finite after the optimizer "
                    msg += f"step (lrs {lrs}, grad norm {float(grad_norm):.6g}); lower lr or "
                    msg += "weight_decay"
                    raise NonFiniteError(msg, step, bad)

            record = {"step": step, **values, **lrs, "grad_norm": float(grad_norm), **flow}
            if accelerator.scaler is not None:  # GPU-only (fp16)
                record["loss_scale"] = float(accelerator.scaler.get_scale())
            record["seconds"] = seconds = time.perf_counter() - t0
            if samples is not None:
                record["samples_per_second"] = samples / seconds
            history.append(record)
            done = step + 1
            bar.update(1)
            shown = {"loss": f"{values['loss']:.4g}", "lr": f"{lrs[lr_keys[0]]:.2e}"}
            if samples is not None:  # the throughput of this step (tqdm's it/s: steps)
                shown["samples/s"] = f"{record['samples_per_second']:.0f}"
            bar.set_postfix(shown, refresh=False)

            if governor is not None:
                governor.step()
            stop = callback is not None and callback(step, record, accelerator.unwrap_model(model))
            if (
                ckdir is not None
                and config.checkpoint_every
                and done % config.checkpoint_every == 0
            ):
                save(data | {"position": done}, done, keep)
                saved_at = done
            if stop:
                break
        if ckdir is not None and saved_at != done:
            save(data | {"position": done}, done, keep)
    except NonFiniteError as err:
        err.history = history  # the records up to the failure (a resumed run's included)
        raise
    finally:
        bar.close()
        torch.set_num_threads(threads_before)
        # Undo accelerate's mixed-precision forward patch so later eval runs in full precision.
        accelerator.unwrap_model(model, keep_fp32_wrapper=False).train(was_training)
    return history


def _raise_nonfinite_scalar(step, name, value, named, history=()):
    """A NaN/Inf loss or logged scalar: say which, and whether a parameter (frozen or not) was
    (then the update of the step before, from ``history``, is what broke it)."""
    broken = _first_nonfinite(named)
    if broken is not None:
        cause = f"parameter {broken!r} was already non-finite before this step"
        if history:
            before = history[-1]
            lrs = {k: v for k, v in before.items() if k == "lr" or k.startswith("lr/")}
            cause += (
                f": step {before['step']}'s update made it so (lrs {lrs}, grad norm "
                f"{before['grad_norm']:.6g}); lower lr or weight_decay"
            )
    else:
        cause = (
            "all parameters are finite, so loss_fn or the forward pass made it (inputs? log/div 0?)"
        )
    what = "the loss" if name == "loss" else f"logged scalar {name!r}"
    raise NonFiniteError(f"step {step}: {what} is {value} ({name!r}); {cause}", step, name)
