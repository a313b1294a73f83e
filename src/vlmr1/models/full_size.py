"""Real architectures with random weights: the released checkpoints' widths, optionally with fewer layers.

``LIKE`` holds each released model's ``config.json`` numbers (widths, heads, key-value heads, window sizes,
full-attention blocks, rope sections and base, DeepStack indexes, vocabulary size, tied embeddings); the token ids
come from the given tokenizer (vlmr1's local one), so the model pairs with the offline processor. ``real_config``
cuts the depth on request (``text_layers``, ``vision_layers``) and keeps every width: a cut model has the real
per-layer cost, the real image-token counts and the real numerics of window attention, GQA and bf16, on a CPU.
Outputs are noise. ``real_width_model`` builds the model object and its processor (the released resize or tile
settings); ``build_real_width_model`` saves both for ``vlmr1 train``/``vlmr1 eval`` (``vlmr1 tiny-model --like``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers

from vlmr1.errors import bad_argument
from vlmr1.models.families import get_family
from vlmr1.models.tokenizer import special_token_ids, train_tiny_tokenizer

DEFAULT_TEXT_LAYERS, DEFAULT_VISION_LAYERS = 2, 2
CONFIG_CLASSES = {"qwen2_5_vl": "Qwen2_5_VLConfig", "qwen2_vl": "Qwen2VLConfig", "qwen3_vl": "Qwen3VLConfig",
                  "internvl": "InternVLConfig"}


@dataclass(frozen=True)
class RealArchitecture:
    """One released checkpoint's architecture.

    Attributes:
        source: the Hub repository whose ``config.json`` (and ``preprocessor_config.json``) gave the numbers.
        model_type: the vlmr1 family (``config.model_type``).
        text, vision: the text and vision sub-config fields; the token ids are added from the tokenizer.
        top: other top-level config fields (InternVL's projector settings).
        tie_word_embeddings: whether the LM head shares the input embedding, as released.
        image_settings: the released processor's image budget: ``min_pixels``/``max_pixels`` (Qwen) or
            ``tile_size``/``max_tiles`` (InternVL).
        full_attention: vision blocks with full attention (Qwen2.5-VL: the other blocks attend in windows).
        deepstack: vision blocks whose features are added to the first text layers (Qwen3-VL).
    """

    source: str
    model_type: str
    text: Mapping[str, Any]
    vision: Mapping[str, Any]
    tie_word_embeddings: bool
    image_settings: Mapping[str, int]
    top: Mapping[str, Any] = field(default_factory=dict)
    full_attention: tuple[int, ...] = ()
    deepstack: tuple[int, ...] = ()

    @property
    def text_layers(self) -> int:
        return self.text["num_hidden_layers"]

    @property
    def vision_layers(self) -> int:
        return self.vision.get("depth", self.vision.get("num_hidden_layers"))


QWEN_VOCAB = 151936  # the embedding rows of every Qwen2/2.5/3(-VL) checkpoint (the tokenizer has 151665 tokens)
QWEN_IMAGE_BUDGET = {"min_pixels": 56 * 56, "max_pixels": 28 * 28 * 16384}  # preprocessor_config.json of Qwen2(.5)-VL

LIKE: dict[str, RealArchitecture] = {
    # Qwen/Qwen2.5-VL-3B-Instruct config.json: 36 text layers of width 2048 (16 query / 2 key-value heads), a
    # 32-block vision tower of width 1280 attending in 112-px windows except blocks 7, 15, 23, 31
    "qwen2_5_vl_3b": RealArchitecture(
        source="Qwen/Qwen2.5-VL-3B-Instruct", model_type="qwen2_5_vl",
        text=dict(vocab_size=QWEN_VOCAB, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                  num_attention_heads=16, num_key_value_heads=2, max_position_embeddings=128000, rms_norm_eps=1e-6,
                  hidden_act="silu", sliding_window=32768, use_sliding_window=False, max_window_layers=70,
                  rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]}),
        vision=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, in_chans=3, out_hidden_size=2048,
                    patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112, tokens_per_second=2,
                    hidden_act="silu"),
        full_attention=(7, 15, 23, 31), tie_word_embeddings=True, image_settings=QWEN_IMAGE_BUDGET),
    # Qwen/Qwen2-VL-2B-Instruct config.json: 28 text layers of width 1536 (12 / 2 heads), 32 vision blocks of
    # width 1280 (MLP ratio 4, full attention everywhere)
    "qwen2_vl_2b": RealArchitecture(
        source="Qwen/Qwen2-VL-2B-Instruct", model_type="qwen2_vl",
        text=dict(vocab_size=QWEN_VOCAB, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                  num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6,
                  hidden_act="silu", sliding_window=32768, use_sliding_window=False, max_window_layers=28,
                  rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]}),
        vision=dict(depth=32, embed_dim=1280, mlp_ratio=4, num_heads=16, in_chans=3, hidden_size=1536, patch_size=14,
                    spatial_merge_size=2, temporal_patch_size=2, hidden_act="quick_gelu"),
        tie_word_embeddings=True, image_settings=QWEN_IMAGE_BUDGET),
    # Qwen/Qwen3-VL-4B-Instruct config.json: 36 text layers of width 2560 (32 / 8 heads of 128), interleaved mrope
    # sections 24/20/20 on a 5e6 base, 24 vision blocks of width 1024 with 16-px patches, DeepStack from blocks 5,
    # 11, 17; preprocessor_config.json: 65536 to 16777216 pixels
    "qwen3_vl_4b": RealArchitecture(
        source="Qwen/Qwen3-VL-4B-Instruct", model_type="qwen3_vl",
        text=dict(vocab_size=QWEN_VOCAB, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                  num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=262144,
                  rms_norm_eps=1e-6, hidden_act="silu",
                  rope_parameters={"rope_type": "default", "rope_theta": 5_000_000.0, "mrope_section": [24, 20, 20],
                                   "mrope_interleaved": True}),
        vision=dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, in_channels=3,
                    out_hidden_size=2560, patch_size=16, spatial_merge_size=2, temporal_patch_size=2,
                    num_position_embeddings=2304, hidden_act="gelu_pytorch_tanh"),
        deepstack=(5, 11, 17), tie_word_embeddings=True,
        image_settings={"min_pixels": 65536, "max_pixels": 16777216}),
    # OpenGVLab/InternVL3-2B-hf config.json: InternViT-300M (24 blocks of width 1024, 448-px tiles) and a
    # Qwen2.5-1.5B decoder (28 layers of width 1536, 12 / 2 heads) with an untied LM head and 151674 embedding
    # rows; pixel shuffle 0.5: 256 tokens a tile; up to 12 tiles and a thumbnail per image
    "internvl3_2b": RealArchitecture(
        source="OpenGVLab/InternVL3-2B-hf", model_type="internvl",
        text=dict(model_type="qwen2", vocab_size=151674, hidden_size=1536, intermediate_size=8960,
                  num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
                  rms_norm_eps=1e-6, hidden_act="silu",
                  rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0}),
        vision=dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                    image_size=[448, 448], patch_size=[14, 14], attention_bias=True, use_qk_norm=False,
                    norm_type="layer_norm", layer_norm_eps=1e-6, hidden_act="gelu", layer_scale_init_value=0.1),
        top=dict(image_seq_length=256, downsample_ratio=0.5, projector_hidden_act="gelu", vision_feature_layer=-1,
                 vision_feature_select_strategy="default"),
        tie_word_embeddings=False, image_settings={"tile_size": 448, "max_tiles": 12}),
}


def real_architecture(like: str) -> RealArchitecture:
    """The entry of ``LIKE`` named ``like``.

    Raises:
        UserError: an unknown name (``--like``); the message lists the known ones.
    """
    if like not in LIKE:
        raise bad_argument("--like", f"no real architecture named {like!r}", f"give one of: {', '.join(LIKE)}")
    return LIKE[like]


def _cut_vision(arch: RealArchitecture, depth: int, text_layers: int) -> dict[str, Any]:
    """The vision fields with ``depth`` blocks; block indexes that name special blocks follow the cut."""
    vision = dict(arch.vision)
    vision["depth" if "depth" in vision else "num_hidden_layers"] = depth
    if arch.full_attention:
        if depth < 2:
            raise bad_argument("--vision_layers", f"{depth}: {arch.source} needs a window-attention block and a "
                               "full-attention one", "give --vision_layers 2 or more")
        # the released pattern up to the cut (depth 8: blocks 0-6 windowed, 7 full); shorter: the last block full
        vision["fullatt_block_indexes"] = [i for i in arch.full_attention if i < depth] or [depth - 1]
    if arch.deepstack:
        # the same relative places in the shorter tower, one per text layer at most (each feeds one layer)
        scaled = sorted({i * depth // arch.vision_layers for i in arch.deepstack})
        vision["deepstack_visual_indexes"] = scaled[:text_layers]
    return vision


def real_config(like: str, tokenizer: Any, *, text_layers: int | None = None,
                vision_layers: int | None = None) -> transformers.PreTrainedConfig:
    """The released architecture ``like`` with ``tokenizer``'s special-token ids, its depth optionally cut.

    Args:
        like: a key of ``LIKE`` ("qwen2_5_vl_3b", "qwen2_vl_2b", "qwen3_vl_4b", "internvl3_2b").
        tokenizer: a tokenizer with the family's special tokens (``train_tiny_tokenizer(tokens=family.chat_tokens())``).
        text_layers: decoder layers to keep (None: the released number).
        vision_layers: vision blocks to keep (None: the released number). Qwen2.5-VL keeps its released
            full-attention blocks below the cut, or makes the last block full when none is (at least 2 blocks);
            Qwen3-VL's DeepStack indexes move to the same relative depth.

    Returns:
        The family's config (e.g. ``Qwen2_5_VLConfig``) with every width, head count, window and rope setting of the
        released one and the released vocabulary size.

    Raises:
        UserError: an unknown ``like``, a depth below 1 (or a Qwen2.5-VL tower below 2), or a tokenizer whose
            special tokens are missing or beyond the vocabulary.
    """
    arch = real_architecture(like)
    family = get_family(arch.model_type)
    text_layers = arch.text_layers if text_layers is None else text_layers
    vision_layers = arch.vision_layers if vision_layers is None else vision_layers
    for flag, value in (("--text_layers", text_layers), ("--vision_layers", vision_layers)):
        if value < 1:
            raise bad_argument(flag, f"{value}: a model needs at least one layer", "give 1 or more")
    ids = special_token_ids(tokenizer, family.chat_tokens().special)
    vocab = arch.text["vocab_size"]
    bad = {token: i for token, i in ids.items() if i is None or not 0 <= i < vocab}
    if bad:
        raise bad_argument("tokenizer", f"special tokens {bad} are missing or not below the vocabulary size {vocab}",
                           "use train_tiny_tokenizer(tokens=family.chat_tokens())")
    bos, eos, pad = ids["<|endoftext|>"], ids["<|im_end|>"], tokenizer.pad_token_id
    text = {**arch.text, "num_hidden_layers": text_layers, "bos_token_id": bos, "eos_token_id": eos,
            "pad_token_id": pad, "tie_word_embeddings": arch.tie_word_embeddings}
    vision = _cut_vision(arch, vision_layers, text_layers)
    tokens = {"image_token_id": ids["<IMG_CONTEXT>"]} if arch.model_type == "internvl" else {
        "image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"], "vision_end_token_id": ids["<|vision_end|>"]}
    config_class = getattr(transformers, CONFIG_CLASSES[arch.model_type])
    config = config_class(text_config=text, vision_config=vision, tie_word_embeddings=arch.tie_word_embeddings,
                          **tokens, **arch.top)
    # top-level copies: generation utilities and TRL read these from the outer config
    config.bos_token_id, config.eos_token_id, config.pad_token_id = bos, eos, pad
    return config


def real_processor(like: str, tokenizer: Any = None, default_system_prompt: str | None = None
                   ) -> transformers.ProcessorMixin:
    """The family's real processor with the released image settings, around vlmr1's local tokenizer.

    Args:
        like: a key of ``LIKE``.
        tokenizer: the tokenizer to wrap; default: the family's ``train_tiny_tokenizer``.
        default_system_prompt: system text the chat template adds when a conversation has none.

    Returns:
        e.g. a ``Qwen2_5_VLProcessor`` resizing to 3136..12845056 pixels in 28-px steps (a 640x480 image: 391
        image tokens, as the released processor), or an ``InternVLProcessor`` with 448-px tiles, at most 12.
    """
    arch = real_architecture(like)
    family = get_family(arch.model_type)
    template = family.chat_template(default_system_prompt)
    if tokenizer is None:
        tokenizer = train_tiny_tokenizer(tokens=family.chat_tokens(), chat_template=template)
    settings = arch.image_settings
    processor = family.tiny_processor(tokenizer, template, min_pixels=settings.get("min_pixels"),
                                      max_pixels=settings.get("max_pixels"), tile_size=settings.get("tile_size"))
    if "max_tiles" in settings:
        family.set_image_limits(processor, max_tiles=settings["max_tiles"])
    return processor


def real_width_model(like: str, *, text_layers: int | None = DEFAULT_TEXT_LAYERS,
                     vision_layers: int | None = DEFAULT_VISION_LAYERS, dtype: torch.dtype = torch.float32,
                     device: str | torch.device = "cpu", seed: int = 0, attn_implementation: str = "sdpa",
                     default_system_prompt: str | None = None) -> tuple[torch.nn.Module, transformers.ProcessorMixin]:
    """A random-weight model of the released architecture ``like`` (depth cut as asked) and its processor.

    Args:
        like: a key of ``LIKE``.
        text_layers, vision_layers: depths to keep (None: the released ones); see ``real_config``.
        dtype, device: where the weights are made (bf16 on a GPU for the full model).
        seed: seed of the weights (the family's own initialisation: normal, std ``initializer_range`` 0.02).
        attn_implementation: "sdpa", "eager" or "flash_attention_2".
        default_system_prompt: see ``real_processor``.

    Returns:
        ``(model, processor)``; the model's ``generation_config`` has the tokenizer's eos and pad.
    """
    from transformers.initialization import no_init_weights

    family = get_family(real_architecture(like).model_type)
    processor = real_processor(like, default_system_prompt=default_system_prompt)
    config = real_config(like, processor.tokenizer, text_layers=text_layers, vision_layers=vision_layers)
    # allocate without torch's default init, then draw every weight once with the family's own init
    with no_init_weights(), torch.device(device):
        model = family.model_class._from_config(config, dtype=dtype, attn_implementation=attn_implementation)
    torch.manual_seed(seed)
    model.init_weights()
    model.generation_config = family.tiny_generation_config(config)
    return model, processor


def build_real_width_model(like: str, output_dir: str | os.PathLike, *,
                           text_layers: int | None = DEFAULT_TEXT_LAYERS,
                           vision_layers: int | None = DEFAULT_VISION_LAYERS, seed: int = 0,
                           dtype: torch.dtype = torch.float32, default_system_prompt: str | None = None) -> Path:
    """Save ``real_width_model(like, ...)`` and its processor, loadable offline by ``vlmr1 train`` and ``vlmr1 eval``.

    Returns:
        ``Path(output_dir)``.
    """
    model, processor = real_width_model(like, text_layers=text_layers, vision_layers=vision_layers, dtype=dtype,
                                        seed=seed, default_system_prompt=default_system_prompt)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir
