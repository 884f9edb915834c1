"""The plug-in contract: what a factory is given, the batches a plug-in sees, and the checks
its answers must pass.

``factory(info, **policy_kwargs)`` returns a ``torch.nn.Module`` with

- ``predict_action_chunk(batch) -> (B, horizon, action_dim)`` in the dataset's units
  (required);
- ``forward(batch) -> (loss, logs_dict)`` (required to train: notebooks 01, 03, 02's
  optional training);
- ``reset()`` (optional; called before each closed-loop episode);
- ``probe_stages: dict[str, str]`` (optional; stage name -> submodule path for notebook 02).

Batches follow LeRobot's policy convention: ``observation.images.<camera>`` float32
(B, 3, H, W) in [0, 1], ``observation.state`` float32 (B, state_dim) and ``action`` float32
(B, horizon, action_dim) in the dataset's units (the policy normalises itself with
``info.stats``), ``action_is_pad`` bool (B, horizon) (steps past the episode's end), and
``task``: B instruction strings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nblib.errors import PluginError

STAT_NAMES = ("mean", "std", "min", "max")
IMAGE_KEY = "observation.images."
STATE_KEY = "observation.state"


@dataclass(frozen=True)
class PolicyInfo:
    """What a factory is told about the data (keep these names: plug-ins read them)."""

    action_dim: int
    state_dim: int
    cameras: tuple[str, ...]
    image_size: tuple[int, int]  # (H, W)
    horizon: int  # action-chunk length
    stats: dict = field(repr=False)  # {"action"|"state": {"mean"|"std"|"min"|"max": array}}
    instructions: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """A JSON-able copy (arrays as lists), as a saved run records it."""
        return {
            "action_dim": self.action_dim,
            "state_dim": self.state_dim,
            "cameras": list(self.cameras),
            "image_size": list(self.image_size),
            "horizon": self.horizon,
            "stats": {
                kind: {name: np.asarray(values).tolist() for name, values in stats.items()}
                for kind, stats in self.stats.items()
            },
            "instructions": list(self.instructions),
        }

    @classmethod
    def from_json(cls, data: dict) -> PolicyInfo:
        stats = {
            kind: {name: np.asarray(values, dtype=np.float32) for name, values in group.items()}
            for kind, group in data["stats"].items()
        }
        return cls(
            int(data["action_dim"]),
            int(data["state_dim"]),
            tuple(data["cameras"]),
            tuple(int(v) for v in data["image_size"]),
            int(data["horizon"]),
            stats,
            tuple(data.get("instructions", ())),
        )


def policy_info(store, horizon: int, stats, image_size: tuple[int, int]) -> PolicyInfo:
    """The info of ``store``'s data: its widths, cameras and instructions, ``stats``
    (:class:`nblib.data.normalization.NormStats` of the training demos) and the frames'
    (H, W)."""

    def arrays(s) -> dict:
        return {name: np.asarray(getattr(s, name), dtype=np.float32) for name in STAT_NAMES}

    height, width = image_size
    return PolicyInfo(
        action_dim=int(store.mapping.action_dim),
        state_dim=int(store.mapping.proprio_dim),
        cameras=tuple(store.cameras),
        image_size=(int(height), int(width)),
        horizon=int(horizon),
        stats={"action": arrays(stats.actions), "state": arrays(stats.proprio)},
        instructions=tuple(sorted({store.instruction[d] or "" for d in store.demos} - {""})),
    )


def images_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    """(B, 3, H, W) float32 in [0, 1] from B (H, W, 3) uint8 frames."""
    array = np.stack([np.asarray(f) for f in frames])
    # contiguous, as a DataLoader's collated batch is (some models .view() their pixels)
    return torch.from_numpy(array).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def make_batch(
    images: list[list[np.ndarray]],
    cameras: tuple[str, ...],
    state: np.ndarray,
    task: list[str],
    action: np.ndarray | torch.Tensor | None = None,
    action_is_pad: np.ndarray | torch.Tensor | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """A batch in the contract's keys. ``images``: per sample one (H, W, 3) uint8 frame per
    camera (in ``cameras`` order); ``state`` (B, state_dim) and ``action``
    (B, horizon, action_dim) in the dataset's units."""
    batch: dict[str, Any] = {
        f"{IMAGE_KEY}{camera}": images_tensor([frames[c] for frames in images]).to(device)
        for c, camera in enumerate(cameras)
    }
    batch[STATE_KEY] = torch.as_tensor(np.asarray(state), dtype=torch.float32, device=device)
    batch["task"] = list(task)
    if action is not None:
        batch["action"] = torch.as_tensor(action, dtype=torch.float32).to(device)
    if action_is_pad is not None:
        batch["action_is_pad"] = torch.as_tensor(action_is_pad, dtype=torch.bool).to(device)
    return batch


