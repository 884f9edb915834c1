"""The modules whose gradient norms the training loop logs (gradient flow, seed 002).

Seed 002 trained three geometry compressors on three GPUs and could not tell whether any
gradient reached them: the total gradient norm hides a module that receives none. The
loop therefore logs one norm per *module group*: each top-level child of the policy, each
of their children (the projector, the action expert, a geometry compressor, the head in
nblib's VLA; a plug-in's own parts), and each layer of a layer list below them (the action
expert's decoder layers). Only modules owning trainable parameters are listed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import get_total_norm

#: At most this many groups: a plug-in with hundreds of small children would otherwise
#: log hundreds of norms every time; the first ones (in module order) are kept.
MAX_GROUPS = 48
#: Layer lists this deep are listed layer by layer (PolicyWithBackbone's
#: ``policy.expert.decoder.layers`` is at depth 4; a VLM's blocks under LoRA at depth 4-5).
LAYER_DEPTH = 5


def gradient_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Dotted module name -> its trainable parameters, in module order: the top-level
    children, their children, and each item of an ``nn.ModuleList`` (the container of
    repeated layers: a transformer's blocks, ``policy.expert.decoder.layers.0``) at most
    :data:`LAYER_DEPTH` levels down. A model without children is one group named after
    its class."""
    chosen = set()
    for name, module in model.named_modules():
        depth = name.count(".") + 1 if name else 0
        if 1 <= depth <= 2:
            chosen.add(name)
        if isinstance(module, nn.ModuleList) and 1 <= depth <= LAYER_DEPTH:
            chosen.update(f"{name}.{i}" for i in range(len(module)))
    groups: dict[str, list[nn.Parameter]] = {}
    for name, module in model.named_modules():  # module order: layers follow their part
        if name in chosen and len(groups) < MAX_GROUPS:
            params = [p for p in module.parameters() if p.requires_grad]
            if params:
                groups[name] = params
    if not groups:
        params = [p for p in model.parameters() if p.requires_grad]
        groups = {type(model).__name__: params} if params else {}
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
