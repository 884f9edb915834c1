"""Geometry compressors (seed 002): G geometry tokens of a frozen 3-D encoder → K tokens
of the action expert's width, to be read by its cross-attention next to the VLM tokens.

Seed 002 injects MapAnything features (``raw_geom`` (B, G, 1536)) into a 16-layer DiT action
head (width 2048) and compares three ways of compressing them to K = 16 tokens:

``pool``
    One linear projection geom_dim → hidden, then the G tokens averaged in K consecutive
    groups: the same K tokens at every expert layer. 1536·2048 + 2048 = 3.15M parameters.
``per_layer``
    One linear projection per expert layer (then the same group pooling): different tokens
    at every layer. 16 × 3.15M = 50.36M.
``qformer``
    K learnable queries cross-attend (multi-head, ``heads``) over the projected geometry
    tokens: input-adaptive tokens. Projection 3.15M + queries 16·2048 + attention
    4 · (2048² + 2048) + LayerNorm 2 · 2048 = 19.97M.

Every compressor maps ``geom`` (B, G, geom_dim) with an optional ``mask`` (B, G), True where
a token is valid, to ``tokens`` (layers, B, K, hidden): one set per expert layer (``pool``
and ``qformer`` repeat theirs, without copying).
"""

from __future__ import annotations

import torch
from torch import nn

from nblib.errors import ParameterError

COMPRESSORS = ("pool", "per_layer", "qformer")


def group_pool(tokens: torch.Tensor, k: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, G, D) → (B, K, D): the mean of each of K consecutive groups of tokens (sizes
    differing by at most one when K does not divide G), ignoring masked tokens; a group with
    no valid token gives zeros."""
    batch, count, _ = tokens.shape
    if count < k:
        raise ParameterError(f"group_pool: {count} geometry tokens cannot fill K={k} groups")
    group = (torch.arange(count, device=tokens.device) * k) // count  # (G,) group of each token
    weights = nn.functional.one_hot(group, k).to(tokens.dtype)  # (G, K)
    weights = weights[None].expand(batch, -1, -1)
    if mask is not None:
        weights = weights * mask[..., None].to(tokens.dtype)
    sums = torch.einsum("bgk,bgd->bkd", weights, tokens)
    return sums / weights.sum(dim=1)[..., None].clamp_min(1.0)


class PoolCompressor(nn.Module):
    def __init__(self, geom_dim: int, hidden: int, k: int, layers: int):
        super().__init__()
        self.k, self.layers = k, layers
        self.proj = nn.Linear(geom_dim, hidden)

    def forward(self, geom: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        tokens = group_pool(self.proj(geom), self.k, mask)
        return tokens[None].expand(self.layers, -1, -1, -1)


class PerLayerCompressor(nn.Module):
    def __init__(self, geom_dim: int, hidden: int, k: int, layers: int):
        super().__init__()
        self.k = k
        self.proj = nn.ModuleList(nn.Linear(geom_dim, hidden) for _ in range(layers))

    def forward(self, geom: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return torch.stack([group_pool(proj(geom), self.k, mask) for proj in self.proj])


class QFormerCompressor(nn.Module):
    def __init__(self, geom_dim: int, hidden: int, k: int, layers: int, heads: int):
        super().__init__()
        if hidden % heads:
            raise ParameterError(f"qformer: hidden={hidden} is not divisible by heads={heads}")
        self.layers = layers
        self.proj = nn.Linear(geom_dim, hidden)
        self.queries = nn.Parameter(torch.randn(k, hidden) * 0.02)  # small init, as InfoBot's
        self.attention = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, geom: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        memory = self.proj(geom)
        queries = self.queries[None].expand(geom.shape[0], -1, -1)
        padding = None if mask is None else ~mask.bool()
        tokens, _ = self.attention(queries, memory, memory, key_padding_mask=padding)
        tokens = self.norm(tokens + queries)
        return tokens[None].expand(self.layers, -1, -1, -1)


def make_compressor(
    kind: str, geom_dim: int, hidden: int, k: int = 16, layers: int = 16, heads: int = 8
) -> nn.Module:
    """A compressor of :data:`COMPRESSORS` (seed 002's sizes by default for k, layers, heads)."""
    for name, value in (("geom_dim", geom_dim), ("hidden", hidden), ("k", k), ("layers", layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"make_compressor: {name}={value!r}; expected an int >= 1")
    if kind == "pool":
        return PoolCompressor(geom_dim, hidden, k, layers)
    if kind == "per_layer":
        return PerLayerCompressor(geom_dim, hidden, k, layers)
    if kind == "qformer":
        return QFormerCompressor(geom_dim, hidden, k, layers, heads)
    raise ParameterError(f"compressor {kind!r} is unknown; expected one of {list(COMPRESSORS)}")
