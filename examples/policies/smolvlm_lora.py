"""A VLA on a SmolVLM-family backbone (Idefics3: SigLIP vision encoder, pixel-shuffle
connector, Llama text model; the backbone LeRobot's SmolVLA builds on) with LoRA through
peft and its own action head, written against nblib's plug-in contract without importing
nblib.

    nblib run notebooks/01_overfit_diagnosis.ipynb \\
        -p policy examples/policies/smolvlm_lora.py:make_policy -p policy_kwargs '{lora_rank: 4}'

Offline, ``checkpoint=None`` builds a tiny random-initialised Idefics3 from a config (the
stand-in: nothing is downloaded) with a byte-level tokeniser; ``checkpoint="/path/to/
SmolVLM-256M-Instruct"`` loads a real local one with its own tokeniser. Each camera's frame
is one image; the instruction follows the image tokens. The text model's last hidden
states, averaged over the real tokens, and the normalised state feed an MLP that predicts
the whole chunk (L1 on normalised actions). LoRA adapts the text model's attention
(q_proj, v_proj); the vision encoder, the connector and the text weights stay frozen.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

IMAGE_SIZE = 64  # the tiny vision encoder's input (frames are resized to it)
PATCH = 8
SCALE = 2  # pixel-shuffle factor of the connector: (64 / 8)^2 / 2^2 = 16 tokens per image
VOCAB = 300  # tiny model: 256 bytes + 1 offset + pad 0 + the image token (last id)


def tiny_idefics3(seed: int = 0):
    from transformers import Idefics3Config, Idefics3Model

    config = Idefics3Config(
        vision_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=IMAGE_SIZE,
            patch_size=PATCH,
        ),
        text_config=dict(
            model_type="llama",
            hidden_size=96,
            intermediate_size=192,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=VOCAB,
            max_position_embeddings=512,
        ),
        image_token_id=VOCAB - 1,
        scale_factor=SCALE,
    )
    torch.manual_seed(seed)
    return Idefics3Model(config)


class ByteTokenizer:
    """The tiny stand-in's tokeniser: UTF-8 bytes shifted by one (0 pads)."""

    pad_token_id = 0

    def encode(self, text: str) -> list[int]:
        return [b + 1 for b in text.encode()[:96]] or [ord(" ") + 1]


class SmolVLMLoRAPolicy(nn.Module):
    def __init__(self, info, checkpoint=None, lora_rank=8, width=128, seed=0):
        super().__init__()
        from peft import LoraConfig, get_peft_model

        self.cameras = tuple(info.cameras)
        self.horizon, self.action_dim = int(info.horizon), int(info.action_dim)
        for kind in ("action", "state"):
            std = torch.as_tensor(info.stats[kind]["std"], dtype=torch.float32).clamp_min(1e-6)
            self.register_buffer(f"{kind}_mean", torch.as_tensor(info.stats[kind]["mean"]).float())
            self.register_buffer(f"{kind}_std", std)
        if checkpoint is None:
            vlm, self.tokenizer = tiny_idefics3(seed), ByteTokenizer()
        else:  # a real local SmolVLM / Idefics3 checkpoint, nothing downloaded
            from transformers import AutoModel, AutoTokenizer

            vlm = AutoModel.from_pretrained(checkpoint, local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
        cfg = vlm.config
        self.image_token_id = int(cfg.image_token_id)
        self.image_size = int(cfg.vision_config.image_size)
        patches = (self.image_size // cfg.vision_config.patch_size) ** 2
        self.tokens_per_image = patches // (cfg.scale_factor**2)
        lora = LoraConfig(
            r=lora_rank,
            lora_alpha=2 * lora_rank,
            target_modules=r".*text_model.*\.(q_proj|v_proj)",
        )
        self.vlm = get_peft_model(vlm, lora)  # freezes everything but the adapters
        hidden = int(cfg.text_config.hidden_size)
        self.fusion = nn.Sequential(
            nn.Linear(hidden + int(info.state_dim), width), nn.GELU(), nn.Linear(width, width)
        )
        self.head = nn.Sequential(nn.GELU(), nn.Linear(width, self.horizon * self.action_dim))
        base = "vlm.base_model.model"
        self.probe_stages = {
            "vision_connector": f"{base}.connector",
            "text_model": f"{base}.text_model",
            "fusion": "fusion",
        }

    def _tokens(self, tasks: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
        image = [self.image_token_id] * (self.tokens_per_image * len(self.cameras))
        rows = [image + list(self.tokenizer.encode(text)) for text in tasks]
        width = max(len(r) for r in rows)
        pad = int(self.tokenizer.pad_token_id or 0)
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
        return ids, mask

    def _normalised_chunk(self, batch: dict) -> torch.Tensor:
        frames = [batch[f"observation.images.{c}"] for c in self.cameras]
        pixels = torch.stack(
            [
                F.interpolate(f, size=self.image_size, mode="bilinear", antialias=True)
                for f in frames
            ],
            dim=1,
        )  # (B, cameras, 3, S, S): one image per camera
        state = batch["observation.state"]
        ids, mask = self._tokens(batch["task"], state.device)
        pixels = ((pixels - 0.5) / 0.5).contiguous()  # SigLIP's range; Idefics3 .view()s it
        out = self.vlm(input_ids=ids, attention_mask=mask, pixel_values=pixels, use_cache=False)
        weights = mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
        pooled = (out.last_hidden_state * weights).sum(1) / weights.sum(1)
        state = (state - self.state_mean) / self.state_std
        fused = self.fusion(torch.cat([pooled.float(), state], dim=-1))
        return self.head(fused).view(-1, self.horizon, self.action_dim)

    def forward(self, batch: dict):
        target = (batch["action"] - self.action_mean) / self.action_std
        error = (self._normalised_chunk(batch) - target).abs().mean(-1)
        keep = (~batch["action_is_pad"]).float() if "action_is_pad" in batch else None
        loss = error.mean() if keep is None else (error * keep).sum() / keep.sum().clamp_min(1)
        return loss, {"l1": float(loss.detach())}

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        return self._normalised_chunk(batch) * self.action_std + self.action_mean

    def reset(self) -> None:
        pass


def make_policy(info, checkpoint=None, lora_rank=8, width=128, seed=0):
    torch.manual_seed(seed)
    return SmolVLMLoRAPolicy(info, checkpoint, lora_rank, width, seed)
