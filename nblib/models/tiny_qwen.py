"""The tiny offline Qwen2.5-VL that stands in when no checkpoint is given.

Built entirely offline and bit-identically every time, so runs and feature caches are
reproducible: a byte-level BPE tokenizer trained with ``tokenizers`` on the embedded
dataset's instructions, the PIL image processor (no torchvision) and a randomly
initialised 2-layer text / 2-block vision model. :func:`build_tiny_qwen` returns the
transformers model and its processor; :meth:`nblib.models.backbone.Backbone.tiny` wraps them.
"""

from __future__ import annotations

import torch
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
)

from nblib.errors import ParameterError
from nblib.models.pretrained import Qwen2_5_VLNoVideoProcessor

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
