"""A backbone's identity: 16 hex digits over everything that decides its features.

The frozen-feature cache (:mod:`nblib.cache`) names its folders by it, so it changes
whenever the features can (any weight, LoRA, the config, the tokenizer, the image
processor, the chat template, the prompt layout, the autocast dtype) and never otherwise:
a new identity recomputes every cached feature. Keys that only record where or how a
checkpoint was saved are left out, so a saved and reloaded backbone keeps its identity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import torch

# Config keys that change with where/how a model was saved, not with what it computes.
_VOLATILE_CONFIG_KEYS = frozenset(
    {
        "_name_or_path",
        "transformers_version",
        "architectures",
        "_commit_hash",
        "_attn_implementation_autoset",
        "output_hidden_states",
        "output_attentions",
        "return_dict",
        "use_cache",
        "dtype",
        "torch_dtype",
    }
)
_VOLATILE_PROCESSOR_KEYS = frozenset({"processor_class", "_processor_class", "auto_map"})


def _clean(obj: Any, drop: frozenset[str]) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v, drop) for k, v in obj.items() if k not in drop}
    if isinstance(obj, list | tuple):
        return [_clean(v, drop) for v in obj]
    return obj


def processor_settings(processor: Any) -> dict[str, Any]:
    """What of ``processor`` shapes the features: its class, the image processor's
    settings, the tokenizer (minus padding/truncation), the padding side, the chat template."""
    settings: dict[str, Any] = {"class": type(processor).__name__}
    ip = getattr(processor, "image_processor", None)
    if ip is not None:
        settings["image_processor"] = _clean(ip.to_dict(), _VOLATILE_PROCESSOR_KEYS)
    tok = processor.tokenizer
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        spec.pop("padding", None)
        spec.pop("truncation", None)
        settings["tokenizer"] = spec
    else:
        settings["tokenizer"] = sorted(tok.get_vocab().items())
    settings["padding_side"] = tok.padding_side
    settings["chat_template"] = getattr(processor, "chat_template", None)
    return settings


def lora_settings(peft_config: Any, disabled: bool) -> dict[str, Any]:
    """A peft ``LoraConfig``'s settings that change outputs, and whether the adapter is
    bypassed (``Backbone.disable_adapter``)."""
    keys = ("r", "lora_alpha", "use_rslora", "use_dora", "bias", "fan_in_fan_out")
    out = {k: getattr(peft_config, k, None) for k in keys}
    tm = peft_config.target_modules
    out["target_modules"] = tm if isinstance(tm, str) else sorted(tm or [])
    out["disabled"] = disabled
    return out


def identity_hash(
    config: dict[str, Any],
    processor: Any,
    lora: dict[str, Any] | None,
    runtime: dict[str, Any],
    state_dict: Mapping[str, torch.Tensor],
) -> str:
    """BLAKE2b (8 bytes, hex) over the model ``config`` (``to_dict()``), the processor's
    settings, ``lora`` (None without LoRA), ``runtime`` settings and every tensor of
    ``state_dict`` (name, dtype, shape and bytes), fed in that order."""
    h = hashlib.blake2b(digest_size=8)

    def feed(tag: str, obj: Any) -> None:
        h.update(tag.encode())
        h.update(json.dumps(obj, sort_keys=True, default=str).encode())

    feed("config", _clean(config, _VOLATILE_CONFIG_KEYS))
    feed("processor", processor_settings(processor))
    feed("lora", lora)
    feed("runtime", runtime)
    for name, t in state_dict.items():
        t = t.detach()
        feed("tensor", [name, str(t.dtype), list(t.shape)])
        flat = t.to("cpu").contiguous().reshape(-1)
        h.update(flat.view(torch.uint8).numpy().data if flat.numel() else b"")
    return h.hexdigest()
