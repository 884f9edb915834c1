"""Where and in what precision the training loop runs, through ``accelerate``.

``device`` is one of :data:`DEVICES`: "cpu", "cuda" (an error without a GPU) or "auto"
(the GPU when there is one). ``mixed_precision`` is one of :data:`MIXED_PRECISIONS`: "no",
"bf16" (CPU or GPU) or "fp16" (GPU only, with loss scaling). Under ``accelerate launch``
(several GPUs) the launcher's settings hold.
"""

from __future__ import annotations

from typing import Any

import torch

from nblib.errors import ParameterError

DEVICES = ("cpu", "cuda", "auto")
MIXED_PRECISIONS = ("no", "bf16", "fp16")


def make_accelerator(device: str, mixed_precision: str):
    """An Accelerator for ``device``/``mixed_precision``, also when an earlier call used others.

    accelerate keeps one process-wide state and refuses (or silently ignores) a different
    device or precision later in the same process, which notebooks do all the time. In a
    single process we reset that state; under ``accelerate launch`` the launcher's settings hold.
    """
    from accelerate import Accelerator, PartialState
    from accelerate.state import AcceleratorState

    want = "cpu" if device == "cpu" else ("cuda" if torch.cuda.is_available() else None)
    kwargs = dict(
        cpu=device == "cpu",
        mixed_precision=mixed_precision,
        # Step the scheduler once per optimizer step. accelerate's default steps it
        # num_processes times per step under DDP, which would end the schedule early.
        step_scheduler_with_optimizer=False,
    )
    try:
        accelerator = Accelerator(**kwargs)
        ok = want is None or accelerator.device.type == want
    except ValueError:  # "AcceleratorState has already been initialized and cannot be changed"
        ok = False
    if not ok:
        if PartialState().num_processes > 1:
            raise ParameterError(
                f"TrainConfig device={device!r}/mixed_precision={mixed_precision!r} "
                "disagree with the accelerate launch settings; change one of them"
            )
        AcceleratorState._reset_state(reset_partial_state=True)
        accelerator = Accelerator(**kwargs)
    if device == "cuda" and accelerator.device.type != "cuda":
        raise ParameterError(
            "TrainConfig.device='cuda' but no CUDA GPU is available; use 'cpu' or 'auto'"
        )
    if mixed_precision == "fp16" and accelerator.scaler is None:
        raise ParameterError(
            f"TrainConfig.mixed_precision='fp16' needs a GPU, got {accelerator.device}; use 'bf16'"
        )
    return accelerator


def to_device(batch: Any, device: torch.device | str) -> Any:
    """Move every tensor inside nested dicts/lists/tuples to ``device``; leave the rest alone."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return type(batch)((k, to_device(v, device)) for k, v in batch.items())
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
