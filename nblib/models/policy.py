"""The policy on top of a VLM: projector, proprio encoder, action expert, action head.

Data flow (seed 001, sizes scaled by the config)::

    VLM features (B, T, D_vlm) --Projector--> (B, T, d)  \\
    proprio (B, P) --ProprioEncoder--> (B, 1, d)           > ActionExpert: Q learnable queries
                                                          /  cross-attend; mean-pool -> cond (B, d)
    cond --head (flow matching | regression)--> actions (B, H, A)

With ``head="infobot"`` (seed 000) the context goes through a language-conditioned
information bottleneck instead of the action expert: K tokens (width D_b) distilled from it,
queried with the projected last VLM token (the end of the instruction); an InfoBot action
head reads the K tokens plus that language token. Its loss is the L1 action error plus
``mi_beta`` times an InfoNCE estimate of I(Z; V) between the pooled bottleneck and the
pooled context (see :mod:`nblib.models.infobot`).

The backbone is not part of this module: features come from :class:`Backbone.encode`
or, when the backbone is frozen, from the on-disk feature cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nblib.errors import ParameterError
from nblib.models.geometry import COMPRESSORS, make_compressor
from nblib.models.heads import HEADS, make_head
from nblib.models.infobot import (
    InfoBotActionHead,
    LanguageConditionedBottleneck,
    MutualInformationEstimator,
)

#: Every head a policy can have: the condition heads of nblib.models.heads, and InfoBot.
POLICY_HEADS = (*HEADS, "infobot")


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
    head: str = "flow"  # "flow" (rectified flow matching), "regression" or "infobot"
    head_hidden: int = 256
    regression_loss: str = "mse"  # "mse" or "l1" for the regression head
    flow_steps: int = 10  # integration steps at prediction time
    flow_method: str = "euler"  # "euler" or "heun"
    dropout: float = 0.0
    bottleneck_tokens: int = 8  # infobot: K bottleneck tokens (seed 000: 8)
    bottleneck_dim: int = 64  # infobot: their width D_b (seed 000: 256)
    mi_beta: float = 0.0  # infobot: weight of the I(Z; V) penalty (seed 000 ran with 0)
    geometry: str = "none"  # geometry compressor (seed 002): none, pool, per_layer or qformer
    geom_dim: int = 0  # width of the geometry tokens it reads (nblib.data.geometry: 48)
    geom_tokens: int = 4  # K compressed geometry tokens per expert layer (seed 002: 16)

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
        if self.head not in POLICY_HEADS:
            raise ParameterError(
                f"PolicyConfig.head must be one of {POLICY_HEADS}, got {self.head!r}"
            )
        if self.head == "infobot" and self.bottleneck_dim % self.expert_heads:
            raise ParameterError(
                f"PolicyConfig.bottleneck_dim ({self.bottleneck_dim}) must be divisible by "
                f"expert_heads ({self.expert_heads})"
            )
        if not self.mi_beta >= 0:
            raise ParameterError(f"PolicyConfig.mi_beta must be >= 0, got {self.mi_beta}")
        if self.geometry not in ("none", *COMPRESSORS):
            raise ParameterError(
                f"PolicyConfig.geometry must be none or one of {COMPRESSORS}, got {self.geometry!r}"
            )
        if self.geometry != "none" and (self.head == "infobot" or self.geom_dim < 1):
            raise ParameterError(
                f"PolicyConfig.geometry={self.geometry!r} needs the action expert (not the "
                f"infobot head, got head={self.head!r}) and geom_dim >= 1 (got {self.geom_dim})"
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
        self,
        context: torch.Tensor,
        context_mask: torch.Tensor | None = None,
        layer_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """context (B, T, d), context_mask (B, T) True where valid -> condition (B, d).

        ``layer_tokens`` (L, B, K, d): extra tokens per decoder layer (seed 002's geometry
        tokens), appended to what layer i cross-attends to, as its DiT layers read
        cat(vl_embs[i], geom_tokens). The layers are run one by one (what
        nn.TransformerDecoder does, which takes one memory for all layers)."""
        out = self.queries[None].expand(context.shape[0], -1, -1)
        padding = None if context_mask is None else ~context_mask
        if layer_tokens is not None and padding is not None:  # the extra tokens are all valid
            valid = torch.zeros(layer_tokens.shape[1:3], dtype=torch.bool, device=padding.device)
            padding = torch.cat([padding, valid], dim=1)
        for i, layer in enumerate(self.decoder.layers):
            memory = context if layer_tokens is None else torch.cat([context, layer_tokens[i]], 1)
            out = layer(out, memory, memory_key_padding_mask=padding)
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
        if config.head == "infobot":
            self._build_infobot(config)
            return
        self.expert = ActionExpert(
            config.d_model,
            config.expert_layers,
            config.expert_heads,
            config.queries,
            config.dropout,
        )
        self.geometry = None
        if config.geometry != "none":
            self.geometry = make_compressor(
                config.geometry,
                config.geom_dim,
                config.d_model,
                k=config.geom_tokens,
                layers=config.expert_layers,
                heads=config.expert_heads,
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

    def _build_infobot(self, config: PolicyConfig) -> None:
        d, db = config.d_model, config.bottleneck_dim
        self.expert = self.geometry = None
        self.bottleneck = LanguageConditionedBottleneck(
            d, d, db, config.bottleneck_tokens, config.expert_heads
        )
        self.language = nn.Linear(d, db)  # the language token the action head reads too
        self.head = InfoBotActionHead(
            db, config.horizon, config.action_dim, config.expert_heads, config.head_hidden
        )
        self.mi = MutualInformationEstimator(db, d)

    def _context(
        self, vlm: torch.Tensor, proprio: torch.Tensor | None, vlm_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The tokens the expert (or bottleneck) reads, their mask, and how many are VLM's."""
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
        return torch.cat(context, dim=1), torch.cat(masks, dim=1), vlm.shape[1]

    def _bottleneck(self, vlm, proprio, vlm_mask) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """InfoBot: bottleneck tokens z (B, K, D_b), the head's context (z + language
        token) and what the MI term needs (pooled z and pooled context)."""
        context, mask, n_vlm = self._context(vlm, proprio, vlm_mask)
        # Left-padded VLM tokens: the last one is every sample's last real token, which
        # closes the instruction in the prompt.
        language = context[:, n_vlm - 1]
        z = self.bottleneck(context, language, mask)
        w = mask.to(context.dtype)[..., None]
        pooled = {"z": z.mean(dim=1), "v": (context * w).sum(1) / w.sum(1).clamp_min(1.0)}
        head_context = torch.cat([z, self.language(language)[:, None]], dim=1)
        return z, head_context, pooled

    def condition(
        self,
        vlm: torch.Tensor,
        proprio: torch.Tensor | None,
        vlm_mask: torch.Tensor | None = None,
        geom: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """vlm (B, D) or (B, T, D), vlm_mask (B, T), proprio (B, P), geom (B, G, geom_dim)
        with a geometry compressor -> condition (B, d); for InfoBot the bottleneck tokens'
        mean (B, D_b)."""
        if self.expert is None:
            return self._bottleneck(vlm, proprio, vlm_mask)[0].mean(dim=1)
        context, mask, _ = self._context(vlm, proprio, vlm_mask)
        return self.expert(context, mask, self._geometry_tokens(geom))

    def _geometry_tokens(self, geom: torch.Tensor | None) -> torch.Tensor | None:
        if self.geometry is None:
            return None
        if geom is None:
            raise ParameterError(
                f"this policy has a {self.config.geometry!r} geometry compressor: pass geom "
                f"(B, G, {self.config.geom_dim}) (nblib.data.geometry)"
            )
        return self.geometry(geom.float())

    @torch.no_grad()
    def stages(self, batch: dict) -> dict[str, torch.Tensor]:
        """Every sample's representation at each stage of :meth:`condition`, (B, d) each:
        ``projector`` (mean over the valid VLM tokens), ``proprio`` (the proprio embedding;
        absent without a proprio encoder), ``expert_<i>`` (the output of action-expert layer
        i, mean over its queries) and ``condition``. Recorded with forward hooks during one
        ordinary :meth:`condition` call, so they are exactly what the head receives."""
        seen: dict[str, torch.Tensor] = {}

        def keep(name):
            def hook(module, inputs, output):
                seen[name] = output

            return hook

        modules = {"projector": self.projector, "proprio": self.proprio}
        if self.expert is not None:
            layers = self.expert.decoder.layers
            modules |= {f"expert_{i}": layer for i, layer in enumerate(layers)}
        handles = [m.register_forward_hook(keep(n)) for n, m in modules.items() if m is not None]
        try:
            vlm, mask = batch["vlm"], batch.get("vlm_mask")
            cond = self.condition(vlm, batch.get("proprio"), mask, batch.get("geom"))
        finally:
            for h in handles:
                h.remove()
        out = {}
        projected = seen["projector"]
        if projected.dim() == 3:  # (B, T, d): average the valid tokens
            valid = (
                torch.ones(projected.shape[:2], device=projected.device) if mask is None else mask
            )
            w = valid.to(projected.dtype)[..., None]
            projected = (projected * w).sum(1) / w.sum(1).clamp_min(1.0)
        out["projector"] = projected
        if "proprio" in seen:
            out["proprio"] = seen["proprio"]
        for name in sorted((n for n in seen if n.startswith("expert_")), key=lambda n: int(n[7:])):
            out[name] = seen[name].mean(dim=1)
        out["condition"] = cond
        return out

    def loss_terms(self, batch: dict) -> dict[str, torch.Tensor]:
        """``{"loss": ...}`` for the training loop, plus, for InfoBot, ``action`` (the L1
        error), ``mi`` (the InfoNCE estimate of I(Z; V)) and ``mi_fit`` (the estimator's
        own loss). The estimator learns on detached features (it tightens its bound), while
        the policy is penalised by ``mi_beta`` times its estimate with the estimator's
        weights held fixed: a min-max game in one backward pass."""
        vlm, proprio, mask = batch["vlm"], batch.get("proprio"), batch.get("vlm_mask")
        if self.expert is not None:
            cond = self.condition(vlm, proprio, mask, batch.get("geom"))
            return {"loss": self.head.loss(cond, batch["actions"], batch.get("action_mask"))}
        _, head_context, pooled = self._bottleneck(vlm, proprio, mask)
        action = self.head.loss(head_context, batch["actions"], batch.get("action_mask"))
        fit = self.mi(pooled["z"].detach(), pooled["v"].detach())
        terms = {
            "action": action.detach(),
            "mi": fit["mi"].detach(),
            "mi_fit": fit["loss"].detach(),
        }
        loss = action + fit["loss"]
        if self.config.mi_beta:
            fixed = {k: v.detach() for k, v in self.mi.named_parameters()}
            penalty = torch.func.functional_call(self.mi, fixed, (pooled["z"], pooled["v"]))
            loss = loss + self.config.mi_beta * penalty["mi"]
        return {"loss": loss, **terms}

    def loss(self, batch: dict) -> torch.Tensor:
        return self.loss_terms(batch)["loss"]

    @torch.no_grad()
    def mi_estimate(self, batch: dict) -> float | None:
        """InfoBot: the estimator's I(Z; V) lower bound on this batch (nats); else None."""
        if self.expert is not None:
            return None
        _, _, pooled = self._bottleneck(batch["vlm"], batch.get("proprio"), batch.get("vlm_mask"))
        return float(self.mi(pooled["z"], pooled["v"])["mi"])

    @torch.no_grad()
    def predict(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        vlm, proprio, mask = batch["vlm"], batch.get("proprio"), batch.get("vlm_mask")
        if self.expert is None:
            return self.head.predict(self._bottleneck(vlm, proprio, mask)[1])
        cond = self.condition(vlm, proprio, mask, batch.get("geom"))
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
