"""GLM-4.1V (``zai-org/GLM-4.1V-9B-Thinking``, ``-Base``) through transformers' ``Glm4vForConditionalGeneration``.

Module layout in transformers 5.24::

    Glm4vForConditionalGeneration
      .model                      Glm4vModel
        .visual                   vision tower incl. downsample and patch merger (its MLPs have gate/up/down_proj)
        .language_model           GLM-4 decoder: layers.N.self_attn.{q,k,v,o}_proj, layers.N.mlp.{gate_up,down}_proj
      .lm_head

The image inputs are Qwen's (flat patches with ``image_grid_thw``, ``mm_token_type_ids`` for M-RoPE), the chat
format is GLM's (``[gMASK]<sop><|user|>\\n...<|assistant|>\\n``, an image as
``<|begin_of_image|><|image|><|end_of_image|>``). Its image processor counts the pixel limits over two frames (the
temporal patch of a still image), which vlmr1 accounts for so that ``--max_pixels`` bounds the image area as for Qwen.
GLM-4.1V-Thinking writes its final answer between ``<|begin_of_box|>`` and ``<|end_of_box|>``; the answer parsers drop
those markers (``vlmr1.rewards.parsing.answer_or_text``).
"""

from __future__ import annotations

import json
from typing import Any

import transformers
from torch import nn

from vlmr1.models.families import Family, TinySizes
from vlmr1.models.tokenizer import ChatTokens, special_token_ids

# GLM-4's special tokens in the order of the released vocabulary (<|endoftext|> = 151329 ... <|video|> = 151344, as
# Glm4vConfig's default ids), then the answer-box markers.
GLM_SPECIAL_TOKENS = ("<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>",
                      "<|assistant|>", "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>",
                      "<|begin_of_video|>", "<|end_of_video|>", "<|image|>", "<|video|>", "<|begin_of_box|>",
                      "<|end_of_box|>")
