"""Training checkpoints: everything :func:`nblib.train.train` needs to resume a run.

A checkpoint (``step-00000200.pt`` in ``TrainConfig.checkpoint_dir``; the newest
``keep`` are kept, two by default) holds the model's parameters and buffers, the optimizer
and scheduler state, the history so far, the RNG state of python, numpy and torch (and
every GPU), the position in the data stream and the run's *identity*: the training
settings, the caller's parameters and the code version. It is written atomically, so a
crash mid-save leaves the previous checkpoint intact, and read with ``weights_only=True``.

A checkpoint whose identity differs from the run asking to resume is refused by
:func:`check_identity` with every difference named: continuing another run's weights
with other parameters or other code would silently mix two experiments.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nblib.errors import ParameterError
from nblib.paths import atomic_path

_NAME = re.compile(r"^step-(\d{8})\.pt$")
# TrainConfig fields that may change between a run and its resumption: where and how often
# checkpoints are written, how the run is displayed, how many threads it uses. Every other
# field shapes the numbers (steps, because the schedule spans them).
_FREE = ("checkpoint_dir", "checkpoint_every", "keep_checkpoints", "resume", "identity")
_FREE += ("threads", "progress", "desc", "grad_flow_every")


class CheckpointMismatch(ParameterError):
    """A checkpoint written by other parameters or another code version."""


def rng_state() -> dict:
    """The global RNG state of python, numpy, torch and (GPU only) every CUDA device."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        # numpy's key array as a list so torch.load(weights_only=True) can read it back
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():  # GPU only: one generator per device
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():  # GPU only
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_path(folder: str | Path, step: int) -> Path:
    """The file of the checkpoint taken after ``step`` completed steps."""
    return Path(folder) / f"step-{step:08d}.pt"


def checkpoints(folder: str | Path | None) -> list[Path]:
    """The checkpoints in ``folder``, oldest first (none when it does not exist)."""
    if folder is None or not Path(folder).is_dir():
        return []
    found = [p for p in Path(folder).iterdir() if _NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def identity(config, code: str, device: str | None = None) -> dict:
    """What a checkpoint must share with the run that resumes from it: ``config``'s
    training fields (a :class:`nblib.train.TrainConfig`), the caller's ``identity``
    (e.g. a notebook's parameters) and the code version. ``device``: the device type the
    run resolved to ("cpu", "cuda"), recorded instead of the one asked for wherever a
    ``device`` is named (the config and the caller's identity, e.g. a notebook's
    ``device`` parameter), so a run written with ``device="auto"`` resumes with
    ``device="cuda"`` on the same GPU node."""
    train = {k: v for k, v in asdict(config).items() if k not in _FREE}
    run = dict(config.identity)
    if device is not None:
        train["device"] = device
        if "device" in run:
            run["device"] = device
    # through JSON: tuples become lists (as they read back), and only plain values remain,
    # which torch.load(weights_only=True) accepts
    return json.loads(json.dumps({"train": train, "run": run, "code": code}, default=str))


def check_identity(path: Path, saved: dict, current: dict) -> None:
    """Raise :class:`CheckpointMismatch` naming every difference between the identity a
    checkpoint was written with and the current run's."""
    differences = []
    for part in ("train", "run"):
        old, new = saved.get(part, {}), current[part]
        for key in sorted(set(old) | set(new)):
            if old.get(key, "<unset>") != new.get(key, "<unset>"):
                where = "TrainConfig." if part == "train" else ""
                differences.append(
                    f"{where}{key}: {old.get(key, '<unset>')!r} in the checkpoint, "
                    f"{new.get(key, '<unset>')!r} now"
                )
    if saved.get("code") != current["code"]:
        differences.append(
            f"code: {saved.get('code')!r} in the checkpoint, {current['code']!r} now"
        )
    if differences:
        raise CheckpointMismatch(
            f"{path} was written by another run, so it is not resumed: "
            + "; ".join(differences)
            + f". Rerun with the checkpoint's settings, or start afresh: delete {path.parent} "
            "or set resume=False"
        )


def save_checkpoint(
    folder: Path, accelerator, model, optimizer, scheduler, history, ident, data, step, keep=2
):
    """Write the run's state after ``step`` completed steps to ``folder`` and delete all but
    the newest ``keep`` checkpoints. ``ident``: :func:`identity`; ``data``: where the data
    stream stands (what it is and its position), for the record."""
    if accelerator.is_main_process:  # under DDP every process holds the same state; one writes it
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "step": step,  # steps completed; training resumes at this step index
            "model": accelerator.unwrap_model(model).state_dict(),  # parameters and buffers
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "history": list(history),
            "rng": rng_state(),
            "data": data,
            "identity": ident,
        }
        path = checkpoint_path(folder, step)
        with atomic_path(path) as tmp:  # a crash mid-save leaves the previous one intact
            torch.save(state, tmp)
        for old in checkpoints(folder)[:-keep]:  # only after the new one is complete
            old.unlink(missing_ok=True)
    accelerator.wait_for_everyone()  # GPU-only (DDP): nobody runs ahead of the save


def load_checkpoint(path: Path, accelerator, model, optimizer, scheduler, ident) -> dict[str, Any]:
    """Check ``path``'s identity against ``ident`` (:func:`check_identity`), then load model,
    optimizer and scheduler state in place; returns the file's dict (``step``, ``history``
    records, ``rng`` for :func:`set_rng_state`, ``data``, ``identity``)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which
        raise ParameterError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict) or "identity" not in state:
        raise CheckpointMismatch(
            f"{path} is not a checkpoint of this version of nblib's training loop (no "
            f"identity); delete {path.parent} or set resume=False"
        )
    check_identity(path, state["identity"], ident)
    accelerator.unwrap_model(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state
