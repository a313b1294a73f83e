"""InternVL through transformers' own classes (the ``-hf`` checkpoints, e.g. ``OpenGVLab/InternVL3-1B-hf``).

Module layout in transformers 5.24::

    InternVLForConditionalGeneration
      .model                      InternVLModel
        .vision_tower             InternViT (InternVLVisionModel)
        .multi_modal_projector    pixel-shuffled features -> text width (VLM-R1's ``mlp1``)
        .language_model           Qwen2 (InternVL3) decoder: layers.N.self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj
      .lm_head

Images are cut into square tiles (``GotOcr2ImageProcessor`` with ``crop_to_patches``: up to ``max_patches`` tiles
plus a thumbnail), ``pixel_values`` is ``(tiles, 3, H, W)`` with no grid, and each tile becomes
``config.image_seq_length`` ``<IMG_CONTEXT>`` tokens between ``<img>`` and ``</img>``. VLM-R1's ``--max_anyres_num``
(its InternVL flag: the most dynamic tiles per image) is the image processor's ``max_patches``;
``--min_pixels``/``--max_pixels`` mean nothing here. Text positions are 1-D (no M-RoPE).
"""

from __future__ import annotations

from typing import Any

import torch
import transformers
from torch import nn

from vlmr1.errors import bad_argument
from vlmr1.models.families import Family, TinySizes, logger
from vlmr1.models.frames import CoordinateFrame
from vlmr1.models.tokenizer import QWEN_SPECIAL_TOKENS, ChatTokens, build_qwen_chat_template, special_token_ids

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# The InternVL tokens the -hf tokenizers add to Qwen2.5's, in their order (<img> = 151665 in InternVL3), and the
# names InternVLProcessor reads them by.
INTERNVL_TOKENS = ("<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>",
                   "<video>")
INTERNVL_NAMED = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                  "video_token": "<video>"}
TINY_TILE, TINY_MAX_TILES = 56, 4  # tiny default: 4 image tokens per tile, at most 4 tiles + thumbnail


