"""Is the pipeline wired the way its configuration says? (seed 001's LoRA bug)

Seed 001 trained for weeks with LoRA modules that were registered, saved and counted but
never hooked into the VLM's forward pass. Two checks catch that class of bug:

* :func:`lora_check`: give every adapter weight (parameters named ``lora_*``) small random
  values, then compare the backbone's output with the adapters as they are and with every
  adapter weight at zero (what a disabled adapter contributes), and backpropagate through
  the output. Adapters in the forward path change the output and receive gradients; an
  unhooked one does neither. Works for peft's LoRA and for hand-made adapters alike; every
  weight is restored afterwards.
* :func:`gradient_check`: one backward pass of the policy's loss; every frozen module must
  get no gradient and every trainable one a non-zero gradient.
"""

from __future__ import annotations

import torch
from torch import nn

# An adapter changes the output by more than this (relative to the output's scale) when it
# is in the forward path with weights of 0.05 std; float noise alone stays below 1e-6.
APPLIED_TOL = 1e-5


def adapter_parameters(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in module.named_parameters() if "lora_" in n]


def peft_lora_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The adapter weights of every peft LoRA layer in ``model``, found by the layers'
    type (any model: a plug-in's own VLM too), named by their path."""
    from peft.tuners.lora import LoraLayer

    found = []
    for prefix, module in model.named_modules():
        if isinstance(module, LoraLayer):
            found += [(f"{prefix}.{n}", p) for n, p in module.named_parameters() if "lora_" in n]
    return found


def lora_check(backbone, images, instructions, scale: float = 0.05, seed: int = 0) -> dict:
    """Are ``backbone``'s LoRA adapters in its forward path? (:func:`adapter_check` on
    its last-token state; ``images``/``instructions``: a small batch as
    :meth:`Backbone.encode` takes it.)"""
    return adapter_check(
        adapter_parameters(backbone.model),
        lambda: backbone.encode(images, instructions, output="last")["last"],
        scale=scale,
        seed=seed,
    )


def adapter_check(lora, output, loss=None, scale: float = 0.05, seed: int = 0) -> dict:
    """Are the adapter weights ``lora`` ((name, parameter) pairs) in the forward path?

    Every adapter weight gets small random values; ``output()`` (a tensor) is compared
    with them as they are and with every one at zero, and ``loss()`` (default: the mean
    square of ``output()``) is backpropagated to them. Returns ``adapters`` (tensors),
    ``output_change`` (max |on - off| over max |off|), ``applied`` (change >
    ``APPLIED_TOL``), ``with_gradient`` / ``without_gradient`` (counts; ``unreached`` names
    up to 5 of the latter) and ``ok``. With no adapter at all: ``adapters`` 0 and ``ok``
    None. Every weight is restored afterwards.
    """
    if not lora:
        return {"adapters": 0, "applied": None, "ok": None, "reason": "no LoRA adapters"}
    saved = {n: (p.detach().clone(), p.requires_grad) for n, p in lora}
    g = torch.Generator().manual_seed(seed)
    try:
        with torch.no_grad():
            for _, p in lora:
                p.copy_(torch.randn(p.shape, generator=g).to(p) * scale)
        for _, p in lora:
            p.requires_grad_(True)
        with torch.no_grad():
            on = output().detach()
        with torch.enable_grad():
            value = loss() if loss is not None else output().square().mean()
            if value.requires_grad:
                grads = torch.autograd.grad(value, [p for _, p in lora], allow_unused=True)
            else:  # no adapter weight is in the graph at all
                grads = [None] * len(lora)
        with torch.no_grad():
            for _, p in lora:
                p.zero_()
            off = output().detach()
    finally:
        with torch.no_grad():
            for n, p in lora:
                p.copy_(saved[n][0])
                p.requires_grad_(saved[n][1])
    change = float((on - off).abs().max() / off.abs().max().clamp_min(1e-12))
    unreached = [
        n for (n, _), gr in zip(lora, grads, strict=True) if gr is None or not gr.abs().sum() > 0
    ]
    applied = change > APPLIED_TOL
    return {
        "adapters": len(lora),
        "output_change": change,
        "applied": applied,
        "with_gradient": len(lora) - len(unreached),
        "without_gradient": len(unreached),
        "unreached": unreached[:5],
        "ok": applied and not unreached,
    }


def gradient_check(model: nn.Module, loss_fn, batch, modules: dict[str, nn.Module]) -> list[dict]:
    """One backward pass of ``loss_fn(model, batch)``; a row per entry of ``modules``
    (name -> module, None entries skipped): ``trainable`` and ``frozen`` parameter counts,
    ``grad_norm`` of the trainable ones, ``frozen_with_grad`` (frozen tensors that got a
    gradient: should be 0), ``trainable_without_grad`` (trainable tensors with no or an
    all-zero gradient: should be 0) and ``ok``. Gradients are cleared afterwards."""
    model.zero_grad(set_to_none=True)
    loss = loss_fn(model, batch)
    loss = loss["loss"] if isinstance(loss, dict) else loss
    loss.backward()
    rows = []
    try:
        for name, module in modules.items():
            if module is None:
                continue
            params = list(module.parameters())
            trainable = [p for p in params if p.requires_grad]
            frozen = [p for p in params if not p.requires_grad]
            norms = [p.grad.norm() for p in trainable if p.grad is not None]
            silent = sum(1 for p in trainable if p.grad is None or not p.grad.abs().sum() > 0)
            leaked = sum(1 for p in frozen if p.grad is not None)
            rows.append(
                {
                    "module": name,
                    "trainable": sum(p.numel() for p in trainable),
                    "frozen": sum(p.numel() for p in frozen),
                    "grad_norm": float(torch.stack(norms).norm()) if norms else 0.0,
                    "frozen_with_grad": leaked,
                    "trainable_without_grad": silent,
                    "ok": leaked == 0 and silent == 0,
                }
            )
    finally:
        model.zero_grad(set_to_none=True)
    return rows
