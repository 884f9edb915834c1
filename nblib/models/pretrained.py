"""Local image-text-to-text checkpoints: the transformers model and its processor, read
from a directory with local files only (nothing is downloaded).

Qwen2-VL / Qwen2.5-VL checkpoints get :class:`Qwen2_5_VLNoVideoProcessor`, an image-only
processor: transformers' own ``Qwen2_5_VLProcessor`` also builds a video processor, which
needs torchvision. Every other model goes through ``AutoProcessor``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoImageProcessor,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    Qwen2_5_VLProcessor,
)

from nblib.errors import ParameterError


class Qwen2_5_VLNoVideoProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor for images only: no video processor (that one needs torchvision).

    ``ProcessorMixin`` derives its sub-processors from ``__init__``'s parameter names, so
    dropping ``video_processor`` from the signature is what makes it optional.
    ``AutoProcessor`` does not know this class: load it with :func:`load_processor`.
    """

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=None,
            chat_template=chat_template,
            **kwargs,
        )


def _read_chat_template(path: Path) -> str | None:
    jinja = path / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    js = path / "chat_template.json"
    if js.is_file():
        template = json.loads(js.read_text()).get("chat_template")
        return template if isinstance(template, str) else None
    return None


def load_processor(path: str | Path, model_type: str | None = None):
    """Load a checkpoint's processor from local files, checking what comes back.

    Qwen2-VL / Qwen2.5-VL checkpoints get :class:`Qwen2_5_VLNoVideoProcessor` built from the
    tokenizer + image processor (``AutoProcessor`` would need torchvision for the video
    processor, or would silently return only the tokenizer for a custom processor class).
    Other models go through ``AutoProcessor`` and must expose an image processor and a
    tokenizer.
    """
    path = Path(path)
    if model_type is None and (path / "config.json").is_file():
        model_type = json.loads((path / "config.json").read_text()).get("model_type")
    what = f"backbone: processor files in {str(path)!r}"
    if model_type in ("qwen2_vl", "qwen2_5_vl"):
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            image_processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise ParameterError(
                f"{what}: could not load the tokenizer/image processor ({err}); the directory "
                "needs tokenizer files and a processor/preprocessor config. Pass backbone='tiny' "
                "or a complete local checkpoint directory"
            ) from err
        chat_template = _read_chat_template(path) or getattr(tokenizer, "chat_template", None)
        processor = Qwen2_5_VLNoVideoProcessor(
            image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template
        )
    else:
        try:
            processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise ParameterError(f"{what}: could not load a processor ({err})") from err
    if getattr(processor, "image_processor", None) is None or not hasattr(processor, "tokenizer"):
        raise ParameterError(
            f"{what}: expected a processor with an image processor and a tokenizer, got "
            f"{type(processor).__name__}; pass backbone='tiny' or an image-text-to-text checkpoint"
        )
    return processor


def load_pretrained(
    path: Path, device: str | torch.device = "cpu", dtype: Any = None
) -> tuple[nn.Module, Any]:
    """The image-text-to-text model and processor saved in the directory ``path``.

    ``dtype`` None means float32 on CPU and the checkpoint's own dtype on ``device``'s
    type elsewhere; the model is loaded on the CPU (the caller moves it to ``device``). A missing directory, config or
    weights is a :class:`ParameterError` saying what to pass.
    """
    hint = (
        "pass backbone='tiny' or a local checkpoint directory holding config.json, the "
        "model weights and the processor/tokenizer files"
    )
    if not path.is_dir():
        raise ParameterError(f"backbone: checkpoint directory {str(path)!r} does not exist; {hint}")
    if not (path / "config.json").is_file():
        raise ParameterError(f"backbone: {str(path)!r} has no config.json; {hint}")
    device = torch.device(device)
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            path, local_files_only=True, dtype=_resolve_dtype(dtype, device)
        )
    except (OSError, ValueError, KeyError) as err:
        raise ParameterError(
            f"backbone: could not load an image-text-to-text model from {str(path)!r} "
            f"({err}); {hint}"
        ) from err
    return model, load_processor(path, getattr(model.config, "model_type", None))


def _resolve_dtype(dtype: Any, device: torch.device) -> Any:
    if dtype is None:
        return torch.float32 if device.type == "cpu" else "auto"
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if isinstance(dtype, str) and isinstance(getattr(torch, dtype, None), torch.dtype):
        return getattr(torch, dtype)
    raise ParameterError(
        f"dtype: expected None, 'auto', a torch.dtype or a name like 'bfloat16', got {dtype!r}"
    )
