"""What a backbone reads: one chat prompt per sample (its camera frames' image
placeholders, then the instruction) and the frames, turned into the processor's tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from nblib.errors import ParameterError

# Bump when the prompt layout changes: features (and so cache keys) change with it.
PROMPT_VERSION = 1


def chat_prompt(processor: Any, n_images: int, instruction: str) -> str:
    """One sample's chat prompt: ``n_images`` image placeholders, then the instruction."""
    if getattr(processor, "chat_template", None):
        content = [{"type": "image"} for _ in range(n_images)]
        content.append({"type": "text", "text": instruction})
        messages = [{"role": "user", "content": content}]
        return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    image_token = getattr(processor, "image_token", "<|image_pad|>")
    vocab = processor.tokenizer.get_vocab()
    if "<|vision_start|>" in vocab and "<|vision_end|>" in vocab:
        image_token = f"<|vision_start|>{image_token}<|vision_end|>"
    return (
        f"<|im_start|>user\n{image_token * n_images}{instruction}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def processor_inputs(
    processor: Any, images: Sequence[Sequence[Any]], instructions: Sequence[str]
) -> dict:
    """The processor's tensors (``input_ids``, ``attention_mask``, ``pixel_values``, ...) for a
    batch: one list of camera frames (uint8 (H, W, 3) arrays, tensors or PIL images) and
    one instruction per sample, padded to the longest prompt on the tokenizer's padding side
    (:class:`~nblib.models.backbone.Backbone` sets it to the left)."""
    if isinstance(instructions, str) or not isinstance(instructions, Sequence):
        raise ParameterError("instructions: expected a list of strings, one per sample")
    if not isinstance(images, Sequence) or len(images) != len(instructions):
        raise ParameterError(
            f"images: expected a list of {len(instructions)} samples (one per instruction), "
            f"each a list of camera frames; got {type(images).__name__} of "
            f"{len(images) if hasattr(images, '__len__') else '?'}"
        )
    if not instructions:
        raise ParameterError("instructions: empty batch")
    frames, prompts = [], []
    for i, (sample, text) in enumerate(zip(images, instructions, strict=True)):
        if isinstance(sample, np.ndarray | torch.Tensor | Image.Image) and (
            isinstance(sample, Image.Image) or sample.ndim == 3
        ):
            sample = [sample]  # one frame given without its list
        if len(sample) == 0:
            raise ParameterError(f"images[{i}]: a sample needs at least one camera frame")
        if not isinstance(text, str):
            raise ParameterError(f"instructions[{i}]: expected str, got {type(text).__name__}")
        frames.append([_as_frame(f, f"[{i}][{j}]") for j, f in enumerate(sample)])
        prompts.append(chat_prompt(processor, len(sample), text))
    return processor(images=frames, text=prompts, return_tensors="pt", padding=True)


def _as_frame(frame: Any, where: str) -> Image.Image:
    if isinstance(frame, torch.Tensor):
        frame = frame.detach().cpu().numpy()
    if isinstance(frame, Image.Image):
        return frame.convert("RGB")
    arr = np.asarray(frame)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ParameterError(
            f"images{where}: expected a uint8 (H, W, 3) camera frame, got dtype {arr.dtype} "
            f"shape {arr.shape}"
        )
    return Image.fromarray(arr)
