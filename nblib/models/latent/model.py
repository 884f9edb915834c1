"""A small latent-action quantiser (LAQ / LAPA style): the model, its checkpoint file, and
the token-order ablation.

Seed 004 asks whether discrete latent-action tokens mean the same motion across datasets.
To study that without a 5 GB checkpoint, a CPU-sized LAQ is trained on the embedded frames
(:mod:`nblib.models.latent.training`) and its tokens are written in the table format users
export from their own checkpoints (:mod:`nblib.models.latent.tokens`).

The model (``LatentActionModel``)::

    (frame_t, frame_t+k) -> conv encoder -> seq_len latents (B, L, D)      ``latents``
                         -> nearest codebook entry, straight-through         ``encode_tokens``
    frame_t + tokens     -> conv U-Net of frame_t, FiLM-conditioned on the
                            token vectors -> frame_t + predicted change      ``decode``

Quantiser: the classic VQ-VAE one (nearest entry, straight-through gradient, codebook loss
``|sg(z) - e|^2`` plus ``commitment * |z - sg(e)|^2``), chosen over EMA updates because it
has no extra state to save and one optimizer trains everything. Latents and codes are
l2-normalised by default (nearest = highest cosine similarity). A small codebook trained
this way collapses onto a few entries, so codes that got fewer than ``dead_threshold`` of a
uniform share of assignments during the last ``restart_dead_every`` training steps are
re-initialised to random recent encoder outputs (dead-code restart).

The decoder predicts the *change* from frame_t (zero-initialised output layer, so an
untrained model copies frame_t): reconstruction is judged against that copy baseline,
which every loss dict also logs as ``copy``. The training loss uses the reconstruction MSE
divided by the batch's copy MSE (see ``loss``). Check that the decoder uses the tokens with
``permutation_ablation``: on deterministic scripted demos a decoder can predict frame_t+k
from frame_t alone, so a low reconstruction error by itself proves nothing.

Frames are uint8 (B, H, W, 3), numpy or torch, resized to ``image_size`` inside; MSEs are
in [0, 1] pixel units.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nblib.errors import ParameterError, is_int, require
from nblib.models.files import load_tagged, save_tagged

FORMAT = "nblib.latent_action_model/1"
# Columns of every token table (tokenize_dataset and load_token_file), then token_0..L-1.

# ----------------------------------------------------------------------------- config


@dataclass
class LatentActionConfig:
    image_size: int = 64  # frames are resized to this square size (multiple of 16)
    channels: int = 16  # conv width of the first level; deeper levels use 2x this
    codebook_size: int = 16  # K discrete codes
    code_dim: int = 32  # D, size of one latent / codebook vector
    seq_len: int = 2  # L tokens per frame pair
    commitment: float = 0.25  # beta of the commitment loss |z - sg(e)|^2 (VQ-VAE's value)
    restart_dead_every: int = 50  # training steps between dead-code checks; 0 = never restart
    # a code is dead when it got fewer than this fraction of a uniform share (1/K) of the
    # assignments since the last check
    dead_threshold: float = 0.1
    recent_size: int = 2048  # recent encoder outputs kept as restart candidates
    # l2-normalise latents and codes (nearest = highest cosine similarity): codes stay spread
    # over the sphere instead of collapsing onto the tiny spread of early encoder outputs
    normalize: bool = True

    def __post_init__(self):
        own = "LatentActionConfig"
        lowest = {
            "image_size": 16,
            "channels": 4,
            "codebook_size": 2,
            "code_dim": 1,
            "seq_len": 1,
            "restart_dead_every": 0,
            "recent_size": 1,
        }
        for name, low in lowest.items():
            value = getattr(self, name)
            require(is_int(value) and value >= low, own, name, value, f"an int >= {low}")
        require(
            self.image_size % 16 == 0,
            own,
            "image_size",
            self.image_size,
            "a multiple of 16 (the encoder halves it four times)",
        )
        require(isinstance(self.normalize, bool), own, "normalize", self.normalize, "a bool")
        for name, high in (("commitment", math.inf), ("dead_threshold", 1.0)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            require(ok and 0 <= value <= high, own, name, value, f"a number in [0, {high}]")

    @classmethod
    def from_dict(cls, values: dict) -> LatentActionConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParameterError(
                f"LatentActionConfig: unknown fields {unknown}; known {sorted(known)}"
            )
        return cls(**values)


# ----------------------------------------------------------------------------- model


def _conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    groups = 4 if cout % 4 == 0 else 1
    return [nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(groups, cout), nn.SiLU()]


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(*_conv(cin, cout, stride), *_conv(cout, cout))


def to_float_frames(frames, size: int) -> torch.Tensor:
    """uint8 (B, H, W, 3) numpy/tensor -> float (B, 3, size, size) in [0, 1]."""
    x = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ParameterError(f"frames must be (B, H, W, 3) uint8, got shape {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        raise ParameterError(f"frames must be uint8 (0..255), got {x.dtype}")
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, (size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


def resize_frames(frames, size: int) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> uint8 (B, size, size, 3), antialiased bilinear."""
    x = to_float_frames(frames, size)
    return x.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.mul(255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


class LatentActionModel(nn.Module):
    """LAQ-style model: pair encoder, vector quantiser with dead-code restart, FiLM decoder.

    ``forward(batch)`` is ``loss(batch)`` so ``nblib.train.train`` can call ``model(batch)``.
    Buffers ``usage_total`` (K,) and ``usage_window`` (K,) count code assignments made in
    training steps (all time / since the last dead-code check); ``restarts`` counts
    re-initialised codes.
    """

    def __init__(self, config: LatentActionConfig | None = None):
        super().__init__()
        cfg = self.config = config if config is not None else LatentActionConfig()
        c, c2 = cfg.channels, 2 * cfg.channels
        side = cfg.image_size // 16
        # Pair encoder: frame_t, frame_t+k and their difference stacked on channels.
        self.pair_encoder = nn.Sequential(
            _block(9, c, 2), _block(c, c2, 2), _block(c2, c2, 2), _block(c2, c2, 2), nn.Flatten()
        )
        self.to_latents = nn.Linear(c2 * side * side, cfg.seq_len * cfg.code_dim)
        self.codebook_weight = nn.Parameter(torch.randn(cfg.codebook_size, cfg.code_dim))
        # Decoder: a U-Net on frame_t; the tokens (flattened, so their order matters) set a
        # FiLM scale and shift at every level.
        self.down = nn.ModuleList([_block(3, c, 2), _block(c, c2, 2), _block(c2, c2, 2)])
        self.up = nn.ModuleList([_block(c2, c2, 1), _block(2 * c2, c2, 1), _block(c2 + c, c, 1)])
        # one conv at full resolution (a full block there cost a third of the step time)
        self.final = nn.Sequential(*_conv(c, c))
        widths = [c2, c2, c, c]
        self._film_widths = widths
        self.film = nn.Sequential(
            nn.Linear(cfg.seq_len * cfg.code_dim, 4 * c2),
            nn.SiLU(),
            nn.Linear(4 * c2, 2 * sum(widths)),
        )
        self.out = nn.Conv2d(c, 3, 3, 1, 1)
        nn.init.zeros_(self.out.weight)  # untrained model = copy frame_t
        nn.init.zeros_(self.out.bias)
        with torch.no_grad():
            self.codebook_weight.mul_(0.1)
        k = cfg.codebook_size
        self.register_buffer("usage_total", torch.zeros(k, dtype=torch.long))
        self.register_buffer("usage_window", torch.zeros(k, dtype=torch.long))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))
        self.register_buffer("vq_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("recent", torch.zeros(cfg.recent_size, cfg.code_dim))
        self.register_buffer("recent_count", torch.zeros((), dtype=torch.long))

    # -- pieces ------------------------------------------------------------------------

    def _frames(self, frames) -> torch.Tensor:
        device = self.codebook_weight.device
        return to_float_frames(frames, self.config.image_size).to(device) - 0.5

    def _latents(self, x_t: torch.Tensor, x_tk: torch.Tensor) -> torch.Tensor:
        h = self.pair_encoder(torch.cat([x_t, x_tk, x_tk - x_t], dim=1))
        z = self.to_latents(h).view(-1, self.config.seq_len, self.config.code_dim)
        return F.normalize(z, dim=-1) if self.config.normalize else z

    def _codes(self) -> torch.Tensor:
        w = self.codebook_weight
        return F.normalize(w, dim=-1) if self.config.normalize else w

    def _nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index (B, L) of the nearest codebook entry (Euclidean) of each latent."""
        flat = z.reshape(-1, z.shape[-1])
        dist = torch.cdist(flat, self._codes().to(flat.dtype))
        return dist.argmin(dim=1).view(z.shape[:-1])

    def _decode(self, x_t: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """frame_t (B, 3, S, S) in [-0.5, 0.5] + code vectors (B, L, D) -> frame_t+k, [0, 1]."""
        film = self.film(codes.flatten(1)).split([2 * w for w in self._film_widths], dim=1)
        skips, h = [], x_t
        for block in self.down:
            h = block(h)
            skips.append(h)
        h = skips.pop()
        for i, block in enumerate(self.up):
            if i > 0:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
                h = torch.cat([h, skips.pop()], dim=1)
            h = _film(block(h), film[i])
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = _film(self.final(h), film[3])
        return (x_t + 0.5 + self.out(h)).clamp(0.0, 1.0)

    # -- public inference API -------------------------------------------------------------

    @torch.no_grad()
    def latents(self, frames_t, frames_tk) -> torch.Tensor:
        """Pre-quantisation encoder outputs (B, seq_len, code_dim), float32."""
        return self._latents(self._frames(frames_t), self._frames(frames_tk))

    @torch.no_grad()
    def encode_tokens(self, frames_t, frames_tk) -> torch.Tensor:
        """Token ids (B, seq_len) long in [0, codebook_size) of each frame pair."""
        return self._nearest(self.latents(frames_t, frames_tk))

    @torch.no_grad()
    def decode(self, frames_t, tokens) -> torch.Tensor:
        """Predicted frame_t+k, uint8 (B, S, S, 3) with S = image_size, from frame_t and
        tokens (B, L)."""
        return _to_uint8(self._decode_float(frames_t, tokens))

    @torch.no_grad()
    def _decode_float(self, frames_t, tokens) -> torch.Tensor:
        tokens = torch.as_tensor(np.asarray(tokens) if not torch.is_tensor(tokens) else tokens)
        tokens = tokens.to(self.codebook_weight.device).long()
        cfg = self.config
        if tokens.ndim != 2 or tokens.shape[1] != cfg.seq_len:
            raise ParameterError(f"tokens must be (B, {cfg.seq_len}), got {tuple(tokens.shape)}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= cfg.codebook_size):
            raise ParameterError(
                f"tokens must lie in [0, {cfg.codebook_size}), got "
                f"{int(tokens.min())}..{int(tokens.max())}"
            )
        return self._decode(self._frames(frames_t), self._codes()[tokens])

    def codebook(self) -> torch.Tensor:
        """The codebook (codebook_size, code_dim) as used for lookup (unit rows when
        ``config.normalize``), a detached copy."""
        return self._codes().detach().clone()

    # -- training -------------------------------------------------------------------------

    def forward(self, batch: dict) -> dict:
        return self.loss(batch)

    def loss(self, batch: dict) -> dict:
        """Scalars for ``train``: loss, recon (MSE), vq, perplexity, active codes, copy MSE.

        ``batch``: {"frames_t", "frames_tk"} uint8 (B, H, W, 3), or {"frames"} (B, 2, H, W, 3)
        as stacked by ``FramePairDataset``. In training mode it also counts code usage and
        restarts dead codes every ``restart_dead_every`` calls.
        """
        if "frames" in batch:
            frames = batch["frames"]
            f_t, f_tk = frames[:, 0], frames[:, 1]
        else:
            f_t, f_tk = batch["frames_t"], batch["frames_tk"]
        x_t, x_tk = self._frames(f_t), self._frames(f_tk)
        cfg = self.config
        if self.training:  # before quantising: the codebook must not change under autograd
            self._maybe_restart()
        z = self._latents(x_t, x_tk)
        idx = self._nearest(z.detach())
        e = self._codes()[idx]
        vq = F.mse_loss(e, z.detach()) + cfg.commitment * F.mse_loss(z, e.detach())
        q = z + (e - z).detach()  # straight-through estimator
        pred = self._decode(x_t, q)
        target = x_tk + 0.5
        recon = F.mse_loss(pred, target)
        copy = F.mse_loss(x_t, x_tk).detach()
        # Relative to copying frame_t: plain MSE is ~1e-3 here (most pixels are static), so
        # the VQ terms (~1e-2) would drown it and the encoder would only learn to commit.
        relative = recon / copy.clamp_min(1e-6)
        counts = torch.bincount(idx.flatten(), minlength=cfg.codebook_size)
        if self.training:
            self._record(idx, z.detach(), counts)
        p = counts.float() / counts.sum()
        perplexity = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())
        return {
            "loss": relative + vq,
            "recon": recon.detach(),
            "vq": vq.detach(),
            "perplexity": perplexity,
            "active": (counts > 0).sum().float(),
            "copy": copy,
        }

    @torch.no_grad()
    def _record(self, idx: torch.Tensor, z: torch.Tensor, counts: torch.Tensor) -> None:
        self.usage_total += counts
        self.usage_window += counts
        self.vq_steps += 1
        flat = z.reshape(-1, z.shape[-1])
        n, size = len(flat), len(self.recent)
        if n >= size:
            self.recent.copy_(flat[-size:])
        else:
            start = int(self.recent_count) % size
            pos = (start + torch.arange(n, device=flat.device)) % size
            self.recent[pos] = flat
        self.recent_count += n

    @torch.no_grad()
    def _maybe_restart(self) -> int:
        """Re-initialise dead codes to random recent encoder outputs; returns how many."""
        cfg = self.config
        every, steps = cfg.restart_dead_every, int(self.vq_steps)
        if every == 0 or steps == 0 or steps % every:
            return 0
        total = int(self.usage_window.sum())
        dead = self.usage_window.float() < cfg.dead_threshold * total / cfg.codebook_size
        self.usage_window.zero_()
        n_dead = int(dead.sum())
        available = min(int(self.recent_count), len(self.recent))
        if n_dead == 0 or available == 0:
            return 0
        pick = torch.randint(available, (n_dead,), device=self.recent.device)
        fresh = self.recent[pick]
        fresh = fresh + 0.01 * fresh.std() * torch.randn_like(fresh)  # ties: same sample twice
        self.codebook_weight.data[dead] = fresh
        self.restarts += n_dead
        return n_dead


def _film(h: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    scale, shift = params.chunk(2, dim=1)
    return h * (1.0 + scale[:, :, None, None]) + shift[:, :, None, None]


# ----------------------------------------------------------------------------- save / load


def save_latent_model(model: LatentActionModel, path, history=None) -> Path:
    """Write config, state dict, training metadata and (optionally) the training history's
    numeric columns to one torch file (weights_only-safe)."""
    state = {
        "config": asdict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(getattr(model, "meta", {}) or {}),
    }
    if history is not None:  # plain floats: weights_only loading refuses numpy scalars
        state["history"] = [
            {k: float(v) for k, v in record.items() if isinstance(v, (int, float, np.number))}
            for record in history
        ]
    return save_tagged(path, FORMAT, state)


def load_latent_model(path) -> LatentActionModel:
    """A model saved by ``save_latent_model``, in eval mode on the CPU; its training
    history (a list of per-step dicts, or None) is ``model.history``."""
    state = load_tagged(path, FORMAT, "latent-action model")
    model = LatentActionModel(LatentActionConfig.from_dict(state["config"]))
    model.load_state_dict(state["state_dict"])
    model.meta = state.get("meta", {})
    model.history = state.get("history")
    return model.eval()


# ----------------------------------------------------------------------------- ablation


@torch.no_grad()
def permutation_ablation(
    model: LatentActionModel, frames_t, frames_tk, seed: int = 0, batch_size: int = 256
) -> dict:
    """Does token order carry information? (seed 004, idea 17)

    Decodes frame_t with the pair's own tokens, the same tokens in a random fixed order of
    positions (``permutation``, never the identity when L > 1), reversed, and uniformly
    random tokens; returns the MSE ([0, 1] pixels) of each against the true frame_t+k, plus
    ``copy`` (frame_t itself), ``changed_permuted`` / ``changed_reversed`` (fraction of
    pairs whose sequence actually changed: [3, 3] reversed is [3, 3]), ``permutation`` and
    ``n``. With L = 2 the permuted and the reversed order coincide. Frames: uint8
    (B, H, W, 3); processed ``batch_size`` pairs at a time.
    """
    cfg = model.config
    L = cfg.seq_len
    g = torch.Generator().manual_seed(seed)
    perm = torch.arange(L)
    if L > 1:
        while bool((perm == torch.arange(L)).all()):
            perm = torch.randperm(L, generator=g)
    names = ("original", "permuted", "reversed", "random", "copy")
    sums = dict.fromkeys(names + ("changed_permuted", "changed_reversed"), 0.0)
    n = len(frames_t)
    for start in range(0, n, batch_size):
        f_t, f_tk = frames_t[start : start + batch_size], frames_tk[start : start + batch_size]
        tokens = model.encode_tokens(f_t, f_tk)
        device = tokens.device
        variants = {
            "original": tokens,
            "permuted": tokens[:, perm.to(device)],
            "reversed": tokens.flip(1),
            "random": torch.randint(cfg.codebook_size, tokens.shape, generator=g).to(device),
        }
        x_t, target = model._frames(f_t) + 0.5, model._frames(f_tk) + 0.5
        for name, tok in variants.items():
            pred = model._decode(x_t - 0.5, model._codes()[tok])
            sums[name] += float((pred - target).square().mean(dim=(1, 2, 3)).sum())
        sums["copy"] += float((x_t - target).square().mean(dim=(1, 2, 3)).sum())
        for name in ("permuted", "reversed"):
            sums[f"changed_{name}"] += float((variants[name] != tokens).any(dim=1).sum())
    out = {name: value / max(n, 1) for name, value in sums.items()}
    out["permutation"] = perm.tolist()
    out["n"] = n
    return out
