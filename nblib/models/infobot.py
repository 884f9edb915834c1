"""InfoBot-VLA: predict actions through a language-conditioned information bottleneck.

Seed 000's idea: when the scene alone determines the task (H(L|V) ~ 0), a VLA learns to
ignore the instruction. Forcing the action head to see only K tokens distilled from the
visual features, with queries that depend on the instruction, makes what reaches the head
depend on the language. Data flow (seed 000: K=8, D_b=256)::

    visual (B, N_v, D) --InfoBottleneckLayer | LanguageConditionedBottleneck--> z (B, K, D_b)
    z (+ a language token the caller may append) --InfoBotActionHead--> actions (B, H, A)
    loss = L1(actions) + beta * I(Z; V | L)     (MI term: MutualInformationEstimator)

Seed 000 collapsed at step 1850 (loss 0.0000) because NaNs from the bottleneck and from the
InfoNCE estimator were silently masked. The fixes live here: LayerNorm before every
projection, learnable tokens initialised at 0.02 scale, an estimator computed in float32
that cannot overflow, and ``ParameterError`` instead of masking on non-finite inputs. The
learning rate (the other fix) is the training loop's business; seed 000 also ran with the
MI term disabled (beta = 0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nblib.errors import ParameterError, is_int, is_number, require
from nblib.models.heads import _mlp, masked_mean

MIN_TEMPERATURE = 1e-3  # InfoNCE logits are bounded by 1 / temperature: at most 1000


def _check_dims(owner: str, **dims: int) -> None:
    # LayerNorm over a single feature returns its bias whatever the input: refuse size 1.
    for name, value in dims.items():
        require(
            is_int(value) and value >= 2, owner, name, value, "an int >= 2 (it is LayerNorm-ed)"
        )


def _check_features(owner: str, name: str, x: torch.Tensor, dim: int) -> None:
    if x.dim() != 3 or x.shape[-1] != dim:
        raise ParameterError(f"{owner}: {name} must be (B, N, {dim}), got {tuple(x.shape)}")


class _CrossAttentionBottleneck(nn.Module):
    """K learnable tokens cross-attend to the visual tokens; shared by both bottlenecks."""

    def __init__(self, in_dim: int, bottleneck_dim: int, tokens: int, heads: int):
        super().__init__()
        owner = type(self).__name__
        _check_dims(owner, in_dim=in_dim, bottleneck_dim=bottleneck_dim)
        require(is_int(tokens) and tokens >= 1, owner, "tokens", tokens, "an int >= 1")
        require(
            is_int(heads) and heads >= 1 and bottleneck_dim % heads == 0,
            owner,
            "heads",
            heads,
            f"an int >= 1 that divides bottleneck_dim={bottleneck_dim}",
        )
        self.in_dim, self.bottleneck_dim = in_dim, bottleneck_dim
        # 0.02 scale (seed 000's fix): the tokens start small next to anything added to them.
        self.tokens = nn.Parameter(0.02 * torch.randn(tokens, bottleneck_dim))
        self.visual_norm = nn.LayerNorm(in_dim)
        self.query_norm = nn.LayerNorm(bottleneck_dim)
        self.attn = nn.MultiheadAttention(
            bottleneck_dim, heads, kdim=in_dim, vdim=in_dim, batch_first=True
        )
        self.out_norm = nn.LayerNorm(bottleneck_dim)

    def _attend(
        self, queries: torch.Tensor, visual: torch.Tensor, visual_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """queries (B, K, D_b), visual (B, N, in_dim), visual_mask (B, N) -> (B, K, D_b)."""
        owner = type(self).__name__
        padding = None
        if visual_mask is not None:
            if visual_mask.shape != visual.shape[:2] or visual_mask.dtype != torch.bool:
                raise ParameterError(
                    f"{owner}: visual_mask must be a bool tensor of shape "
                    f"{tuple(visual.shape[:2])} (True = valid), got {visual_mask.dtype} "
                    f"{tuple(visual_mask.shape)}"
                )
            # A sample with no valid token makes every attention weight NaN: refuse it rather
            # than let the NaN reach the loss (how seed 000 collapsed).
            empty = (~visual_mask.any(dim=1)).nonzero().flatten().tolist()
            if empty:
                raise ParameterError(
                    f"{owner}: visual_mask has no valid token for sample(s) {empty}; "
                    "expected at least one True per row"
                )
            # Padded slots may hold anything, even NaN, and 0 * NaN = NaN inside the attention
            # sum: zero them so the output cannot depend on them at all.
            visual = visual.masked_fill(~visual_mask[..., None], 0.0)
            padding = ~visual_mask
        kv = self.visual_norm(visual)
        attended, _ = self.attn(
            self.query_norm(queries), kv, kv, key_padding_mask=padding, need_weights=False
        )
        # No residual from the queries: z holds only (weighted) visual content, so what the
        # head learns from z is what the bottleneck chose to keep from V.
        return self.out_norm(attended)


class InfoBottleneckLayer(_CrossAttentionBottleneck):
    """Compress visual tokens (B, N, in_dim) into ``tokens`` (K) tokens (B, K, bottleneck_dim).

    K learnable tokens (0.02 * randn) are the queries of one multi-head cross-attention
    over the visual tokens. LayerNorm is applied to the visual tokens before the key/value
    projections, to the queries before the query projection, and to the output.
    """

    def __init__(self, in_dim: int, bottleneck_dim: int = 256, tokens: int = 8, heads: int = 4):
        super().__init__(in_dim, bottleneck_dim, tokens, heads)

    def forward(
        self, visual: torch.Tensor, visual_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """visual (B, N, in_dim), visual_mask (B, N) bool, True = valid -> (B, K, D_b)."""
        _check_features(type(self).__name__, "visual", visual, self.in_dim)
        queries = self.tokens[None].expand(visual.shape[0], -1, -1)
        return self._attend(queries, visual, visual_mask)


class LanguageConditionedBottleneck(_CrossAttentionBottleneck):
    """Like :class:`InfoBottleneckLayer`, but the queries depend on the instruction.

    queries = tokens + language_proj(LayerNorm(language)), one projection of the language
    vector (B, language_dim) added to every token, so which visual content the K tokens
    gather depends on the instruction.
    """

    def __init__(
        self,
        in_dim: int,
        language_dim: int,
        bottleneck_dim: int = 256,
        tokens: int = 8,
        heads: int = 4,
    ):
        super().__init__(in_dim, bottleneck_dim, tokens, heads)
        _check_dims(type(self).__name__, language_dim=language_dim)
        self.language_dim = language_dim
        self.language_norm = nn.LayerNorm(language_dim)
        self.language_proj = nn.Linear(language_dim, bottleneck_dim)
        # The shift starts at the tokens' 0.02 scale (unit-variance input after the LayerNorm,
        # std 0.02 / sqrt(fan_in) weights): a default-initialised projection would be ~10x
        # larger and, after the query LayerNorm, make the K queries of a sample near-identical.
        nn.init.normal_(self.language_proj.weight, std=0.02 / math.sqrt(language_dim))
        nn.init.zeros_(self.language_proj.bias)

    def forward(
        self,
        visual: torch.Tensor,
        language: torch.Tensor,
        visual_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """visual (B, N, in_dim), language (B, language_dim), visual_mask (B, N) -> (B, K, D_b)."""
        owner = type(self).__name__
        _check_features(owner, "visual", visual, self.in_dim)
        if language.shape != (visual.shape[0], self.language_dim):
            raise ParameterError(
                f"{owner}: language must be ({visual.shape[0]}, {self.language_dim}) to match "
                f"visual, got {tuple(language.shape)}"
            )
        shift = self.language_proj(self.language_norm(language))
        return self._attend(self.tokens[None] + shift[:, None], visual, visual_mask)


def _rescale_rows(x: torch.Tensor) -> torch.Tensor:
    """Divide each row of x (B, D) by its max-abs value (all-zero rows are left at zero).

    The scale is detached: what follows (LayerNorm, L2 normalisation) is scale-invariant up
    to its eps, so the gradient barely depends on it, and differentiating through it would
    compute x / s**2, which overflows for tiny rows.
    """
    scale = x.abs().amax(dim=-1, keepdim=True).detach()
    return x / torch.where(scale > 0, scale, torch.ones_like(scale))


class MutualInformationEstimator(nn.Module):
    """Symmetric InfoNCE lower bound on I(Z; V) from a batch of B pairs (z_i, v_i).

    Each side goes through max-abs row rescaling -> LayerNorm -> Linear to ``proj_dim``
    -> max-abs rescaling -> L2 normalisation. The (B, B) cosine similarities divided by
    the temperature score every z against every v; ``loss`` is the mean of the two
    cross-entropies (each z must pick its own v among the B, and each v its own z) and
    ``mi = log(B) - loss``, a lower bound on I(Z; V) that can never exceed log(B).

    Train the estimator's own parameters to minimise ``loss`` (tighten the bound). Using
    ``mi`` as a penalty to *minimise* for the encoder is a min-max game (two optimisers or
    gradient reversal), and a lower bound going down does not prove the MI went down. This
    estimates I(Z; V), not I(Z; V | L): the negatives are the other samples of the batch,
    whatever their instruction.

    Numerics: computed in float32 whatever the input dtype, autocast disabled; rows are
    rescaled before anything can overflow; the temperature is clamped to >= 1e-3 so logits
    stay within +-1000; cross-entropy uses log-sum-exp. Finite inputs therefore give finite
    outputs (given finite weights; non-finite weights raise), and non-finite inputs raise
    :class:`ParameterError` naming ``z`` or ``v``.
    """

    def __init__(self, z_dim: int, v_dim: int, proj_dim: int = 128, temperature: float = 0.1):
        super().__init__()
        owner = type(self).__name__
        _check_dims(owner, z_dim=z_dim, v_dim=v_dim)
        require(is_int(proj_dim) and proj_dim >= 1, owner, "proj_dim", proj_dim, "an int >= 1")
        require(
            is_number(temperature) and temperature > 0,
            owner,
            "temperature",
            temperature,
            f"a finite number > 0 (values below {MIN_TEMPERATURE} are clamped to it)",
        )
        self.z_dim, self.v_dim, self.temperature = z_dim, v_dim, float(temperature)
        self.z_norm, self.v_norm = nn.LayerNorm(z_dim), nn.LayerNorm(v_dim)
        self.z_proj, self.v_proj = nn.Linear(z_dim, proj_dim), nn.Linear(v_dim, proj_dim)

    @staticmethod
    def _embed(x: torch.Tensor, norm: nn.LayerNorm, proj: nn.Linear) -> torch.Tensor:
        """x (B, D) of any float dtype -> float32 unit vectors (B, proj_dim)."""
        # Rescale before casting down: a finite float64 1e300 is inf in float32.
        x = _rescale_rows(x.to(torch.promote_types(x.dtype, torch.float32))).float()
        # The weights are cast too, so a module converted to bf16 still computes in float32.
        w, b = norm.weight.float(), norm.bias.float()
        x = F.layer_norm(x, norm.normalized_shape, w, b, norm.eps)
        x = _rescale_rows(F.linear(x, proj.weight.float(), proj.bias.float()))
        return F.normalize(x, dim=-1, eps=1e-6)

    def forward(self, z: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
        """z (B, z_dim), v (B, v_dim) -> ``{"loss": (), "mi": ()}``, float32 scalars.

        B = 1 gives loss = mi = 0 exactly: a single pair has no negatives to contrast, so
        the only logit is its own softmax and the batch says nothing about dependence.
        """
        owner = type(self).__name__
        for name, x, dim in (("z", z, self.z_dim), ("v", v, self.v_dim)):
            if x.dim() != 2 or x.shape[1] != dim:
                raise ParameterError(f"{owner}: {name} must be (B, {dim}), got {tuple(x.shape)}")
        if z.shape[0] != v.shape[0] or z.shape[0] < 1:
            raise ParameterError(
                f"{owner}: z and v must hold the same number B >= 1 of pairs, "
                f"got {z.shape[0]} and {v.shape[0]}"
            )
        with torch.autocast(device_type=z.device.type, enabled=False):
            zn = self._embed(z, self.z_norm, self.z_proj)
            vn = self._embed(v, self.v_norm, self.v_proj)
            tau = max(self.temperature, MIN_TEMPERATURE)
            logits = zn @ vn.T / tau
            labels = torch.arange(logits.shape[0], device=logits.device)
            loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
        # One host sync for all three checks; the inputs are named, never masked.
        z_ok, v_ok, loss_ok = torch.stack(
            [torch.isfinite(z).all(), torch.isfinite(v).all(), torch.isfinite(loss)]
        ).tolist()
        for name, x, ok in (("z", z, z_ok), ("v", v, v_ok)):
            if not ok:
                bad = int((~torch.isfinite(x)).sum())
                raise ParameterError(
                    f"{name} holds {bad} non-finite value(s) (NaN or Inf); "
                    f"{owner} expects finite features: find where they were produced"
                )
        if not loss_ok:  # finite inputs reach here only with non-finite estimator weights
            raise ParameterError(
                f"{owner}: non-finite InfoNCE loss from finite z and v: the estimator's own "
                "parameters hold NaN or Inf (a diverged update?); reinitialise it"
            )
        return {"loss": loss, "mi": math.log(logits.shape[0]) - loss}


class InfoBotActionHead(nn.Module):
    """H learnable action queries cross-attend to a context, then an MLP per query.

    context (B, T, context_dim) is the bottleneck output, optionally with a language token
    the caller appends. Each of the ``horizon`` queries (0.02 * randn) reads the context
    through one multi-head cross-attention (LayerNorm before the projections); the MLP maps
    each query to one action -> (B, H, A). Same interface as the heads of
    :mod:`nblib.models.heads`: ``loss(context, actions, mask)`` (masked ``l1`` or ``mse``)
    and ``predict(context)`` (deterministic).
    """

    def __init__(
        self,
        context_dim: int,
        horizon: int,
        action_dim: int,
        heads: int = 4,
        hidden: int = 256,
        loss: str = "l1",
    ):
        super().__init__()
        owner = type(self).__name__
        _check_dims(owner, context_dim=context_dim)
        for name, value in (("horizon", horizon), ("action_dim", action_dim), ("hidden", hidden)):
            require(is_int(value) and value >= 1, owner, name, value, "an int >= 1")
        require(
            is_int(heads) and heads >= 1 and context_dim % heads == 0,
            owner,
            "heads",
            heads,
            f"an int >= 1 that divides context_dim={context_dim}",
        )
        if loss not in ("l1", "mse"):
            raise ParameterError(f"InfoBotActionHead loss must be 'l1' or 'mse', got {loss!r}")
        self.context_dim, self.horizon, self.action_dim, self.kind = (
            context_dim,
            horizon,
            action_dim,
            loss,
        )
        self.queries = nn.Parameter(0.02 * torch.randn(horizon, context_dim))
        self.context_norm = nn.LayerNorm(context_dim)
        self.query_norm = nn.LayerNorm(context_dim)
        self.attn = nn.MultiheadAttention(context_dim, heads, batch_first=True)
        self.mlp = nn.Sequential(
            nn.LayerNorm(context_dim), _mlp([context_dim, hidden, hidden, action_dim])
        )

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """context (B, T, context_dim) -> actions (B, H, A)."""
        _check_features(type(self).__name__, "context", context, self.context_dim)
        q = self.queries[None].expand(context.shape[0], -1, -1)
        kv = self.context_norm(context)
        attended, _ = self.attn(self.query_norm(q), kv, kv, need_weights=False)
        # The residual carries each query's identity (which step of the chunk) to the MLP.
        return self.mlp(q + attended)

    @torch.no_grad()
    def predict(
        self, context: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Deterministic; ``generator`` is accepted for the heads' common interface only."""
        return self(context)

    def loss(
        self, context: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Masked mean error over (B, H, A); mask (B, H) True where the step is valid."""
        expected = (context.shape[0], self.horizon, self.action_dim)
        # A (B, 1, A) or (B, H) target would broadcast silently into a wrong loss.
        if actions.shape != expected:
            raise ParameterError(
                f"InfoBotActionHead: actions must be {expected}, got {tuple(actions.shape)}"
            )
        if mask is not None and mask.shape != expected[:2]:
            raise ParameterError(
                f"InfoBotActionHead: mask must be {expected[:2]}, got {tuple(mask.shape)}"
            )
        error = self(context) - actions
        return masked_mean(error.square() if self.kind == "mse" else error.abs(), mask)
