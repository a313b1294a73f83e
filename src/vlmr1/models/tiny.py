"""Tiny, offline checkpoints of every family (a few MB, built in about a second) for tests and benchmarks.

`build_tiny_model` writes a real ``...ForConditionalGeneration`` of the family (Qwen2-VL, Qwen2.5-VL, Qwen3-VL,
InternVL, GLM-4.1V) with tiny dimensions and random weights, plus the family's real processor (its real image and video
processors, a byte-level BPE tokenizer trained locally with the family's special tokens, a chat template like the
released one), so that `AutoProcessor.from_pretrained(dir)` and `AutoModelForImageTextToText.from_pretrained(dir)`
load it back without network. `tiny_config` gives the config object alone, for building model classes in code. What
differs per family lives in its adapter (``vlmr1.models.families``); this module drives it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import transformers

from vlmr1.models.families import Family, TinySizes, get_family, supported_model_types
from vlmr1.models.tokenizer import train_tiny_tokenizer

TINY_ARCHS = tuple(supported_model_types())


def normalize_arch(arch: str) -> str:
    """Map "qwen2.5-vl", "Qwen2_5_VL", "InternVL", ... to the model_type ("qwen2_5_vl", "internvl").

    Raises:
        ValueError: for an architecture without a tiny builder (lists the supported ones).
    """
    model_type = arch.lower().replace(".", "_").replace("-", "_")
    if model_type not in TINY_ARCHS:
        raise ValueError(f"no tiny builder for {arch!r}; supported: {', '.join(TINY_ARCHS)}")
    return model_type


def _family(arch: str) -> Family:
    return get_family(normalize_arch(arch))


def default_pixel_range(arch: str) -> tuple[int, int]:
    """Small default (min_pixels, max_pixels): 4 to 64 merged tokens' worth of pixels.

    Returns:
        (min_pixels, max_pixels); (3136, 50176) for 14-px patches, (4096, 65536) for Qwen3-VL's 16-px patches.
    """
    return _family(arch).default_pixel_range()


def tiny_config(arch: str, *, tokenizer: Any = None, **sizes: Any) -> transformers.PreTrainedConfig:
    """Config of a tiny model of family `arch`, with token ids taken from `tokenizer`.

    Args:
        arch: a model_type such as "qwen2_5_vl", "internvl", "glm4v" (dots/dashes/upper case accepted).
        tokenizer: tokenizer whose vocabulary size and special-token ids the config must match; defaults to
            the family's `train_tiny_tokenizer` (trained on the fly, ~0.1 s).
        sizes: `TinySizes` fields (text_layers, hidden_size, num_attention_heads, num_key_value_heads,
            intermediate_size, vision_layers, vision_hidden, vision_heads, max_position_embeddings,
            tie_word_embeddings, rope_theta, tile_size). rope_theta None keeps the family's base (1e6, Qwen3-VL
            5e6): those suit long contexts and 128-dim heads; a tiny head needs a far smaller one to tell image rows
            and columns apart (the demo uses 100).

    Returns:
        The family's `PreTrainedConfig` (e.g. `Qwen2_5_VLConfig`).
    """
    family = _family(arch)
    if tokenizer is None:
        tokenizer = train_tiny_tokenizer(tokens=family.chat_tokens(), chat_template=family.chat_template())
    return family.tiny_config(tokenizer, TinySizes(**sizes))


def tiny_processor(
    arch: str,
    *,
    tokenizer: Any = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    default_system_prompt: str | None = None,
    tile_size: int | None = None,
) -> transformers.ProcessorMixin:
    """The family's real processor around the tiny tokenizer, with a small pixel budget.

    Args:
        arch: model_type (or spelling of it).
        tokenizer: tokenizer to wrap; defaults to the family's `train_tiny_tokenizer`.
        min_pixels, max_pixels: image resize budget (image area); default `default_pixel_range(arch)`. Videos use
            the same. InternVL resizes to tiles instead and ignores them.
        default_system_prompt: system text the chat template injects when a conversation has none.
        tile_size: InternVL's tile edge (default: the family's tiny default).

    Returns:
        e.g. a `Qwen2_5_VLProcessor` with `Qwen2VLImageProcessor`, `Qwen2VLVideoProcessor` and the tokenizer.
    """
    family = _family(arch)
    template = family.chat_template(default_system_prompt)
    if tokenizer is None:
        tokenizer = train_tiny_tokenizer(tokens=family.chat_tokens(), chat_template=template)
    return family.tiny_processor(tokenizer, template, min_pixels=min_pixels, max_pixels=max_pixels,
                                 tile_size=tile_size)


def build_tiny_model(
    arch: str,
    output_dir: str | os.PathLike,
    *,
    seed: int = 0,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    vocab_size: int = 1536,
    dtype: torch.dtype = torch.float32,
    default_system_prompt: str | None = None,
    **sizes: Any,
) -> Path:
    """Build and save a tiny random model of family `arch` with its processor.

    Args:
        arch: a model_type such as "qwen2_5_vl", "qwen2_vl", "qwen3_vl", "internvl", "glm4v".
        output_dir: directory to write (created if needed).
        seed: seed for the weights and the tokenizer corpus.
        min_pixels, max_pixels: processor pixel budget; default `default_pixel_range(arch)`.
        vocab_size: BPE vocabulary target of the tokenizer (the trained size may be a little lower).
        dtype: dtype the weights are saved in.
        default_system_prompt: system text the chat template injects when a conversation has none.
        sizes: `TinySizes` fields (see `tiny_config`); `tile_size` also sets InternVL's processor tiles.

    Returns:
        `Path(output_dir)`, loadable with `AutoProcessor` and `AutoModelForImageTextToText`.
    """
    family = _family(arch)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    template = family.chat_template(default_system_prompt)
    tokenizer = train_tiny_tokenizer(vocab_size, seed=seed, chat_template=template, tokens=family.chat_tokens())
    tiny_sizes = TinySizes(**sizes)
    processor = family.tiny_processor(tokenizer, template, min_pixels=min_pixels, max_pixels=max_pixels,
                                      tile_size=tiny_sizes.tile_size)
    config = family.tiny_config(tokenizer, tiny_sizes)
    torch.manual_seed(seed)
    model = family.model_class(config).to(dtype)
    model.generation_config = family.tiny_generation_config(config)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir
