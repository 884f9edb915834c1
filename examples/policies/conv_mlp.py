"""A small plain-torch visuomotor policy, written against nblib's plug-in contract without
importing nblib: a shared convolutional encoder per camera, the state, and a hashed
bag-of-words instruction embedding, fused by an MLP trunk into an action chunk
(regression, L1 on the normalised actions, padded steps masked).

    nblib run notebooks/01_overfit_diagnosis.ipynb -p policy examples/policies/conv_mlp.py:make_policy

``make_policy(info, width=64, seed=0)``: ``info`` carries the data's widths, cameras,
chunk length and statistics (the policy normalises its inputs and outputs with them).
"""

from __future__ import annotations

import zlib

import torch
from torch import nn

VOCAB = 512  # hashed instruction words


def _words(text: str) -> list[int]:
    return [zlib.crc32(w.encode()) % VOCAB for w in text.lower().split()]


class ConvMLPPolicy(nn.Module):
    def __init__(self, info, width: int = 64):
        super().__init__()
        self.cameras = tuple(info.cameras)
        self.horizon, self.action_dim = int(info.horizon), int(info.action_dim)
        stats = info.stats
        for kind in ("action", "state"):
            # Buffers, not parameters: saved with the weights, never trained.
            std = torch.as_tensor(stats[kind]["std"], dtype=torch.float32).clamp_min(1e-6)
            self.register_buffer(f"{kind}_mean", torch.as_tensor(stats[kind]["mean"]).float())
            self.register_buffer(f"{kind}_std", std)
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 16, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(32 * 16, width),
        )
        self.language = nn.EmbeddingBag(VOCAB, width, mode="mean")
        self.state = nn.Linear(int(info.state_dim), width)
        self.trunk = nn.Sequential(
            nn.Linear(width * (len(self.cameras) + 2), 4 * width),
            nn.ReLU(),
            nn.Linear(4 * width, 4 * width),
            nn.ReLU(),
        )
        self.head = nn.Linear(4 * width, self.horizon * self.action_dim)
        # Stages notebook 02 hooks (stage name -> submodule path).
        self.probe_stages = {"vision": "encoder", "language": "language", "trunk": "trunk"}

    def _instructions(self, tasks: list[str], device) -> torch.Tensor:
        ids, offsets = [], []
        for text in tasks:
            offsets.append(len(ids))
            ids.extend(_words(text) or [0])
        return self.language(torch.tensor(ids, device=device), torch.tensor(offsets, device=device))

    def _normalised_chunk(self, batch: dict) -> torch.Tensor:
        state = batch["observation.state"]
        parts = [self.encoder(batch[f"observation.images.{c}"] - 0.5) for c in self.cameras]
        parts.append(self.state((state - self.state_mean) / self.state_std))
        parts.append(self._instructions(batch["task"], state.device))
        out = self.head(self.trunk(torch.cat(parts, dim=-1)))
        return out.view(-1, self.horizon, self.action_dim)

    def forward(self, batch: dict):
        target = (batch["action"] - self.action_mean) / self.action_std
        error = (self._normalised_chunk(batch) - target).abs().mean(-1)
        keep = ~batch["action_is_pad"] if "action_is_pad" in batch else torch.ones_like(error)
        keep = keep.float()
        loss = (error * keep).sum() / keep.sum().clamp_min(1.0)
        return loss, {"l1": float(loss.detach())}

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        return self._normalised_chunk(batch) * self.action_std + self.action_mean

    def reset(self) -> None:
        pass  # stateless: nothing to clear between episodes


def make_policy(info, width: int = 64, seed: int = 0) -> ConvMLPPolicy:
    torch.manual_seed(seed)
    return ConvMLPPolicy(info, width=width)