# A turn ends where the next one would start: GLM's generation config stops at these.
GLM_STOP_TOKENS = ("<|endoftext|>", "<|user|>", "<|observation|>")
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def _mrope_section(head_dim: int) -> list[int]:
    """The released [8, 12, 12] (t, h, w) scaled to ``head_dim``: half of each head rotates (partial_rotary_factor
    0.5), and the sections cover half of that."""
    half = head_dim // 4
    t = half // 4
    return [t, (half - t) // 2, half - t - (half - t) // 2]


class Glm4vFamily(Family):
    """GLM-4.1V: Qwen's image layout and M-RoPE, GLM's chat format and tokens, fused gate/up projections."""

    def external_parameters(self, model: nn.Module) -> list[tuple[nn.Module, nn.Parameter]]:
        """The vision embeddings interpolate their ``position_embedding.weight`` without calling that module, so
        under ZeRO-3 it stays an empty partition unless registered with them."""
        from transformers.models.glm4v.modeling_glm4v import Glm4vVisionEmbeddings

        return [(m, m.position_embedding.weight) for m in model.modules() if isinstance(m, Glm4vVisionEmbeddings)]

    def chat_tokens(self) -> ChatTokens:
        return ChatTokens(GLM_SPECIAL_TOKENS, eos="<|endoftext|>", pad="<|endoftext|>")

    def chat_template(self, default_system_prompt: str | None = None) -> str:
        head = "[gMASK]<sop>"
        if default_system_prompt is not None:
            head += ("{%- if messages and messages[0]['role'] != 'system' -%}"
                     "{{- '<|system|>\\n' + " + json.dumps(default_system_prompt) + " -}}{%- endif -%}")
        return head + (
            "{%- for message in messages -%}"
            "{{- '<|' + message['role'] + '|>\\n' -}}"
            "{%- if message['content'] is string -%}"
            "{{- message['content'] -}}"
            "{%- elif message['content'] is not none -%}"
            "{%- for part in message['content'] -%}"
            "{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}"
            "{{- '<|begin_of_image|><|image|><|end_of_image|>' -}}"
            "{%- elif part['type'] == 'video' or 'video' in part -%}"
            "{{- '<|begin_of_video|><|video|><|end_of_video|>' -}}"
            "{%- elif 'text' in part -%}"
            "{{- part['text'] -}}"
            "{%- endif -%}"
            "{%- endfor -%}"
            "{%- endif -%}"
            "{%- endfor -%}"
            "{%- if add_generation_prompt -%}"
            "{{- '<|assistant|>\\n' -}}"
            "{%- endif -%}"
        )

    def tiny_config(self, tokenizer: Any, sizes: TinySizes) -> transformers.PreTrainedConfig:
        ids = special_token_ids(tokenizer, GLM_SPECIAL_TOKENS)
        head_dim = sizes.hidden_size // sizes.num_attention_heads
        text = {
            **sizes.text_dims(len(tokenizer)),
            "pad_token_id": tokenizer.pad_token_id,
            "rope_parameters": {"rope_type": "default", "rope_theta": float(sizes.rope_theta or 10_000.0),
                                "mrope_section": _mrope_section(head_dim), "partial_rotary_factor": 0.5},
        }
        vision = {
            "depth": sizes.vision_layers,
            "hidden_size": sizes.vision_hidden,
            "num_heads": sizes.vision_heads,
            "intermediate_size": 2 * sizes.vision_hidden,
            "out_hidden_size": sizes.hidden_size,
            "image_size": 4 * self.patch_size,  # its learned position grid, interpolated to each image
            "patch_size": self.patch_size,
            "spatial_merge_size": self.merge_size,
            "temporal_patch_size": 2,
        }
        config = transformers.Glm4vConfig(
            text_config=text, vision_config=vision, image_token_id=ids["<|image|>"], video_token_id=ids["<|video|>"],
            image_start_token_id=ids["<|begin_of_image|>"], image_end_token_id=ids["<|end_of_image|>"],
            video_start_token_id=ids["<|begin_of_video|>"], video_end_token_id=ids["<|end_of_video|>"],
            tie_word_embeddings=sizes.tie_word_embeddings)
        config.eos_token_id = [ids[t] for t in GLM_STOP_TOKENS]
        config.pad_token_id = tokenizer.pad_token_id
        return config

    def tiny_processor(self, tokenizer: Any, chat_template: str, min_pixels: int | None = None,
                       max_pixels: int | None = None, tile_size: int | None = None) -> transformers.ProcessorMixin:
        lo, hi = self.default_pixel_range()
        common = {
            "size": {"shortest_edge": (min_pixels or lo) * self.size_frames,
                     "longest_edge": (max_pixels or hi) * self.size_frames},
            "patch_size": self.patch_size,
            "merge_size": self.merge_size,
            "temporal_patch_size": 2,
            "image_mean": list(CLIP_MEAN),
            "image_std": list(CLIP_STD),
        }
        return transformers.Glm4vProcessor(image_processor=transformers.Glm4vImageProcessor(**common),
                                           tokenizer=tokenizer, video_processor=transformers.Glm4vVideoProcessor(**common),
                                           chat_template=chat_template)

    def tiny_generation_config(self, config: transformers.PreTrainedConfig) -> transformers.GenerationConfig:
        return transformers.GenerationConfig(eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id)


GLM4V = Glm4vFamily(
    model_type="glm4v",
    model_class_name="Glm4vForConditionalGeneration",
    vision_class_path="transformers.models.glm4v.modeling_glm4v:Glm4vVisionModel",
    frame_kind="norm1000",
    patch_size=14,
    merge_size=2,
    min_pixels=112 * 112 // 2,  # the processor's size is counted over two frames (see size_frames)
    max_pixels=28 * 28 * 15000 // 2,
    # zai-org's GLM-V grounding guide (glm-skills, glmv-grounding): "x and y are relative coordinates normalized from
    # pixel coordinates ... using image width W and height H (range 0-1000), i.e. x=round(x_pixel/W*1000)"
    frame_source="zai-org GLM-V grounding guide: boxes on a 0-1000 grid relative to the image",
    shared_prefix=True,
    text_projections=("q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj"),
    size_frames=2,
)
