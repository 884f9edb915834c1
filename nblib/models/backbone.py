"""A frozen (or LoRA-tuned) vision-language backbone that turns camera frames + an
instruction into hidden states.

Two sources, one interface:

* ``Backbone.tiny(seed)`` builds a tiny randomly initialised Qwen2.5-VL entirely offline:
  a byte-level BPE tokenizer trained on the embedded dataset's instructions, the PIL
  image processor (no torchvision) and a 2-layer text / 2-block vision model. It is built
  bit-identically every time, so runs and feature caches are reproducible.
* ``Backbone.from_pretrained(path)`` loads any local image-text-to-text checkpoint
  through transformers' Auto classes (nothing is downloaded).

``encode(images, instructions)`` returns the last token's hidden state (the usual VLA
"readout"), the last layer's token states or every layer's states. ``identity()`` is a
short hash of config + weights + processor settings, used as a feature-cache key.
LoRA goes through peft on the language model's attention projections only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import (
    AutoImageProcessor,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessorPil,
)

from nblib.errors import ParameterError

# Bump when the prompt layout changes: features (and so cache keys) change with it.
PROMPT_VERSION = 1
OUTPUT_KEYS = ("last", "tokens", "layers")
LORA_ADAPTER_DIR = "lora_adapter"
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")

# Qwen's special tokens. Trained first, so their ids are 0..6 in this order.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Generic words added to the instruction strings so unseen instructions still tokenise
# into a few pieces rather than single bytes.
GENERIC_ROBOT_TEXT = (
    "user assistant system robot arm gripper hand camera image task instruction",
    "pick place put push pull press open close slide move lift grasp release reach rotate",
    "turn stack insert drop the a an to of on in into onto from off up down left right",
    "top bottom front back side near far red green blue yellow black white small large",
    "block cube puck ball cup bowl plate box door drawer window button handle lever lid",
    "table shelf goal target position object it and then with over under near away",
)
# Minimal Qwen-style chat template (no system prompt) for the tiny model.
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Tiny model sizes (text hidden 64 = features' width; head_dim 16 -> mrope 2+3+3 = 8).
TINY_TEXT = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=1024,
    rms_norm_eps=1e-6,
    attention_dropout=0.0,
    tie_word_embeddings=False,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
)
TINY_VISION = dict(
    depth=2,
    hidden_size=64,
    intermediate_size=128,
    num_heads=4,
    patch_size=14,
    spatial_merge_size=2,
    temporal_patch_size=2,
    window_size=112,
    fullatt_block_indexes=[1],
)

# Config keys that change with where/how a model was saved, not with what it computes.
_VOLATILE_CONFIG_KEYS = frozenset(
    {
        "_name_or_path",
        "transformers_version",
        "architectures",
        "_commit_hash",
        "_attn_implementation_autoset",
        "output_hidden_states",
        "output_attentions",
        "return_dict",
        "use_cache",
        "dtype",
        "torch_dtype",
    }
)
_VOLATILE_PROCESSOR_KEYS = frozenset({"processor_class", "_processor_class", "auto_map"})
_VISION_ATTRS = ("visual", "vision_tower", "vision_model")


class Qwen2_5_VLNoVideoProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor for images only: no video processor (that one needs torchvision).

    ``ProcessorMixin`` derives its sub-processors from ``__init__``'s parameter names, so
    dropping ``video_processor`` from the signature is what makes it optional.
    ``AutoProcessor`` does not know this class: load it with :func:`load_processor`.
    """

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=None,
            chat_template=chat_template,
            **kwargs,
        )


# --------------------------------------------------------------------------- tiny model


def tokenizer_corpus() -> list[str]:
    """The fixed text the tiny tokenizer is trained on (sorted: order-independent)."""
    from nblib.data.metaworld_gen import INSTRUCTIONS

    lines = {s for strings in INSTRUCTIONS.values() for s in strings}
    return sorted(lines) + list(GENERIC_ROBOT_TEXT)


def build_tiny_tokenizer(vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained offline on :func:`tokenizer_corpus`; deterministic."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        padding_side="left",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        model_max_length=1024,
    )


