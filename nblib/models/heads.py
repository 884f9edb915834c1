"""Action heads: rectified-flow matching and direct regression (the baseline).

Both map a condition vector ``cond`` (B, C) to an action chunk (B, H, A) and share one
interface: ``loss(cond, actions, mask)`` for training and ``predict(cond)`` for
evaluation. The flow head's loss is a velocity error at random interpolation times, not
an action error: judge training by the actions ``predict`` returns (seed 001).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nblib.errors import ParameterError

HEADS = ("flow", "regression")


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` (B, H, A) over steps where ``mask`` (B, H) is True."""
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype)[..., None].expand_as(values)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class SinusoidalTime(nn.Module):
    """Embedding of a flow time t in [0, 1] (B,) -> (B, dim), as in diffusion models."""

    def __init__(self, dim: int, max_period: float = 1000.0):
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half) / half)
        self.register_buffer("freqs", freqs, persistent=False)
        self.mlp = _mlp([2 * half, dim, dim])

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = (t[:, None] * 1000.0) * self.freqs[None]
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=-1))


class RegressionHead(nn.Module):
    """MLP from the condition straight to the chunk; loss ``mse`` or ``l1``."""

    def __init__(
        self, cond_dim: int, horizon: int, action_dim: int, hidden: int = 256, loss: str = "mse"
    ):
        super().__init__()
        if loss not in ("mse", "l1"):
            raise ParameterError(f"regression loss must be 'mse' or 'l1', got {loss!r}")
        self.horizon, self.action_dim, self.kind = horizon, action_dim, loss
        self.net = _mlp([cond_dim, hidden, hidden, horizon * action_dim])

    def predict(self, cond: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.net(cond).view(-1, self.horizon, self.action_dim)

    def loss(
        self, cond: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        error = self.predict(cond) - actions
        return masked_mean(error.square() if self.kind == "mse" else error.abs(), mask)


class FlowMatchingHead(nn.Module):
    """Rectified flow: learn the velocity from noise x0 to actions x1 along straight paths.

    Training samples t ~ U(0, 1) and x0 ~ N(0, I), forms x_t = (1 - t) x0 + t x1 and
    regresses the velocity network v(x_t, t, cond) onto x1 - x0. Sampling integrates
    dx/dt = v from t = 0 to 1 with ``steps`` Euler or Heun steps.

    The velocity network sees ``concat(time_emb(t), cond_proj(cond), action_proj(x_t))``
    (seed 001's layout: 3 x width -> hidden -> hidden -> H*A).
    """

    def __init__(
        self,
        cond_dim: int,
        horizon: int,
        action_dim: int,
        width: int = 128,
        hidden: int = 256,
        steps: int = 10,
        method: str = "euler",
    ):
        super().__init__()
        if method not in ("euler", "heun"):
            raise ParameterError(
                f"flow integration method must be 'euler' or 'heun', got {method!r}"
            )
        if steps < 1:
            raise ParameterError(f"flow steps must be >= 1, got {steps}")
        self.horizon, self.action_dim, self.steps, self.method = horizon, action_dim, steps, method
        self.time = SinusoidalTime(width)
        self.cond_proj = nn.Linear(cond_dim, width)
        self.action_proj = nn.Linear(horizon * action_dim, width)
        self.net = _mlp([3 * width, hidden, hidden, horizon * action_dim])

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.time(t), self.cond_proj(cond), self.action_proj(x.flatten(1))], dim=-1)
        return self.net(h).view_as(x)

    def loss(
        self, cond: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        noise = torch.randn_like(actions)
        t = torch.rand(actions.shape[0], device=actions.device, dtype=actions.dtype)
        x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * actions
        return masked_mean((self.velocity(x_t, t, cond) - (actions - noise)).square(), mask)

    @torch.no_grad()
    def predict(
        self, cond: torch.Tensor, generator: torch.Generator | None = None, steps: int | None = None
    ) -> torch.Tensor:
        steps = steps or self.steps
        shape = (cond.shape[0], self.horizon, self.action_dim)
        x = torch.randn(shape, generator=generator, device=cond.device, dtype=cond.dtype)
        dt = 1.0 / steps
        for i in range(steps):
            t = torch.full((shape[0],), i * dt, device=cond.device, dtype=cond.dtype)
            v = self.velocity(x, t, cond)
            if self.method == "heun":
                # Heun: average the slope at both ends of the step (2nd order).
                v_next = self.velocity(x + dt * v, t + dt, cond)
                v = 0.5 * (v + v_next)
            x = x + dt * v
        return x


def make_head(kind: str, cond_dim: int, horizon: int, action_dim: int, **kw) -> nn.Module:
    if kind == "flow":
        return FlowMatchingHead(cond_dim, horizon, action_dim, **kw)
    if kind == "regression":
        return RegressionHead(cond_dim, horizon, action_dim, **kw)
    raise ParameterError(f"head must be one of {HEADS}, got {kind!r}")
