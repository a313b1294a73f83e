"""The Qwen-VL families: Qwen2-VL, Qwen2.5-VL and Qwen3-VL.

Module layout in transformers 5.24 (the same for the three)::

    <Family>ForConditionalGeneration
      .model                      <Family>Model
        .visual                   vision tower incl. patch merger (projector)
        .language_model           text decoder: layers.N.self_attn.{q,k,v,o}_proj, layers.N.mlp.{gate,up,down}_proj
      .lm_head

Forward/generate with images need the processor's ``mm_token_type_ids`` (M-RoPE positions are computed from it): in
transformers 5.24 Qwen2-VL and Qwen3-VL raise without it, while Qwen2.5-VL silently falls back to 1-D positions.
"""

from __future__ import annotations

from typing import Any

import transformers

from vlmr1.models.families import Family, TinySizes
from vlmr1.models.tokenizer import QWEN_CHAT_TOKENS, ChatTokens, build_qwen_chat_template, special_token_ids

# The released checkpoints' image normalisation and processor classes, per family.
_CLIP_MEAN, _CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
_PROCESSORS = {
    "qwen2_5_vl": ("Qwen2_5_VLConfig", "Qwen2_5_VLProcessor", "Qwen2VLVideoProcessor", _CLIP_MEAN, _CLIP_STD),
    "qwen2_vl": ("Qwen2VLConfig", "Qwen2VLProcessor", "Qwen2VLVideoProcessor", _CLIP_MEAN, _CLIP_STD),
    "qwen3_vl": ("Qwen3VLConfig", "Qwen3VLProcessor", "Qwen3VLVideoProcessor", (0.5,) * 3, (0.5,) * 3),
}


