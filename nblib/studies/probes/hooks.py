"""A plug-in policy's stages, captured with forward hooks while it predicts.

A plug-in names its stages in ``probe_stages`` (stage name -> submodule path); notebook
02's ``stages`` parameter selects some of them (a list of names) or adds and overrides
paths (a dict). Each stage's output during ``predict_action_chunk`` is taken as the first
tensor it returns (of a tuple, list, dict or ``ModelOutput``), with sequence and spatial
dimensions mean-pooled: (B, D) stays, (B, T, D) is averaged over T, (B, C, H, W...) over
the spatial dimensions. A module run on several items per sample (B x cameras images) is
pooled per item and its items concatenated per sample.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from nblib.errors import PluginError
from nblib.plugins.contract import check_stages


def first_tensor(output) -> torch.Tensor | None:
    """The first tensor of a module's output (itself, or the first found in a tuple, list
    or mapping, depth first); None when there is none."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        for item in output:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def pooled(tensor: torch.Tensor, batch: int, stage: str, spec: str) -> np.ndarray:
    """(batch, D) float64 from one stage's output (see the module's docstring)."""
    x = tensor.detach().float()
    if x.ndim == 3:
        x = x.mean(1)
    elif x.ndim >= 4:
        x = x.flatten(2).mean(-1)
    elif x.ndim == 1:
        x = x[:, None]
    if x.ndim == 0 or x.shape[0] % batch:
        raise PluginError(
            f"policy {spec!r}: stage {stage!r} returned shape {tuple(tensor.shape)}, whose "
            f"first dimension is not a multiple of the batch's {batch} samples"
        )
    return x.reshape(batch, -1).double().cpu().numpy()


def selected_stages(model: torch.nn.Module, stages, defaults: bool, spec: str) -> dict[str, str]:
    """The stages to capture: the plug-in's ``probe_stages``; ``stages`` a dict adds or
    overrides paths, a list selects names (unless it is the notebook's default list of
    nblib's stage names, ``defaults``)."""
    own = dict(getattr(model, "probe_stages", None) or {})
    if isinstance(stages, dict):
        own |= stages
    elif not defaults:
        unknown = [s for s in stages if s not in own and s != "images"]
        if unknown:
            raise PluginError(
                f"policy {spec!r}: stages {unknown} are not among its probe_stages "
                f"{list(own) or '(none declared)'}; pass a dict such as "
                "{'vision': 'encoder'} to name a submodule"
            )
        own = {s: own[s] for s in stages if s in own}
    return check_stages(model, own, spec)


class StageRecorder:
    """Forward hooks on the stages' submodules; :meth:`take` returns what one call of
    ``predict_action_chunk`` produced, as (B, D) arrays in stage order."""

    def __init__(self, model: torch.nn.Module, stages: dict[str, str], spec: str):
        self.stages, self.spec = stages, spec
        self._seen: dict[str, list[torch.Tensor]] = {}
        self._handles = [
            model.get_submodule(path).register_forward_hook(self._hook(name))
            for name, path in stages.items()
        ]

    def _hook(self, name: str):
        def hook(module, inputs, output):
            tensor = first_tensor(output)
            if tensor is not None:
                self._seen.setdefault(name, []).append(tensor)

        return hook

    def take(self, batch: int) -> dict[str, np.ndarray]:
        out = {}
        for name, path in self.stages.items():
            calls = self._seen.get(name)
            if not calls:
                raise PluginError(
                    f"policy {self.spec!r}: stage {name!r} ({path}) returned no tensor during "
                    "predict_action_chunk (is the submodule used to predict?)"
                )
            # A module called once per camera or per step: its calls side by side.
            out[name] = np.concatenate([pooled(t, batch, name, self.spec) for t in calls], 1)
        self._seen = {}
        return out

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