class InternVLFamily(Family):
    """InternVL: tiles instead of a resize to a pixel budget, 1-D positions, a projector outside the vision tower."""

    def coordinate_frame(self, processor: Any = None, **overrides: int) -> CoordinateFrame:
        """``norm1000`` whatever the tiling: the frame does not depend on the processor's settings."""
        return super().coordinate_frame(None, **overrides)

    def set_image_limits(self, processor: Any, min_pixels: int | None = None, max_pixels: int | None = None,
                         max_tiles: int | None = None) -> None:
        """``max_tiles`` (``--max_anyres_num``) becomes the image processor's ``max_patches``; pixel limits are
        logged and ignored.

        Raises:
            ValueError: ``max_tiles`` below 1.
        """
        image_processor = processor.image_processor
        if min_pixels is not None or max_pixels is not None:
            logger.info("--min_pixels/--max_pixels mean nothing for InternVL: it cuts each image into %s px tiles; "
                        "--max_anyres_num bounds their number (now %d)", image_processor.size["height"],
                        max_tiles or image_processor.max_patches)
        if max_tiles is not None:
            if max_tiles < 1:
                raise bad_argument("--max_anyres_num", f"{max_tiles}: an image needs at least 1 tile", "give 1 or more")
            image_processor.max_patches = int(max_tiles)
            image_processor.min_patches = min(image_processor.min_patches, int(max_tiles))

    def image_settings(self, processor: Any) -> dict[str, int]:
        image_processor = processor.image_processor
        return {"max_tiles": int(image_processor.max_patches), "tile_size": int(image_processor.size["height"])}

    def blank_image_inputs(self, backbone: nn.Module) -> dict[str, torch.Tensor]:
        """One blank tile."""
        tower = self.vision_tower(backbone)
        height, width = backbone.config.vision_config.image_size
        return {"pixel_values": torch.zeros(1, 3, height, width, dtype=tower.dtype, device=tower.device)}

    def chat_tokens(self) -> ChatTokens:
        return ChatTokens(QWEN_SPECIAL_TOKENS + INTERNVL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>",
                          named=INTERNVL_NAMED)

    def chat_template(self, default_system_prompt: str | None = None) -> str:
        # the -hf checkpoints' template: ChatML, one "<IMG_CONTEXT>\n" per image (the processor expands it)
        return build_qwen_chat_template(default_system_prompt, image_placeholder="<IMG_CONTEXT>\n",
                                        video_placeholder="<video>\n")

    def tiny_config(self, tokenizer: Any, sizes: TinySizes) -> transformers.PreTrainedConfig:
        ids = special_token_ids(tokenizer, QWEN_SPECIAL_TOKENS + INTERNVL_TOKENS)
        tile = sizes.tile_size or TINY_TILE
        text = {
            "model_type": "qwen2",
            **sizes.text_dims(len(tokenizer)),
            "rope_parameters": {"rope_type": "default", "rope_theta": float(sizes.rope_theta or 1_000_000.0)},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": tokenizer.pad_token_id,
            "tie_word_embeddings": sizes.tie_word_embeddings,
        }
        vision = {
            "hidden_size": sizes.vision_hidden,
            "num_hidden_layers": sizes.vision_layers,
            "num_attention_heads": sizes.vision_heads,
            "intermediate_size": 2 * sizes.vision_hidden,
            "image_size": tile,
            "patch_size": self.patch_size,
        }
        config = transformers.InternVLConfig(
            text_config=text, vision_config=vision, image_token_id=ids["<IMG_CONTEXT>"],
            image_seq_length=(tile // self.patch_size // self.merge_size) ** 2, downsample_ratio=1 / self.merge_size,
            tie_word_embeddings=sizes.tie_word_embeddings)
        config.bos_token_id, config.eos_token_id = ids["<|endoftext|>"], ids["<|im_end|>"]
        config.pad_token_id = tokenizer.pad_token_id
        return config

    def tiny_processor(self, tokenizer: Any, chat_template: str, min_pixels: int | None = None,
                       max_pixels: int | None = None, tile_size: int | None = None) -> transformers.ProcessorMixin:
        tile = tile_size or TINY_TILE
        size = {"height": tile, "width": tile}
        image_processor = transformers.GotOcr2ImageProcessor(
            size=size, max_patches=TINY_MAX_TILES, image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD))
        video_processor = transformers.InternVLVideoProcessor(size=size, image_mean=list(IMAGENET_MEAN),
                                                              image_std=list(IMAGENET_STD))
        return transformers.InternVLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                              video_processor=video_processor, chat_template=chat_template,
                                              image_seq_length=(tile // self.patch_size // self.merge_size) ** 2)


INTERNVL = InternVLFamily(
    model_type="internvl",
    model_class_name="InternVLForConditionalGeneration",
    vision_class_path="transformers.models.internvl.modeling_internvl:InternVLVisionModel",
    projector_class_path="transformers.models.internvl.modeling_internvl:InternVLMultiModalProjector",
    frame_kind="norm1000",
    patch_size=14,
    merge_size=2,  # the pixel shuffle (downsample_ratio 0.5) merges 2x2 patches into one token
    min_pixels=448 * 448,
    max_pixels=448 * 448 * 12,
    # InternVL's own RefCOCO evaluation (OpenGVLab/InternVL, internvl_chat/eval/refcoco/evaluate_grounding.py)
    # reads the answer's "[[x1, y1, x2, y2]]" (in <box></box>), divides by 1000 and scales by the image's w and h
    frame_source="OpenGVLab/InternVL internvl_chat/eval/refcoco/evaluate_grounding.py: boxes on a 0-1000 grid",
    shared_prefix=True,
    vision_attr="vision_tower",
    mrope=False,
    image_layout="tiles",
)
