"""Tiny, offline Qwen-VL checkpoints (a few MB, built in about a second) for tests and benchmarks.

`build_tiny_model` writes a real `Qwen2_5_VLForConditionalGeneration` / `Qwen2VLForConditionalGeneration` /
`Qwen3VLForConditionalGeneration` with tiny dimensions and random weights, plus the family's real processor
(its real image and video processors, a locally trained byte-level BPE tokenizer, a Qwen-style chat template),
so that `AutoProcessor.from_pretrained(dir)` and `AutoModelForImageTextToText.from_pretrained(dir)` load it back
without network. `tiny_config` gives the config object alone, for building model classes in code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import GenerationConfig

from vlmr1.models.families import get_family
from vlmr1.models.tokenizer import build_qwen_chat_template, special_token_ids, train_tiny_tokenizer

# Per family: config/processor classes and image normalisation of the released checkpoints.
_SPECS: dict[str, dict[str, Any]] = {
    "qwen2_5_vl": {
        "config": "Qwen2_5_VLConfig",
        "processor": "Qwen2_5_VLProcessor",
        "video_processor": "Qwen2VLVideoProcessor",
        "image_mean": (0.48145466, 0.4578275, 0.40821073),
        "image_std": (0.26862954, 0.26130258, 0.27577711),
    },
    "qwen2_vl": {
        "config": "Qwen2VLConfig",
        "processor": "Qwen2VLProcessor",
        "video_processor": "Qwen2VLVideoProcessor",
        "image_mean": (0.48145466, 0.4578275, 0.40821073),
        "image_std": (0.26862954, 0.26130258, 0.27577711),
    },
    "qwen3_vl": {
        "config": "Qwen3VLConfig",
        "processor": "Qwen3VLProcessor",
        "video_processor": "Qwen3VLVideoProcessor",
        "image_mean": (0.5, 0.5, 0.5),
        "image_std": (0.5, 0.5, 0.5),
    },
}


TINY_ARCHS = tuple(sorted(_SPECS))


def normalize_arch(arch: str) -> str:
    """Map "qwen2.5-vl", "Qwen2_5_VL", ... to the model_type "qwen2_5_vl".

    Args:
        arch: a model_type or a spelling of it with dots/dashes/upper case.

    Returns:
        The model_type.

    Raises:
        ValueError: for an architecture without a tiny builder (lists the supported ones).
    """
    model_type = arch.lower().replace(".", "_").replace("-", "_")
    if model_type not in _SPECS:
        raise ValueError(f"no tiny builder for {arch!r}; supported: {', '.join(sorted(_SPECS))}")
    return model_type


def default_pixel_range(arch: str) -> tuple[int, int]:
    """Small default (min_pixels, max_pixels): 4 to 64 merged tokens' worth of pixels.

    Args:
        arch: model_type (or spelling of it).

    Returns:
        (min_pixels, max_pixels); (3136, 50176) for 14-px patches, (4096, 65536) for Qwen3-VL's 16-px patches.
    """
    family = get_family(normalize_arch(arch))
    factor = family.patch_size * family.merge_size
    return factor * factor * 4, factor * factor * 64


def _mrope_section(model_type: str, head_dim: int) -> list[int]:
    """Scale the released mrope sections (t, h, w) to `head_dim`; they must sum to head_dim // 2."""
    half = head_dim // 2
    if model_type == "qwen3_vl":
        hw = (half * 5) // 16  # real: [24, 20, 20] for half=64 (interleaved layout)
        return [half - 2 * hw, hw, hw]
    t = half // 4  # real: [16, 24, 24] for half=64
    return [t, (half - t) // 2, half - t - (half - t) // 2]


def tiny_config(
    arch: str,
    *,
    tokenizer: Any = None,
    text_layers: int = 2,
    hidden_size: int = 64,
    num_attention_heads: int = 2,
    num_key_value_heads: int = 1,
    intermediate_size: int = 128,
    vision_layers: int = 2,
    vision_hidden: int = 32,
    vision_heads: int = 2,
    max_position_embeddings: int = 4096,
    tie_word_embeddings: bool = False,
    rope_theta: float | None = None,
) -> transformers.PreTrainedConfig:
    """Config of a tiny model of family `arch`, with token ids taken from `tokenizer`.

    Args:
        arch: "qwen2_5_vl", "qwen2_vl" or "qwen3_vl" (dots/dashes accepted).
        tokenizer: tokenizer whose vocabulary size and special-token ids the config must match; defaults to
            the deterministic `train_tiny_tokenizer()` (trained on the fly, ~0.1 s).
        text_layers, hidden_size, num_attention_heads, num_key_value_heads, intermediate_size: text decoder sizes.
        vision_layers, vision_hidden, vision_heads: vision tower sizes (its output matches `hidden_size`).
        max_position_embeddings: text context length.
        tie_word_embeddings: tie lm_head to the input embeddings.
        rope_theta: rotary base of the text decoder; None: the family's (1e6, Qwen3-VL 5e6). Those bases suit long
            contexts and 128-dim heads; a tiny head needs a far smaller one to tell image rows and columns apart
            (the demo uses 100).

    Returns:
        The family's `PreTrainedConfig` (e.g. `Qwen2_5_VLConfig`).
    """
    model_type = normalize_arch(arch)
    family = get_family(model_type)
    if tokenizer is None:
        tokenizer = train_tiny_tokenizer()
    ids = special_token_ids(tokenizer)
    head_dim = hidden_size // num_attention_heads
    rope = {"rope_type": "default", "mrope_section": _mrope_section(model_type, head_dim)}
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "num_hidden_layers": text_layers,
        "num_attention_heads": num_attention_heads,
        "num_key_value_heads": num_key_value_heads,
        "max_position_embeddings": max_position_embeddings,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision = {
        "depth": vision_layers,
        "num_heads": vision_heads,
        "patch_size": family.patch_size,
        "spatial_merge_size": family.merge_size,
        "temporal_patch_size": 2,
    }
    if model_type == "qwen3_vl":
        rope.update(rope_theta=5_000_000.0, mrope_interleaved=True)
        text.update(head_dim=head_dim)
        vision.update(
            hidden_size=vision_hidden,
            intermediate_size=2 * vision_hidden,
            out_hidden_size=hidden_size,
            num_position_embeddings=256,  # a 16x16 learned grid, interpolated to each image
            deepstack_visual_indexes=[0],
        )
    else:
        rope.update(rope_theta=1_000_000.0)
        text.update(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"])
        if model_type == "qwen2_vl":
            vision.update(embed_dim=vision_hidden, hidden_size=hidden_size, mlp_ratio=2)
        else:
            vision.update(
                hidden_size=vision_hidden,
                intermediate_size=2 * vision_hidden,
                out_hidden_size=hidden_size,
                window_size=112,
                fullatt_block_indexes=[vision_layers - 1],
            )
    if rope_theta is not None:
        rope["rope_theta"] = float(rope_theta)
    text["rope_parameters"] = rope
    config_cls = getattr(transformers, _SPECS[model_type]["config"])
    config = config_cls(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=tie_word_embeddings,
    )
    # Top-level copies: generation utilities and TRL read these from the outer config.
    config.bos_token_id = ids["<|endoftext|>"]
    config.eos_token_id = ids["<|im_end|>"]
    config.pad_token_id = tokenizer.pad_token_id
    return config


def tiny_processor(
    arch: str,
    *,
    tokenizer: Any = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    default_system_prompt: str | None = None,
) -> transformers.ProcessorMixin:
    """The family's real processor around the tiny tokenizer, with a small pixel budget.

    Args:
        arch: model_type (or spelling of it).
        tokenizer: tokenizer to wrap; defaults to `train_tiny_tokenizer()`.
        min_pixels, max_pixels: image resize budget; default `default_pixel_range(arch)`. Videos use the same.
        default_system_prompt: system text the chat template injects when a conversation has none.

    Returns:
        e.g. a `Qwen2_5_VLProcessor` with `Qwen2VLImageProcessor`, `Qwen2VLVideoProcessor` and the tokenizer.
    """
    model_type = normalize_arch(arch)
    family = get_family(model_type)
    spec = _SPECS[model_type]
    lo, hi = default_pixel_range(model_type)
    size = {"shortest_edge": min_pixels or lo, "longest_edge": max_pixels or hi}
    template = build_qwen_chat_template(default_system_prompt)
    if tokenizer is None:
        tokenizer = train_tiny_tokenizer(chat_template=template)
    common = {
        "size": size,
        "patch_size": family.patch_size,
        "merge_size": family.merge_size,
        "temporal_patch_size": 2,
        "image_mean": list(spec["image_mean"]),
        "image_std": list(spec["image_std"]),
    }
    image_processor = transformers.Qwen2VLImageProcessor(**common)
    # cap_pixels_per_frame=True: the recommended behaviour, and it silences a FutureWarning on every call.
    video_processor = getattr(transformers, spec["video_processor"])(**common, cap_pixels_per_frame=True)
    processor_cls = getattr(transformers, spec["processor"])
    return processor_cls(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=template,
    )


def build_tiny_model(
    arch: str,
    output_dir: str | os.PathLike,
    *,
    text_layers: int = 2,
    hidden_size: int = 64,
    num_attention_heads: int = 2,
    num_key_value_heads: int = 1,
    intermediate_size: int = 128,
    vision_layers: int = 2,
    vision_hidden: int = 32,
    vision_heads: int = 2,
    seed: int = 0,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    vocab_size: int = 1536,
    dtype: torch.dtype = torch.float32,
    default_system_prompt: str | None = None,
    rope_theta: float | None = None,
) -> Path:
    """Build and save a tiny random model of family `arch` with its processor.

    Args:
        arch: "qwen2_5_vl", "qwen2_vl" or "qwen3_vl" (dots/dashes accepted).
        output_dir: directory to write (created if needed).
        text_layers, hidden_size, num_attention_heads, num_key_value_heads, intermediate_size: text sizes.
        vision_layers, vision_hidden, vision_heads: vision tower sizes.
        seed: seed for the weights and the tokenizer corpus.
        min_pixels, max_pixels: processor pixel budget; default `default_pixel_range(arch)`.
        vocab_size: BPE vocabulary target of the tokenizer (the trained size may be a little lower).
        dtype: dtype the weights are saved in.
        default_system_prompt: system text the chat template injects when a conversation has none.
        rope_theta: rotary base of the text decoder (see `tiny_config`); None: the family's.

    Returns:
        `Path(output_dir)`, loadable with `AutoProcessor` and `AutoModelForImageTextToText`.
    """
    model_type = normalize_arch(arch)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = train_tiny_tokenizer(
        vocab_size, seed=seed, chat_template=build_qwen_chat_template(default_system_prompt)
    )
    processor = tiny_processor(
        model_type,
        tokenizer=tokenizer,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        default_system_prompt=default_system_prompt,
    )
    config = tiny_config(
        model_type,
        tokenizer=tokenizer,
        text_layers=text_layers,
        hidden_size=hidden_size,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        intermediate_size=intermediate_size,
        vision_layers=vision_layers,
        vision_hidden=vision_hidden,
        vision_heads=vision_heads,
        rope_theta=rope_theta,
    )
    torch.manual_seed(seed)
    model = get_family(model_type).model_class(config).to(dtype)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir
