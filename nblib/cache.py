"""Frozen-feature cache: backbone outputs on disk, keyed by what produced them.

A frozen 3-7B VLM gives the same features for the same inputs every epoch, so they are
computed once (seed 002's MapAnything cache, seed 003's cached latents). The key of an
entry is a hash of the input images' bytes and shapes and the instruction; entries live
in a folder named after :meth:`Backbone.identity` (config + weights + processor), so a
different backbone, a LoRA update or another checkpoint can never read stale features.

The cache is bypassed whenever any backbone parameter requires grad (a trained backbone
or LoRA): its outputs then change every step and must be recomputed with gradients.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from nblib.errors import ParameterError
from nblib.paths import atomic_write

OUTPUTS = ("last", "tokens")


def sample_key(images: list[np.ndarray], instruction: str) -> str:
    """Content hash of one sample's camera frames and instruction."""
    h = hashlib.blake2b(digest_size=20)
    for frame in images:
        frame = np.ascontiguousarray(frame)
        h.update(f"{frame.shape}{frame.dtype}".encode())
        h.update(frame.tobytes())
    h.update(instruction.encode())
    return h.hexdigest()


class FeatureCache:
    """Per-sample feature arrays under ``root/<backbone identity>/<output>/``.

    ``output="last"`` stores the last-token state (D,); ``"tokens"`` the valid tokens of
    the last layer (T_i, D), padded on the left again when a batch is assembled.
    """

    def __init__(self, root: str | Path, backbone_identity: str, output: str = "last"):
        if output not in OUTPUTS:
            raise ParameterError(f"cache output must be one of {OUTPUTS}, got {output!r}")
        self.output = output
        self.dir = Path(root) / backbone_identity / output
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = self.bypassed = 0

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        path = self._path(key)
        return np.load(path) if path.exists() else None

    def put(self, key: str, value: np.ndarray) -> None:
        path = self._path(key)
        with atomic_write(path, "wb") as f:  # a crash never leaves a truncated entry
            np.save(f, value)

    def stats(self) -> dict:
        files = list(self.dir.glob("*/*.npy"))
        return {
            "hits": self.hits,
            "misses": self.misses,
            "bypassed": self.bypassed,
            "entries": len(files),
            "megabytes": round(sum(f.stat().st_size for f in files) / 1e6, 2),
        }


def _assemble(arrays: list[np.ndarray], output: str) -> dict[str, torch.Tensor]:
    if output == "last":
        return {"vlm": torch.from_numpy(np.stack(arrays))}
    width = max(a.shape[0] for a in arrays)
    dim = arrays[0].shape[1]
    tokens = np.zeros((len(arrays), width, dim), dtype=arrays[0].dtype)
    mask = np.zeros((len(arrays), width), dtype=bool)
    for i, a in enumerate(arrays):  # left padding, like the tokenizer's
        tokens[i, width - len(a) :] = a
        mask[i, width - len(a) :] = True
    return {"vlm": torch.from_numpy(tokens), "vlm_mask": torch.from_numpy(mask)}


def encode_batch(
    backbone,
    images: list[list[np.ndarray]],
    instructions: list[str],
    output: str = "last",
    cache: FeatureCache | None = None,
) -> dict[str, torch.Tensor]:
    """Backbone features for a batch, through the cache when the backbone is frozen.

    Returns ``{"vlm": (B, D)}`` for ``last`` or ``{"vlm": (B, T, D), "vlm_mask": (B, T)}``
    for ``tokens``. With a training backbone the result carries gradients.
    """
    if cache is not None and cache.output != output:
        raise ParameterError(f"cache holds '{cache.output}' features, asked for '{output}'")
    if cache is None or backbone.requires_grad:  # a training backbone is never cached
        if cache is not None:
            cache.bypassed += len(images)
        out = backbone.encode(images, instructions, output=(output,))
        if output == "last":
            return {"vlm": out["last"]}
        return {"vlm": out["tokens"], "vlm_mask": out["attention_mask"].bool()}

    keys = [sample_key(imgs, text) for imgs, text in zip(images, instructions, strict=True)]
    found = [cache.get(k) for k in keys]
    todo = [i for i, v in enumerate(found) if v is None]
    cache.hits += len(keys) - len(todo)
    cache.misses += len(todo)
    if todo:
        out = backbone.encode(
            [images[i] for i in todo], [instructions[i] for i in todo], output=(output,)
        )
        for j, i in enumerate(todo):
            if output == "last":
                value = out["last"][j]
            else:
                value = out["tokens"][j][out["attention_mask"][j].bool()]
            found[i] = value.detach().float().cpu().numpy()
            cache.put(keys[i], found[i])
    return _assemble(found, output)
