"""The modules whose gradient norms the training loop logs (gradient flow, seed 002).

Seed 002 trained three geometry compressors on three GPUs and could not tell whether any
gradient reached them: the total gradient norm hides a module that receives none. The
loop therefore logs one norm per *module group*: each top-level child of the policy, each
of their children (the projector, the action expert, a geometry compressor, the head in
nblib's VLA; a plug-in's own parts), and each layer of a layer list among them (the action
expert's layers). Only modules owning trainable parameters are listed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import get_total_norm

#: At most this many groups: a plug-in with hundreds of small children would otherwise
#: log hundreds of norms every time; the first ones (in module order) are kept.
MAX_GROUPS = 48


def _layer_list(module: nn.Module) -> bool:
    return isinstance(module, (nn.ModuleList, nn.Sequential)) and len(module) > 1


def gradient_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Dotted module name -> its trainable parameters, in module order: the top-level
    children, their children, and the items of layer lists up to two levels below a
    top-level child (``policy.expert.layers.0``). A model without children is one group
    named after its class."""
    groups: dict[str, list[nn.Parameter]] = {}

    def add(name: str, module: nn.Module) -> None:
        params = [p for p in module.parameters() if p.requires_grad]
        if params and len(groups) < MAX_GROUPS:
            groups[name] = params

    for name, child in model.named_children():
        add(name, child)
        for sub_name, sub in child.named_children():
            add(f"{name}.{sub_name}", sub)
            # layers directly below, or one container further down (expert.layers.0)
            lists = [(sub_name, sub)] if _layer_list(sub) else []
            lists += [(f"{sub_name}.{n}", m) for n, m in sub.named_children() if _layer_list(m)]
            for list_name, layers in lists:
                for i, layer in enumerate(layers):
                    add(f"{name}.{list_name}.{i}", layer)
    if not groups:
        add(type(model).__name__, model)
    return groups


def group_norms(groups: dict[str, list[nn.Parameter]]) -> dict[str, float]:
    """The L2 norm of each group's current gradient (0.0 when none of its parameters has
    one: the loss does not reach it). One device sync for all groups."""
    norms, names = [], []
    for name, params in groups.items():
        grads = [p.grad for p in params if p.grad is not None]
        names.append(name)
        norms.append(get_total_norm(grads) if grads else torch.zeros((), device=params[0].device))
    values = torch.stack([n.float().to(norms[0].device) for n in norms]).tolist() if norms else []
    return dict(zip(names, values, strict=True))