def _mrope_section(model_type: str, head_dim: int) -> list[int]:
    """Scale the released mrope sections (t, h, w) to `head_dim`; they must sum to head_dim // 2."""
    half = head_dim // 2
    if model_type == "qwen3_vl":
        hw = (half * 5) // 16  # real: [24, 20, 20] for half=64 (interleaved layout)
        return [half - 2 * hw, hw, hw]
    t = half // 4  # real: [16, 24, 24] for half=64
    return [t, (half - t) // 2, half - t - (half - t) // 2]


class QwenFamily(Family):
    """Qwen2-VL, Qwen2.5-VL, Qwen3-VL: the tiny builder they share."""

    def chat_tokens(self) -> ChatTokens:
        return QWEN_CHAT_TOKENS

    def chat_template(self, default_system_prompt: str | None = None) -> str:
        return build_qwen_chat_template(default_system_prompt)

    def tiny_config(self, tokenizer: Any, sizes: TinySizes) -> transformers.PreTrainedConfig:
        ids = special_token_ids(tokenizer)
        head_dim = sizes.hidden_size // sizes.num_attention_heads
        rope = {"rope_type": "default", "mrope_section": _mrope_section(self.model_type, head_dim)}
        text = {
            **sizes.text_dims(len(tokenizer)),
            "pad_token_id": tokenizer.pad_token_id,
        }
        vision = {
            "depth": sizes.vision_layers,
            "num_heads": sizes.vision_heads,
            "patch_size": self.patch_size,
            "spatial_merge_size": self.merge_size,
            "temporal_patch_size": 2,
        }
        if self.model_type == "qwen3_vl":
            rope.update(rope_theta=5_000_000.0, mrope_interleaved=True)
            text.update(head_dim=head_dim)
            vision.update(
                hidden_size=sizes.vision_hidden,
                intermediate_size=2 * sizes.vision_hidden,
                out_hidden_size=sizes.hidden_size,
                num_position_embeddings=256,  # a 16x16 learned grid, interpolated to each image
                deepstack_visual_indexes=[0],
            )
        else:
            rope.update(rope_theta=1_000_000.0)
            text.update(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"])
            if self.model_type == "qwen2_vl":
                vision.update(embed_dim=sizes.vision_hidden, hidden_size=sizes.hidden_size, mlp_ratio=2)
            else:
                vision.update(
                    hidden_size=sizes.vision_hidden,
                    intermediate_size=2 * sizes.vision_hidden,
                    out_hidden_size=sizes.hidden_size,
                    window_size=112,
                    fullatt_block_indexes=[sizes.vision_layers - 1],
                )
        if sizes.rope_theta is not None:
            rope["rope_theta"] = float(sizes.rope_theta)
        text["rope_parameters"] = rope
        config_cls = getattr(transformers, _PROCESSORS[self.model_type][0])
        config = config_cls(
            text_config=text,
            vision_config=vision,
            image_token_id=ids["<|image_pad|>"],
            video_token_id=ids["<|video_pad|>"],
            vision_start_token_id=ids["<|vision_start|>"],
            vision_end_token_id=ids["<|vision_end|>"],
            tie_word_embeddings=sizes.tie_word_embeddings,
        )
        # Top-level copies: generation utilities and TRL read these from the outer config.
        config.bos_token_id = ids["<|endoftext|>"]
        config.eos_token_id = ids["<|im_end|>"]
        config.pad_token_id = tokenizer.pad_token_id
        return config

    def tiny_processor(self, tokenizer: Any, chat_template: str, min_pixels: int | None = None,
                       max_pixels: int | None = None, tile_size: int | None = None) -> transformers.ProcessorMixin:
        _, processor_name, video_name, mean, std = _PROCESSORS[self.model_type]
        lo, hi = self.default_pixel_range()
        common = {
            "size": {"shortest_edge": min_pixels or lo, "longest_edge": max_pixels or hi},
            "patch_size": self.patch_size,
            "merge_size": self.merge_size,
            "temporal_patch_size": 2,
            "image_mean": list(mean),
            "image_std": list(std),
        }
        # cap_pixels_per_frame=True: the recommended behaviour, and it silences a FutureWarning on every call.
        video_processor = getattr(transformers, video_name)(**common, cap_pixels_per_frame=True)
        return getattr(transformers, processor_name)(image_processor=transformers.Qwen2VLImageProcessor(**common),
                                                     tokenizer=tokenizer, video_processor=video_processor,
                                                     chat_template=chat_template)


QWEN2_5_VL = QwenFamily(
    model_type="qwen2_5_vl",
    model_class_name="Qwen2_5_VLForConditionalGeneration",
    vision_class_path="transformers.models.qwen2_5_vl.modeling_qwen2_5_vl:Qwen2_5_VisionTransformerPretrainedModel",
    frame_kind="resized_pixels",
    patch_size=14,
    merge_size=2,
    min_pixels=56 * 56,
    max_pixels=28 * 28 * 16384,
    frame_source="Qwen2.5-VL technical report, arXiv:2502.13923: absolute coordinates on the resized input",
    shared_prefix=True,
)
QWEN2_VL = QwenFamily(
    model_type="qwen2_vl",
    model_class_name="Qwen2VLForConditionalGeneration",
    vision_class_path="transformers.models.qwen2_vl.modeling_qwen2_vl:Qwen2VisionTransformerPretrainedModel",
    frame_kind="norm1000",
    patch_size=14,
    merge_size=2,
    min_pixels=56 * 56,
    max_pixels=28 * 28 * 1280,
    frame_source="Qwen2-VL technical report, arXiv:2409.12191: box coordinates normalised to [0, 1000)",
    shared_prefix=True,
)
QWEN3_VL = QwenFamily(
    model_type="qwen3_vl",
    model_class_name="Qwen3VLForConditionalGeneration",
    vision_class_path="transformers.models.qwen3_vl.modeling_qwen3_vl:Qwen3VLVisionModel",
    frame_kind="norm1000",
    patch_size=16,
    merge_size=2,
    min_pixels=65536,
    max_pixels=16777216,
    # transformers' qwen3_vl code says nothing about coordinates; the official QwenLM/Qwen3-VL cookbooks
    # (spatial_understanding.ipynb, mobile_agent.ipynb) use relative 0-1000 coordinates
    frame_source="QwenLM/Qwen3-VL cookbooks (spatial_understanding): relative coordinates on a 0-1000 grid",
    shared_prefix=True,
)
