"""Training checkpoints: everything :func:`nblib.train.train` needs to resume a run.

One file (``last.pt`` in ``TrainConfig.checkpoint_dir``) holds the model's parameters and
buffers, the optimizer and scheduler state, the history so far, the RNG state of python,
numpy and torch (and every GPU) and the config. It is written atomically, so a crash
mid-save leaves the previous checkpoint intact, and read with ``weights_only=True``.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nblib.paths import atomic_path


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


def save_checkpoint(path: Path, accelerator, model, optimizer, scheduler, history, config, step):
    """Write the run's state after ``step`` completed steps; ``config`` is a dataclass."""
    if accelerator.is_main_process:  # under DDP every process holds the same state; one writes it
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "step": step,  # steps completed; training resumes at this step index
            "model": accelerator.unwrap_model(model).state_dict(),  # parameters and buffers
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "history": list(history),
            "rng": rng_state(),
            "config": asdict(config),
        }
        with atomic_path(path) as tmp:  # a crash mid-save leaves the previous last.pt intact
            torch.save(state, tmp)
    accelerator.wait_for_everyone()  # GPU-only (DDP): nobody runs ahead of the save


def load_checkpoint(path: Path, accelerator, model, optimizer, scheduler) -> dict[str, Any]:
    """Load model, optimizer and scheduler state from ``path`` in place; returns the file's
    dict (``step``, ``history`` records, ``rng`` for :func:`set_rng_state`, ``config``)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    accelerator.unwrap_model(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state
