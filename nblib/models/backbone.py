"""A frozen (or LoRA-tuned) vision-language backbone that turns camera frames + an
instruction into hidden states.

Two sources, one interface:

* ``Backbone.tiny(seed)`` wraps the tiny randomly initialised Qwen2.5-VL built entirely
  offline and bit-identically by :mod:`nblib.models.tiny_qwen`, so runs and feature caches
  are reproducible.
* ``Backbone.from_pretrained(path)`` loads any local image-text-to-text checkpoint
  through transformers' Auto classes (:mod:`nblib.models.pretrained`; nothing is
  downloaded).

``encode(images, instructions)`` returns the last token's hidden state (the usual VLA
"readout"), the last layer's token states or every layer's states. ``identity()`` is a
short hash of config + weights + processor settings, used as a feature-cache key.
LoRA goes through peft on the language model's attention projections only.
``unfreeze(last_layers=K)`` trains only the top K decoder layers of the language model
(seed 001: "unfreezing last few VLM layers"), with or without LoRA.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nblib.errors import ParameterError, is_int
from nblib.models.identity import identity_hash, lora_settings
from nblib.models.pretrained import load_pretrained
from nblib.models.prompt import PROMPT_VERSION, chat_prompt, processor_inputs
from nblib.models.tiny_qwen import build_tiny_qwen

OUTPUT_KEYS = ("last", "tokens", "layers")
LORA_ADAPTER_DIR = "lora_adapter"
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")

_VISION_ATTRS = ("visual", "vision_tower", "vision_model")
# The language model's norm after its last decoder layer: Llama/Qwen, Phi/Falcon, GPT-2.
_FINAL_NORM_ATTRS = ("norm", "final_layernorm", "ln_f", "final_norm")


def _module_name(root: nn.Module, module: nn.Module | None) -> str | None:
    if module is None:
        return None
    for name, m in root.named_modules():
        if m is module:
            return name
    return None


@contextlib.contextmanager
def _quiet_peft() -> Iterator[None]:
    # peft 0.21 calls transformers' deprecated `is_gradient_checkpointing` (FutureWarning).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        yield


# --------------------------------------------------------------------------- backbone


class Backbone(nn.Module):
    """A vision-language model + its processor, frozen by default.

    Args:
        model: an image-text-to-text transformers model (e.g. Qwen2.5-VL).
        processor: its processor (image processor + tokenizer).
        autocast_dtype: e.g. ``torch.bfloat16`` on CUDA to run the forward under
            ``torch.autocast(device_type=<model device>)``; ``None`` (default) runs in the
            model's own dtype (float32 on CPU).
    """

    def __init__(self, model: nn.Module, processor: Any, autocast_dtype: torch.dtype | None = None):
        super().__init__()
        if isinstance(autocast_dtype, str) and isinstance(
            getattr(torch, autocast_dtype, None), torch.dtype
        ):
            autocast_dtype = getattr(torch, autocast_dtype)
        if autocast_dtype is not None and not isinstance(autocast_dtype, torch.dtype):
            raise ParameterError(
                f"autocast_dtype: expected None or a torch.dtype such as torch.bfloat16, "
                f"got {autocast_dtype!r}"
            )
        self.model = model
        self.processor = processor
        self.autocast_dtype = autocast_dtype
        self._adapter_disabled = False
        # unfreeze(last_layers=K): the modules that train; train() keeps the rest in eval
        self._trained_top: list[nn.Module] = []
        tok = self.tokenizer
        tok.padding_side = "left"  # the last position is every sample's last real token
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self.freeze()

    # ------------------------------------------------------------------ construction
    @classmethod
    def tiny(
        cls, seed: int = 0, image_size: int = 128, autocast_dtype: torch.dtype | None = None
    ) -> Backbone:
        """The tiny offline Qwen2.5-VL (see :func:`build_tiny_qwen`)."""
        model, processor = build_tiny_qwen(seed=seed, image_size=image_size)
        return cls(model, processor, autocast_dtype=autocast_dtype)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        dtype: Any = None,
        autocast_dtype: torch.dtype | None = None,
    ) -> Backbone:
        """Load a local checkpoint directory (as written by :meth:`save_pretrained` or a
        downloaded Hugging Face image-text-to-text model). Never downloads.

        ``dtype`` None means float32 on CPU and the checkpoint's own dtype elsewhere. A
        ``lora_adapter/`` sub-folder (written by :meth:`save_pretrained`) is loaded too.
        """
        path = Path(path).expanduser()
        model, processor = load_pretrained(path, device, dtype)
        backbone = cls(model, processor, autocast_dtype=autocast_dtype)
        adapter = path / LORA_ADAPTER_DIR
        if (adapter / "adapter_config.json").is_file():
            backbone.load_adapter(adapter)
        return backbone.to(device)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write model + processor so :meth:`from_pretrained` gives identical outputs.

        With LoRA the base weights go to ``path`` and the adapter to ``path/lora_adapter``.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        hf = self.hf_model
        if self.lora_enabled:
            base = {
                k.replace(".base_layer.", "."): v
                for k, v in hf.state_dict().items()
                if "lora_" not in k
            }
            hf.save_pretrained(path, state_dict=base)
            self.save_adapter(path / LORA_ADAPTER_DIR)
        else:
            hf.save_pretrained(path)
        self.processor.save_pretrained(path)
        return path

    def save_adapter(self, path: str | Path) -> Path:
        """Write only the LoRA adapter (peft's format) to ``path``: a few MB even for a 7B
        backbone, whose base weights stay where they are."""
        if not self.lora_enabled:
            raise ParameterError("save_adapter: this backbone has no LoRA adapter")
        path = Path(path)
        self.model.save_pretrained(path)
        return path

    def load_adapter(self, path: str | Path) -> Backbone:
        """Wrap the model with the LoRA adapter saved at ``path`` (frozen, like every
        loaded backbone)."""
        from peft import PeftModel

        path = Path(path)
        if not (path / "adapter_config.json").is_file():
            raise ParameterError(f"load_adapter: {path} holds no adapter_config.json")
        if self.lora_enabled:
            raise ParameterError("load_adapter: this backbone already has a LoRA adapter")
        with _quiet_peft():
            self.model = PeftModel.from_pretrained(self.model, path, is_trainable=False)
        return self.freeze()

    # ------------------------------------------------------------------ properties
    @property
    def hf_model(self) -> nn.Module:
        """The transformers model (under the peft wrapper when LoRA is applied)."""
        return self.model.get_base_model() if self.lora_enabled else self.model

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def hidden_size(self) -> int:
        return int(self.hf_model.config.get_text_config().hidden_size)

    @property
    def num_layers(self) -> int:
        """Decoder layers; ``encode(..., output=("layers",))`` returns this + 1 states."""
        return int(self.hf_model.config.get_text_config().num_hidden_layers)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        for p in self.model.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.float32

    @property
    def lora_enabled(self) -> bool:
        return hasattr(self.model, "peft_config")

    @property
    def requires_grad(self) -> bool:
        """True when any weight (base or LoRA) is trainable: ``encode`` then keeps the graph."""
        return any(p.requires_grad for p in self.model.parameters())

    def _vision_module(self) -> nn.Module | None:
        hf = self.hf_model
        for owner in (getattr(hf, "model", None), hf):
            for attr in _VISION_ATTRS:
                module = getattr(owner, attr, None) if owner is not None else None
                if isinstance(module, nn.Module):
                    return module
        return None

    def _language_prefix(self) -> str | None:
        hf = self.hf_model
        lm = getattr(getattr(hf, "model", None), "language_model", None)
        if lm is None and hasattr(hf, "get_decoder"):
            lm = hf.get_decoder()
        return _module_name(hf, lm)

    def num_image_tokens(self, height: int = 128, width: int = 128) -> int:
        """Image tokens the language model sees for one ``height`` x ``width`` frame."""
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        inputs = processor_inputs(self.processor, [[frame]], ["x"])
        image_token_id = getattr(self.processor, "image_token_id", None)
        if image_token_id is None:
            image_token_id = self.tokenizer.convert_tokens_to_ids(self.processor.image_token)
        return int((inputs["input_ids"] == image_token_id).sum())

    # ------------------------------------------------------------------ training state
    def freeze(self) -> Backbone:
        """No weight (base or LoRA) trainable; eval mode. ``encode`` runs under no_grad."""
        self.model.requires_grad_(False)
        self._trained_top = []
        self.eval()
        return self

    def train(self, mode: bool = True) -> Backbone:
        """``nn.Module.train``, except that after ``unfreeze(last_layers=K)`` only the
        trained layers follow ``mode``: the frozen part stays in eval mode even when a
        training loop calls ``train()`` on the whole policy."""
        super().train(mode)
        if mode and self._trained_top:
            self.model.eval()
            for module in self._trained_top:
                module.train()
        return self

    def unfreeze(self, last_layers: int | None = None) -> Backbone:
        """Make the backbone trainable: all of it, or only the top of its language model.

        Args:
            last_layers: ``None`` (default): every weight trains, or with LoRA applied
                every LoRA weight; the whole backbone goes to train mode.
                ``K >= 1``: only the last ``K`` decoder layers of the language model and
                the final norm after them (a ``hidden_size`` vector every state ``encode``
                returns passes through); the vision tower, the embeddings, the earlier
                layers and the LM head stay frozen. With LoRA applied only the LoRA
                weights inside those ``K`` layers train and the norm stays frozen, so the
                base weights never change: ``disable_adapter()`` still gives the base
                model and ``save_adapter()`` holds everything trained. Call it after
                :meth:`apply_lora`, which makes every adapter trainable again.
                Only the trained modules go to train mode, now and on every later
                ``train()``; the frozen part stays in eval mode (no dropout, LoRA dropout
                included), so it computes what a frozen backbone computes.
                ``0``: as :meth:`freeze`.

        Gradients stop at the first trainable layer (nothing below needs them), so a
        backward costs only the last ``K`` layers. The decoder layers are found by
        structure (the shallowest ``nn.ModuleList`` of ``num_layers`` modules inside the
        language model: ``model.language_model.layers`` in Qwen2.5-VL, ``model.layers``
        in a text-only checkpoint), so any local checkpoint of that shape works.

        Feature caching: with ``K >= 1`` the readout changes every step, so features
        cannot be cached. A future optimisation could cache the *input* of layer
        ``L - K`` (``L = num_layers``), which the frozen part fixes: it is
        ``encode(..., output="layers")["layers"][L - K]``. It would need per sample every
        token's state (``T x hidden_size``, not one vector: the trainable layers attend
        over all tokens) with the attention mask, the position embeddings those layers
        take (Qwen2.5-VL's 3-D M-RoPE ids come from the image grid and the prompt, so
        they must be stored or recomputed), a cache key over the frozen part only
        (config, processor, prompt version, weights of the vision tower, the embeddings
        and layers ``< L - K`` including their LoRA weights, and ``K``), and a forward
        that runs only ``layers[L - K:]`` and the final norm, whose call signature is
        model-specific. Caching is not done here.
        """
        if last_layers is None:
            self._trained_top = []
            if self.lora_enabled:
                for name, p in self.model.named_parameters():
                    p.requires_grad_("lora_" in name)
            else:
                self.model.requires_grad_(True)
            self.train()
            return self
        n = self.num_layers
        if not is_int(last_layers) or not 0 <= last_layers <= n:
            raise ParameterError(
                f"last_layers: need None (everything) or an int in [0, {n}] (the language "
                f"model has num_layers={n} decoder layers), got {last_layers!r}"
            )
        if last_layers == 0:
            return self.freeze()
        lm, layers = self._decoder_layers()
        top = list(layers[n - last_layers :])
        norm = next(
            (m for a in _FINAL_NORM_ATTRS if isinstance(m := getattr(lm, a, None), nn.Module)),
            None,
        )
        if norm is not None and not self.lora_enabled:
            top.append(norm)
        chosen = {id(p) for module in top for p in module.parameters()}
        for name, p in self.model.named_parameters():
            p.requires_grad_(id(p) in chosen and (not self.lora_enabled or "lora_" in name))
        self._trained_top = top
        return self.train()

    def _decoder_layers(self) -> tuple[nn.Module, nn.ModuleList]:
        """The language model and its stack of ``num_layers`` decoder layers."""
        hf = self.hf_model
        prefix = self._language_prefix()
        if prefix is None:
            raise ParameterError(
                f"last_layers: cannot find the language model inside {type(hf).__name__}"
            )
        lm = hf.get_submodule(prefix)
        n = self.num_layers
        stacks = [
            (name, m)
            for name, m in lm.named_modules()
            if isinstance(m, nn.ModuleList) and len(m) == n
        ]
        if not stacks:
            raise ParameterError(
                f"last_layers: cannot find the decoder layers of {type(hf).__name__}: no "
                f"nn.ModuleList of num_layers={n} modules inside its language model "
                f"({prefix or 'the model itself'})"
            )
        # the shallowest list (deeper ones are parts of layers); "layers" wins a tie
        _, layers = min(stacks, key=lambda item: (item[0].count("."), item[0] != "layers"))
        return lm, layers

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def apply_lora(
        self,
        rank: int = 8,
        alpha: float = 16,
        targets: Sequence[str] = DEFAULT_LORA_TARGETS,
        dropout: float = 0.0,
    ) -> Backbone:
        """Add peft LoRA adapters to the language model's ``targets`` (attention
        projections by default; never the vision tower). Only LoRA weights are trainable
        afterwards; outputs are unchanged until they are trained (B is zero-initialised)."""
        from peft import LoraConfig, get_peft_model

        if self.lora_enabled:
            raise ParameterError("apply_lora: LoRA is already applied to this backbone")
        if not isinstance(rank, int) or rank < 1:
            raise ParameterError(f"rank: need an int >= 1, got {rank!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ParameterError(f"dropout: need 0 <= dropout < 1, got {dropout!r}")
        targets = (targets,) if isinstance(targets, str) else tuple(targets)
        if not targets or not all(isinstance(t, str) and t.isidentifier() for t in targets):
            raise ParameterError(f"targets: need module names like 'q_proj', got {targets!r}")
        prefix = self._language_prefix()
        if not prefix:
            raise ParameterError(
                f"apply_lora: cannot find the language model inside {type(self.hf_model).__name__}"
            )
        pattern = rf"{re.escape(prefix)}\..*\.({'|'.join(map(re.escape, targets))})"
        hits = [n for n, _ in self.hf_model.named_modules() if re.fullmatch(pattern, n)]
        if not hits:
            raise ParameterError(
                f"targets: no module of the language model ({prefix}) is named {targets}"
            )
        config = LoraConfig(
            r=rank,
            lora_alpha=alpha,
            lora_dropout=float(dropout),
            target_modules=pattern,
            bias="none",
        )
        with _quiet_peft():
            self.model = get_peft_model(self.model, config)
        for name, p in self.model.named_parameters():
            p.requires_grad_("lora_" in name)
        self._trained_top = []  # every adapter trains: unfreeze(last_layers=K) narrows it
        return self

    @contextlib.contextmanager
    def disable_adapter(self) -> Iterator[None]:
        """Run the base model (LoRA bypassed) inside the block; no-op without LoRA."""
        if not self.lora_enabled:
            yield
            return
        self._adapter_disabled = True
        try:
            with self.model.disable_adapter():
                yield
        finally:
            self._adapter_disabled = False

    # ------------------------------------------------------------------ identity
    def identity(self) -> str:
        """16 hex digits over config + every weight (incl. LoRA) + processor settings +
        prompt version + autocast dtype (see :mod:`nblib.models.identity`). Changes when
        any weight changes."""
        lora = None
        if self.lora_enabled:
            lora = lora_settings(self.model.peft_config["default"], self._adapter_disabled)
        runtime = {"prompt_version": PROMPT_VERSION, "autocast": str(self.autocast_dtype)}
        return identity_hash(
            self.hf_model.config.to_dict(), self.processor, lora, runtime, self.model.state_dict()
        )

    # ------------------------------------------------------------------ encoding
    def prompt(self, n_images: int, instruction: str) -> str:
        """One sample's chat prompt: ``n_images`` image placeholders, then the instruction."""
        return chat_prompt(self.processor, n_images, instruction)

    def _model_inputs(
        self, images: Sequence[Sequence[Any]], instructions: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        """The processor's tensors for a batch, on the model's device (floats in its dtype)."""
        inputs = processor_inputs(self.processor, images, instructions)
        device, dtype = self.device, self.dtype
        return {
            k: v.to(device, dtype=dtype if v.is_floating_point() else None)
            for k, v in inputs.items()
            if isinstance(v, torch.Tensor)
        }

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def encode(
        self,
        images: Sequence[Sequence[np.ndarray]],
        instructions: Sequence[str],
        output: Sequence[str] | str = ("last",),
    ) -> dict[str, Any]:
        """Hidden states for a batch of (camera frames, instruction) samples.

        Args:
            images: one list of uint8 (H, W, 3) frames per sample (any number >= 1).
            instructions: one string per sample.
            output: any of ``"last"`` -> (B, D) last token's final hidden state,
                ``"tokens"`` -> (B, T, D) final hidden states (+ ``"attention_mask"`` (B, T),
                left-padded), ``"layers"`` -> tuple of num_layers + 1 (B, T, D) states
                (embeddings first, the final normed state last; + ``"attention_mask"``).

        Float32 tensors on the model's device. The graph is kept only when some weight
        (LoRA or base) requires grad; otherwise this runs under ``torch.no_grad()``.
        """
        keys = (output,) if isinstance(output, str) else tuple(output)
        bad = [k for k in keys if k not in OUTPUT_KEYS]
        if bad or not keys:
            raise ParameterError(f"output: unknown keys {bad or keys}; choose from {OUTPUT_KEYS}")
        inputs = self._model_inputs(images, instructions)
        want_layers = "layers" in keys
        hf = self.hf_model
        core = getattr(hf, "base_model", hf)
        grad = contextlib.nullcontext() if self.requires_grad else torch.no_grad()
        with grad, self._autocast():
            if core is not hf:
                out = core(**inputs, use_cache=False, output_hidden_states=want_layers)
                final = out.last_hidden_state
            else:  # no separate base model: take the final state from the hidden states
                out = hf(**inputs, use_cache=False, output_hidden_states=True)
                final = out.hidden_states[-1]
        mask = inputs["attention_mask"]
        result: dict[str, Any] = {}
        if "last" in keys:
            positions = torch.arange(mask.shape[1], device=mask.device)
            last = (positions * (mask > 0)).argmax(dim=1)  # last real token (padding-proof)
            result["last"] = final[torch.arange(final.shape[0], device=final.device), last].float()
        if "tokens" in keys:
            result["tokens"] = final.float()
        if want_layers:
            result["layers"] = tuple(h.float() for h in out.hidden_states)
        if "tokens" in keys or want_layers:
            result["attention_mask"] = mask
        return result

    def instruction_attention(
        self, images: Sequence[Sequence[np.ndarray]], instructions: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """How much the last token (whose state the policy reads) attends to the instruction.

        Returns ``mass`` (B,): the attention weight of the last real token on the
        instruction's tokens, averaged over the language model's layers and heads, and
        ``share`` (B,): the instruction's share of the attended tokens (what uniform
        attention would give). The instruction is located between the last
        ``<|vision_end|>`` and the next ``<|im_end|>`` (Qwen's chat prompt). Runs the
        model once with eager attention (sdpa returns no weights), then restores it.
        """
        vocab = self.tokenizer.get_vocab()
        if "<|vision_end|>" not in vocab or "<|im_end|>" not in vocab:
            raise ParameterError(
                "instruction_attention: cannot locate the instruction in this model's prompt "
                "(needs Qwen's <|vision_end|> and <|im_end|> tokens)"
            )
        v_end, im_end = vocab["<|vision_end|>"], vocab["<|im_end|>"]
        inputs = self._model_inputs(images, instructions)
        hf = self.hf_model
        before = getattr(hf.config, "_attn_implementation", None)
        hf.set_attn_implementation("eager")
        try:
            with torch.no_grad(), self._autocast():
                out = hf(**inputs, use_cache=False, output_attentions=True)
        finally:
            if before is not None:
                hf.set_attn_implementation(before)
        ids, mask = inputs["input_ids"], inputs["attention_mask"] > 0
        attn = torch.stack([a.float() for a in out.attentions]).mean(dim=(0, 2))  # (B, T, T)
        mass, share = [], []
        for b in range(ids.shape[0]):
            row = ids[b].tolist()
            start = max(i for i, t in enumerate(row) if t == v_end) + 1
            stop = row.index(im_end, start)
            last = int(torch.nonzero(mask[b])[-1])
            mass.append(float(attn[b, last, start:stop].sum()))
            share.append((stop - start) / float(mask[b, : last + 1].sum()))
        return {"mass": np.asarray(mass), "share": np.asarray(share)}

    def forward(self, images, instructions, output=("last",)) -> dict[str, Any]:
        return self.encode(images, instructions, output=output)


def load_backbone(
    backbone: str | Path = "tiny",
    device: str | torch.device = "cpu",
    dtype: Any = None,
    seed: int = 0,
    autocast_dtype: torch.dtype | None = None,
) -> Backbone:
    """Notebook entry point: ``"tiny"`` (offline tiny Qwen2.5-VL) or a local checkpoint dir."""
    if isinstance(backbone, str) and backbone == "tiny":
        return Backbone.tiny(seed=seed, autocast_dtype=autocast_dtype).to(device)
    if not isinstance(backbone, str | Path):
        raise ParameterError(
            f"backbone: expected 'tiny' or a local checkpoint directory, got {backbone!r}"
        )
    return Backbone.from_pretrained(
        backbone, device=device, dtype=dtype, autocast_dtype=autocast_dtype
    )