def check_module(model: object, spec: str) -> torch.nn.Module:
    """``model`` if it is an ``nn.Module`` with ``predict_action_chunk`` and, when it has
    ``probe_stages``, every stage names a submodule."""
    if not isinstance(model, torch.nn.Module):
        raise PluginError(
            f"policy {spec!r}: the factory returned a {type(model).__name__}; expected a "
            "torch.nn.Module"
        )
    if not callable(getattr(model, "predict_action_chunk", None)):
        raise PluginError(
            f"policy {spec!r}: {type(model).__name__} has no predict_action_chunk(batch) "
            "method (required: it returns (B, horizon, action_dim) in the dataset's units)"
        )
    stages = getattr(model, "probe_stages", None)
    if stages is not None:
        check_stages(model, stages, spec)
    return model


def check_stages(model: torch.nn.Module, stages: object, spec: str) -> dict[str, str]:
    """``stages`` (stage name -> submodule path) when every path is a submodule."""
    if not isinstance(stages, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in stages.items()
    ):
        raise PluginError(
            f"policy {spec!r}: probe_stages must be a dict of stage name -> submodule path "
            f"(str -> str), got {stages!r}"
        )
    known = [name for name, _ in model.named_modules() if name]
    for stage, path in stages.items():
        try:
            model.get_submodule(path)
        except AttributeError:
            close = [n for n in known if n.endswith(path.rsplit(".", 1)[-1])][:5]
            raise PluginError(
                f"policy {spec!r}: probe stage {stage!r} names {path!r}, which is not a "
                f"submodule of {type(model).__name__}"
                + (f" (similar: {', '.join(close)})" if close else "")
            ) from None
    return dict(stages)


def check_chunk(out: object, batch_size: int, info: PolicyInfo, spec: str) -> torch.Tensor:
    """``predict_action_chunk``'s answer as a float tensor, if it is (B, horizon,
    action_dim) and finite."""
    expected = (batch_size, info.horizon, info.action_dim)
    if isinstance(out, np.ndarray):
        out = torch.from_numpy(out)
    if not isinstance(out, torch.Tensor):
        raise PluginError(
            f"policy {spec!r}: predict_action_chunk returned a {type(out).__name__}; "
            f"expected a tensor of shape {expected}"
        )
    if tuple(out.shape) != expected:
        raise PluginError(
            f"policy {spec!r}: predict_action_chunk returned shape {tuple(out.shape)}; "
            f"expected (B, horizon, action_dim) = {expected}"
        )
    if not out.is_floating_point():
        raise PluginError(
            f"policy {spec!r}: predict_action_chunk returned dtype {out.dtype}; expected floats"
        )
    bad = ~torch.isfinite(out)
    if bool(bad.any()):
        raise PluginError(
            f"policy {spec!r}: predict_action_chunk returned {int(bad.sum())} non-finite "
            f"value(s) (NaN/Inf) of {out.numel()}"
        )
    return out.float()


def check_loss(out: object, spec: str) -> dict[str, torch.Tensor]:
    """``forward``'s ``(loss, logs)`` as the training loop's dict (``loss`` plus logged
    scalars), if the loss is a finite scalar tensor that carries a gradient."""
    if isinstance(out, (tuple, list)) and len(out) == 2:
        loss, logs = out
    else:
        raise PluginError(
            f"policy {spec!r}: forward(batch) returned a {type(out).__name__}; expected "
            "(loss, logs_dict)"
        )
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise PluginError(f"policy {spec!r}: forward's loss is {shape}; expected a scalar tensor")
    if not loss.requires_grad:
        raise PluginError(
            f"policy {spec!r}: forward's loss carries no gradient (computed under no_grad, "
            "detached, or from no trainable parameter)"
        )
    value = float(loss.detach())
    if not math.isfinite(value):
        raise PluginError(f"policy {spec!r}: forward's loss is {value}; expected a finite scalar")
    terms = {"loss": loss.reshape(())}
    for name, item in dict(logs or {}).items():
        if name == "loss":
            continue
        try:
            terms[str(name)] = torch.as_tensor(float(item))
        except (TypeError, ValueError):
            raise PluginError(
                f"policy {spec!r}: forward's logs[{name!r}] is a {type(item).__name__}; "
                "expected a number or a one-element tensor"
            ) from None
    return terms


def build(factory, info: PolicyInfo, kwargs: dict, spec: str) -> torch.nn.Module:
    """``factory(info, **kwargs)``, checked (:func:`check_module`)."""
    if not isinstance(kwargs, dict):
        raise PluginError(f"policy {spec!r}: policy_kwargs must be a dict, got {kwargs!r}")
    try:
        model = factory(info, **kwargs)
    except Exception as exc:
        raise PluginError(
            f"policy {spec!r}: the factory raised {type(exc).__name__}: {exc} "
            f"(called with info and policy_kwargs {kwargs})"
        ) from exc
    return check_module(model, spec)
