"""The policy on top of a VLM: projector, proprio encoder, action expert, action head.

Data flow (seed 001, sizes scaled by the config)::

    VLM features (B, T, D_vlm) --Projector--> (B, T, d)  \\
    proprio (B, P) --ProprioEncoder--> (B, 1, d)           > ActionExpert: Q learnable queries
                                                          /  cross-attend; mean-pool -> cond (B, d)
    cond --head (flow matching | regression)--> actions (B, H, A)

The backbone is not part of this module: features come from :class:`Backbone.encode`
or, when the backbone is frozen, from the on-disk feature cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nblib.errors import ParameterError
from nblib.models.heads import HEADS, make_head


@dataclass
class PolicyConfig:
    """Sizes of the trainable part. Defaults are small enough for CPU overfit tests.

    The 7B reference of seed 001 is ``vlm_dim=3584, projector_hidden=1344, d_model=512,
    expert_layers=6, queries=16, horizon=16, action_dim=7, proprio_dim=27``.
    """

    vlm_dim: int
    proprio_dim: int
    action_dim: int
    horizon: int = 16
    d_model: int = 128
    projector_hidden: int = 256
    expert_layers: int = 2
    expert_heads: int = 4
    queries: int = 8  # learnable query tokens (seed 001: 16); 8 costs 20% less per step here
    head: str = "flow"  # "flow" (rectified flow matching) or "regression"
    head_hidden: int = 256
    regression_loss: str = "mse"  # "mse" or "l1" for the regression head
    flow_steps: int = 10  # integration steps at prediction time
    flow_method: str = "euler"  # "euler" or "heun"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vlm_dim", "action_dim", "horizon", "d_model", "expert_layers", "queries"):
            if getattr(self, name) < 1:
                raise ParameterError(f"PolicyConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.proprio_dim < 0:
            raise ParameterError(f"PolicyConfig.proprio_dim must be >= 0, got {self.proprio_dim}")
        if self.d_model % self.expert_heads:
            raise ParameterError(
                f"PolicyConfig.d_model ({self.d_model}) must be divisible by expert_heads ({self.expert_heads})"
            )
        if self.head not in HEADS:
            raise ParameterError(
                f"PolicyConfig.head must be 'flow' or 'regression', got {self.head!r}"
            )


class Projector(nn.Module):
    """2-layer MLP from VLM width to the policy width (3584 -> 1344 -> 512 for a 7B VLM)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ProprioEncoder(nn.Module):
    """Linear -> LayerNorm -> GELU -> Linear, one token per sample."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, out_dim),
            nn.LayerNorm(out_dim),
            nn.GELU(),
            nn.Linear(out_dim, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ActionExpert(nn.Module):
    """``queries`` learnable tokens cross-attend to the context; the mean is the condition."""

    def __init__(self, d_model: int, layers: int, heads: int, queries: int, dropout: float = 0.0):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(queries, d_model) * 0.02)
        layer = nn.TransformerDecoderLayer(
            d_model,
            heads,
            dim_feedforward=4 * d_model,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
        )
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self, context: torch.Tensor, context_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """context (B, T, d), context_mask (B, T) True where valid -> condition (B, d)."""
        q = self.queries[None].expand(context.shape[0], -1, -1)
        padding = None if context_mask is None else ~context_mask
        out = self.decoder(q, context, memory_key_padding_mask=padding)
        return self.norm(out).mean(dim=1)


class VLAPolicy(nn.Module):
    """Projector + proprio encoder + action expert + head, fed with VLM features."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = config
        self.projector = Projector(config.vlm_dim, config.projector_hidden, config.d_model)
        self.proprio = (
            ProprioEncoder(config.proprio_dim, config.d_model) if config.proprio_dim else None
        )
        self.expert = ActionExpert(
            config.d_model,
            config.expert_layers,
            config.expert_heads,
            config.queries,
            config.dropout,
        )
        kw = (
            {"hidden": config.head_hidden, "loss": config.regression_loss}
            if config.head == "regression"
            else {
                "hidden": config.head_hidden,
                "steps": config.flow_steps,
                "method": config.flow_method,
            }
        )
        self.head = make_head(config.head, config.d_model, config.horizon, config.action_dim, **kw)

    def condition(
        self, vlm: torch.Tensor, proprio: torch.Tensor | None, vlm_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """vlm (B, D) or (B, T, D), vlm_mask (B, T), proprio (B, P) -> condition (B, d)."""
        if vlm.dim() == 2:
            vlm = vlm[:, None]
        context = [self.projector(vlm)]
        masks = [
            vlm_mask
            if vlm_mask is not None
            else torch.ones(vlm.shape[:2], dtype=torch.bool, device=vlm.device)
        ]
        if self.proprio is not None:
            if proprio is None:
                raise ParameterError("this policy has a proprio encoder: pass proprio (B, P)")
            context.append(self.proprio(proprio)[:, None])
            masks.append(torch.ones(proprio.shape[0], 1, dtype=torch.bool, device=proprio.device))
        return self.expert(torch.cat(context, dim=1), torch.cat(masks, dim=1))

    def loss(self, batch: dict) -> torch.Tensor:
        cond = self.condition(batch["vlm"], batch.get("proprio"), batch.get("vlm_mask"))
        return self.head.loss(cond, batch["actions"], batch.get("action_mask"))

    @torch.no_grad()
    def predict(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        cond = self.condition(batch["vlm"], batch.get("proprio"), batch.get("vlm_mask"))
        return self.head.predict(cond, generator=generator)


def parameter_table(modules: dict[str, nn.Module]) -> list[dict]:
    """Rows ``{module, trainable, frozen, total}`` (parameter counts) plus a total row."""
    rows = []
    for name, module in modules.items():
        if module is None:
            continue
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        total = sum(p.numel() for p in module.parameters())
        rows.append(
            {"module": name, "trainable": trainable, "frozen": total - trainable, "total": total}
        )
    rows.append(
        {
            "module": "total",
            "trainable": sum(r["trainable"] for r in rows),
            "frozen": sum(r["frozen"] for r in rows),
            "total": sum(r["total"] for r in rows),
        }
    )
    return rows