def tiny_image_processor(image_size: int = 128) -> Qwen2VLImageProcessorPil:
    """Resize a square ``image_size`` frame to the largest multiple of 28 not above it.

    128 px -> 112 px -> 8x8 patches of 14 px -> 2x2 merge -> 16 image tokens per frame.
    """
    side = max(28, (int(image_size) // 28) * 28)
    return Qwen2VLImageProcessorPil(
        min_pixels=28 * 28,
        max_pixels=side * side,
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
    )


def build_tiny_qwen(
    seed: int = 0, image_size: int = 128
) -> tuple[Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLNoVideoProcessor]:
    """A tiny randomly initialised Qwen2.5-VL and its processor, built with no download.

    Weights are bit-identical for the same ``seed``; the global torch RNG is left as it was.
    """
    if not isinstance(image_size, int) or image_size < 28:
        raise ParameterError(f"image_size: need an int >= 28 pixels, got {image_size!r}")
    tokenizer = build_tiny_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab = -(-len(tokenizer) // 64) * 64  # round up: tidy embedding shapes
    text_config = dict(
        TINY_TEXT,
        vocab_size=vocab,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    vision_config = dict(TINY_VISION, out_hidden_size=TINY_TEXT["hidden_size"])
    config = Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    model.eval()
    processor = Qwen2_5_VLNoVideoProcessor(
        image_processor=tiny_image_processor(image_size),
        tokenizer=tokenizer,
        chat_template=TINY_CHAT_TEMPLATE,
    )
    return model, processor


# --------------------------------------------------------------------------- loading


def _read_chat_template(path: Path) -> str | None:
    jinja = path / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    js = path / "chat_template.json"
    if js.is_file():
        template = json.loads(js.read_text()).get("chat_template")
        return template if isinstance(template, str) else None
    return None


def load_processor(path: str | Path, model_type: str | None = None):
    """Load a checkpoint's processor from local files, checking what comes back.

    Qwen2-VL / Qwen2.5-VL checkpoints get :class:`Qwen2_5_VLNoVideoProcessor` built from the
    tokenizer + image processor (``AutoProcessor`` would need torchvision for the video
    processor, or would silently return only the tokenizer for a custom processor class).
    Other models go through ``AutoProcessor`` and must expose an image processor and a
    tokenizer.
    """
    path = Path(path)
    if model_type is None and (path / "config.json").is_file():
        model_type = json.loads((path / "config.json").read_text()).get("model_type")
    what = f"backbone: processor files in {str(path)!r}"
    if model_type in ("qwen2_vl", "qwen2_5_vl"):
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            image_processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise ParameterError(
                f"{what}: could not load the tokenizer/image processor ({err}); the directory "
                "needs tokenizer files and a processor/preprocessor config. Pass backbone='tiny' "
                "or a complete local checkpoint directory"
            ) from err
        chat_template = _read_chat_template(path) or getattr(tokenizer, "chat_template", None)
        processor = Qwen2_5_VLNoVideoProcessor(
            image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template
        )
    else:
        try:
            processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise ParameterError(f"{what}: could not load a processor ({err})") from err
    if getattr(processor, "image_processor", None) is None or not hasattr(processor, "tokenizer"):
        raise ParameterError(
            f"{what}: expected a processor with an image processor and a tokenizer, got "
            f"{type(processor).__name__}; pass backbone='tiny' or an image-text-to-text checkpoint"
        )
    return processor


def _resolve_dtype(dtype: Any, device: torch.device) -> Any:
    if dtype is None:
        return torch.float32 if device.type == "cpu" else "auto"
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if isinstance(dtype, str) and isinstance(getattr(torch, dtype, None), torch.dtype):
        return getattr(torch, dtype)
    raise ParameterError(
        f"dtype: expected None, 'auto', a torch.dtype or a name like 'bfloat16', got {dtype!r}"
    )


def _clean(obj: Any, drop: frozenset[str]) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v, drop) for k, v in obj.items() if k not in drop}
    if isinstance(obj, list | tuple):
        return [_clean(v, drop) for v in obj]
    return obj


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


def _as_frame(frame: Any, where: str) -> Image.Image:
    if isinstance(frame, torch.Tensor):
        frame = frame.detach().cpu().numpy()
    if isinstance(frame, Image.Image):
        return frame.convert("RGB")
    arr = np.asarray(frame)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ParameterError(
            f"images{where}: expected a uint8 (H, W, 3) camera frame, got dtype {arr.dtype} "
            f"shape {arr.shape}"
        )
    return Image.fromarray(arr)


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
        hint = (
            "pass backbone='tiny' or a local checkpoint directory holding config.json, the "
            "model weights and the processor/tokenizer files"
        )
        if not path.is_dir():
            raise ParameterError(
                f"backbone: checkpoint directory {str(path)!r} does not exist; {hint}"
            )
        if not (path / "config.json").is_file():
            raise ParameterError(f"backbone: {str(path)!r} has no config.json; {hint}")
        device = torch.device(device)
        try:
            model = AutoModelForImageTextToText.from_pretrained(
                path, local_files_only=True, dtype=_resolve_dtype(dtype, device)
            )
        except (OSError, ValueError, KeyError) as err:
            raise ParameterError(
                f"backbone: could not load an image-text-to-text model from {str(path)!r} "
                f"({err}); {hint}"
            ) from err
        processor = load_processor(path, getattr(model.config, "model_type", None))
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
        inputs = self._prepare([[frame]], ["x"])
        image_token_id = getattr(self.processor, "image_token_id", None)
        if image_token_id is None:
            image_token_id = self.tokenizer.convert_tokens_to_ids(self.processor.image_token)
        return int((inputs["input_ids"] == image_token_id).sum())

    # ------------------------------------------------------------------ training state
    def freeze(self) -> Backbone:
        """No weight (base or LoRA) trainable; eval mode. ``encode`` runs under no_grad."""
        self.model.requires_grad_(False)
        self.eval()
        return self

    def unfreeze(self) -> Backbone:
        """Train mode; only LoRA weights become trainable if LoRA is applied, else all."""
        if self.lora_enabled:
            for name, p in self.model.named_parameters():
                p.requires_grad_("lora_" in name)
        else:
            self.model.requires_grad_(True)
        self.train()
        return self

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
    def _processor_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"class": type(self.processor).__name__}
        ip = getattr(self.processor, "image_processor", None)
        if ip is not None:
            settings["image_processor"] = _clean(ip.to_dict(), _VOLATILE_PROCESSOR_KEYS)
        tok = self.tokenizer
        backend = getattr(tok, "backend_tokenizer", None)
        if backend is not None:
            spec = json.loads(backend.to_str())
            spec.pop("padding", None)
            spec.pop("truncation", None)
            settings["tokenizer"] = spec
        else:
            settings["tokenizer"] = sorted(tok.get_vocab().items())
        settings["padding_side"] = tok.padding_side
        settings["chat_template"] = getattr(self.processor, "chat_template", None)
        return settings

    def _lora_settings(self) -> dict[str, Any] | None:
        if not self.lora_enabled:
            return None
        cfg = self.model.peft_config["default"]
        keys = ("r", "lora_alpha", "use_rslora", "use_dora", "bias", "fan_in_fan_out")
        out = {k: getattr(cfg, k, None) for k in keys}
        tm = cfg.target_modules
        out["target_modules"] = tm if isinstance(tm, str) else sorted(tm or [])
        out["disabled"] = self._adapter_disabled
        return out

    def identity(self) -> str:
        """16 hex digits over config + every weight (incl. LoRA) + processor settings +
        prompt version + autocast dtype. Changes when any weight changes."""
        h = hashlib.blake2b(digest_size=8)

        def feed(tag: str, obj: Any) -> None:
            h.update(tag.encode())
            h.update(json.dumps(obj, sort_keys=True, default=str).encode())

        feed("config", _clean(self.hf_model.config.to_dict(), _VOLATILE_CONFIG_KEYS))
        feed("processor", self._processor_settings())
        feed("lora", self._lora_settings())
        feed("runtime", {"prompt_version": PROMPT_VERSION, "autocast": str(self.autocast_dtype)})
        for name, t in self.model.state_dict().items():
            t = t.detach()
            feed("tensor", [name, str(t.dtype), list(t.shape)])
            flat = t.to("cpu").contiguous().reshape(-1)
            h.update(flat.view(torch.uint8).numpy().data if flat.numel() else b"")
        return h.hexdigest()

    # ------------------------------------------------------------------ encoding
    def prompt(self, n_images: int, instruction: str) -> str:
        """One sample's chat prompt: ``n_images`` image placeholders, then the instruction."""
        if getattr(self.processor, "chat_template", None):
            content = [{"type": "image"} for _ in range(n_images)]
            content.append({"type": "text", "text": instruction})
            messages = [{"role": "user", "content": content}]
            return self.processor.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        image_token = getattr(self.processor, "image_token", "<|image_pad|>")
        vocab = self.tokenizer.get_vocab()
        if "<|vision_start|>" in vocab and "<|vision_end|>" in vocab:
            image_token = f"<|vision_start|>{image_token}<|vision_end|>"
        return (
            f"<|im_start|>user\n{image_token * n_images}{instruction}<|im_end|>\n"
            "<|im_start|>assistant\n"
        )

    def _prepare(self, images: Sequence[Sequence[Any]], instructions: Sequence[str]) -> dict:
        if isinstance(instructions, str) or not isinstance(instructions, Sequence):
            raise ParameterError("instructions: expected a list of strings, one per sample")
        if not isinstance(images, Sequence) or len(images) != len(instructions):
            raise ParameterError(
                f"images: expected a list of {len(instructions)} samples (one per instruction), "
                f"each a list of camera frames; got {type(images).__name__} of "
                f"{len(images) if hasattr(images, '__len__') else '?'}"
            )
        if not instructions:
            raise ParameterError("instructions: empty batch")
        frames, prompts = [], []
        for i, (sample, text) in enumerate(zip(images, instructions, strict=True)):
            if isinstance(sample, np.ndarray | torch.Tensor | Image.Image) and (
                isinstance(sample, Image.Image) or sample.ndim == 3
            ):
                sample = [sample]  # one frame given without its list
            if len(sample) == 0:
                raise ParameterError(f"images[{i}]: a sample needs at least one camera frame")
            if not isinstance(text, str):
                raise ParameterError(f"instructions[{i}]: expected str, got {type(text).__name__}")
            frames.append([_as_frame(f, f"[{i}][{j}]") for j, f in enumerate(sample)])
            prompts.append(self.prompt(len(sample), text))
        return self.processor(images=frames, text=prompts, return_tensors="pt", padding=True)

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
        inputs = self._prepare(images, instructions)
        device, dtype = self.device, self.dtype
        inputs = {
            k: v.to(device, dtype=dtype if v.is_floating_point() else None)
            for k, v in inputs.items()
            if isinstance(v, torch.Tensor)
        }
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
        inputs = self._prepare(images, instructions)
        inputs = {
            k: v.to(self.device, dtype=self.dtype if v.is_floating_point() else None)
            for k, v in inputs.items()
            if isinstance(v, torch.Tensor)
        }
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
