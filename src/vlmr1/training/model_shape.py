"""The sizes of a vision-language model that decide its memory, read from its config: no model, no torch.

Parameter counts follow the transformers 5 classes module by module (tested equal to them for every modelled
family): the Qwen families (Qwen2-VL, Qwen2.5-VL, Qwen3-VL), InternVL (InternViT tiles, a pixel-shuffle projector
and a Qwen2 decoder) and GLM-4.1V (a Qwen2.5-VL-like tower with a conv downsample, and a GLM-4 decoder whose layers
have four norms). Image sizes become vision patches as the families' processors resize or tile them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

QWEN_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
MODELLED = (*QWEN_TYPES, "internvl", "glm4v")


@dataclass(frozen=True)
class ModelShape:
    """The sizes the arithmetic needs, read from a transformers config (object or ``config.json`` dict).

    Attributes:
        model_type: e.g. ``"qwen2_5_vl"``.
        vocab, hidden, intermediate, layers, heads, kv_heads, head_dim: the text decoder.
        tied: input and output embeddings share one matrix.
        qkv_bias, qk_norm: Qwen2-style q/k/v biases; Qwen3-style per-head q/k norms.
        vision_layers, vision_hidden, vision_intermediate, vision_out: the vision tower (0 layers: text only).
        vision_heads: attention heads of the vision blocks.
        vision_gated: SwiGLU vision MLP (Qwen2.5-VL) instead of fc1/act/fc2.
        vision_rms: RMSNorm in the vision blocks instead of LayerNorm.
        patch, merge, temporal_patch, channels: the patch embedding; ``merge**2`` patches make one image token
            (InternVL: the pixel shuffle, ``1 / downsample_ratio`` squared).
        deepstack: Qwen3-VL's extra mergers; position_embeddings: learned position rows of the vision tower.
        tile: InternVL's tile side in pixels (0: the Qwen resize); each tile adds a class token to the tower.
        vision_bias, vision_qk_norm: the vision tower's q/k/v biases (InternViT, GLM-4.1V) and q/k RMSNorms.
        text_norms: RMSNorms per decoder layer (GLM-4: 4, around attention and MLP each).
        merger_intermediate: GLM-4.1V's merger MLP width (its blocks' MLP width is ``vision_intermediate``).
    """

    model_type: str
    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool
    qkv_bias: bool = True
    qk_norm: bool = False
    vision_layers: int = 0
    vision_hidden: int = 0
    vision_intermediate: int = 0
    vision_out: int = 0
    vision_heads: int = 16
    vision_gated: bool = True
    vision_rms: bool = True
    patch: int = 14
    merge: int = 2
    temporal_patch: int = 2
    channels: int = 3
    deepstack: int = 0
    position_embeddings: int = 0
    tile: int = 0
    vision_bias: bool = True
    vision_qk_norm: bool = False
    text_norms: int = 2
    merger_intermediate: int = 0

    @classmethod
    def from_config(cls, config) -> ModelShape:
        """Read a ``PreTrainedConfig`` or a ``config.json`` dict (text fields nested or at the top level).

        Raises:
            ValueError: a family whose vision tower is not modelled, or a config without the text sizes.
        """
        c = config if isinstance(config, dict) else config.to_dict()
        model_type = c.get("model_type", "")
        if model_type not in MODELLED:
            raise ValueError(f"model type {model_type!r} is not modelled yet ({', '.join(MODELLED)} are)")
        text = {**c, **(c.get("text_config") or {})}
        vision = c.get("vision_config") or {}
        heads = text["num_attention_heads"]
        tied = bool(c.get("tie_word_embeddings", text.get("tie_word_embeddings", False)))
        common = dict(model_type=model_type, vocab=text["vocab_size"], hidden=text["hidden_size"],
                      intermediate=text["intermediate_size"], layers=text["num_hidden_layers"], heads=heads,
                      kv_heads=text.get("num_key_value_heads") or heads,
                      head_dim=text.get("head_dim") or text["hidden_size"] // heads, tied=tied,
                      qkv_bias=model_type != "qwen3_vl", qk_norm=model_type == "qwen3_vl")
        if model_type == "internvl":
            return cls(**common, **_internvl_vision(c, vision))
        if model_type == "glm4v":  # the blocks' MLP is out_hidden_size wide; intermediate_size is the merger's
            side = vision.get("image_size", 336)
            return cls(**common, text_norms=4, vision_layers=vision["depth"], vision_hidden=vision["hidden_size"],
                       vision_intermediate=vision["out_hidden_size"], vision_out=vision["out_hidden_size"],
                       vision_heads=vision.get("num_heads", 12), patch=vision.get("patch_size", 14),
                       merge=vision.get("spatial_merge_size", 2), temporal_patch=vision.get("temporal_patch_size", 2),
                       channels=vision.get("in_channels", 3), vision_bias=vision.get("attention_bias", False),
                       position_embeddings=(side // vision.get("patch_size", 14)) ** 2,
                       merger_intermediate=vision["intermediate_size"])
        common.update(vision_layers=vision.get("depth", 0), patch=vision.get("patch_size", 14),
                      vision_heads=vision.get("num_heads", 16), merge=vision.get("spatial_merge_size", 2),
                      temporal_patch=vision.get("temporal_patch_size", 2),
                      channels=vision.get("in_channels", vision.get("in_chans", 3)))
        if model_type == "qwen2_vl":  # embed_dim wide blocks, fc1/quick_gelu/fc2, LayerNorm; merger out hidden_size
            width = vision["embed_dim"]
            return cls(**common, vision_hidden=width, vision_intermediate=int(width * vision["mlp_ratio"]),
                       vision_out=vision["hidden_size"], vision_gated=False, vision_rms=False)
        extra = {}
        if model_type == "qwen3_vl":
            extra = dict(vision_gated=False, vision_rms=False, deepstack=len(vision["deepstack_visual_indexes"]),
                         position_embeddings=vision["num_position_embeddings"])
        return cls(**common, vision_hidden=vision["hidden_size"], vision_intermediate=vision["intermediate_size"],
                   vision_out=vision["out_hidden_size"], **extra)

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def q_width(self) -> int:
        return self.heads * self.head_dim

    @property
    def tile_patches(self) -> int:
        """Patches of one InternVL tile (0 for the Qwen families)."""
        return (self.tile // self.patch) ** 2 if self.tile else 0

    def vision_tokens(self, patches: float) -> float:
        """Positions the vision blocks run over for ``patches`` patches: InternViT adds a class token per tile."""
        return patches * (1 + 1 / self.tile_patches) if self.tile else patches

    def text_layer_params(self) -> int:
        h, q, kv, ff = self.hidden, self.q_width, self.kv_width, self.intermediate
        attention = h * (q + 2 * kv) + q * h + (q + 2 * kv) * self.qkv_bias + 2 * self.head_dim * self.qk_norm
        return attention + 3 * h * ff + self.text_norms * h

    def embedding_params(self) -> int:
        """Input embeddings and LM head (one matrix when tied)."""
        return self.vocab * self.hidden * (1 if self.tied else 2)

    def vision_params(self) -> int:
        if not self.vision_layers:
            return 0
        if self.tile:
            return self._internvit_params()
        if self.model_type == "glm4v":
            return self._glm4v_vision_params()
        d, f, norm = self.vision_hidden, self.vision_intermediate, 1 if self.vision_rms else 2
        mlp = (3 * d * f + 2 * f + d) if self.vision_gated else (2 * d * f + f + d)
        block = 2 * norm * d + 3 * d * d + 3 * d + d * d + d + mlp
        merged = d * self.merge**2
        merger = norm * d + merged * merged + merged + merged * self.vision_out + self.vision_out
        patch_embed = self.channels * self.temporal_patch * self.patch**2 * d
        if self.model_type == "qwen3_vl":  # conv bias, position table, deepstack mergers (LayerNorm over merged)
            patch_embed += d + self.position_embeddings * d
            merger += self.deepstack * (2 * merged + merged * merged + merged + merged * self.vision_out
                                        + self.vision_out)
        return patch_embed + self.vision_layers * block + merger

    def _internvit_params(self) -> int:
        """InternViT blocks (layer scales, biased q/k/v/projection, fc1/GELU/fc2) and the projector: LayerNorm over
        the pixel-shuffled features, then two linears to the text width."""
        d, f, norm = self.vision_hidden, self.vision_intermediate, 1 if self.vision_rms else 2
        attention = 4 * d * d + 3 * d * self.vision_bias + d + 2 * d * self.vision_qk_norm
        block = 2 * d + attention + (2 * d * f + f + d) + 2 * norm * d
        embeddings = d + self.position_embeddings * d + self.channels * self.patch**2 * d + d  # class token, conv
        merged, h = d * self.merge**2, self.hidden
        projector = 2 * merged + merged * h + h + h * h + h
        return embeddings + self.vision_layers * block + projector

    def _glm4v_vision_params(self) -> int:
        """Position table, conv3d patch embedding, RMSNorm SwiGLU blocks (bias-free projection and MLP), norms after
        the conv and after the blocks, the conv downsample to ``vision_out``, and the merger (projection, LayerNorm,
        SwiGLU of ``merger_intermediate``)."""
        d, f, o = self.vision_hidden, self.vision_intermediate, self.vision_out
        block = 2 * d + 3 * d * d + 3 * d * self.vision_bias + d * d + 3 * d * f
        patch_embed = self.channels * self.temporal_patch * self.patch**2 * d + d
        downsample = o * d * self.merge**2 + o
        merger = o * o + 2 * o + 3 * o * self.merger_intermediate
        return (self.position_embeddings * d + patch_embed + self.vision_layers * block + 2 * d + downsample
                + merger)

    def total_params(self) -> int:
        return self.embedding_params() + self.layers * self.text_layer_params() + self.hidden + self.vision_params()

    def lora_params(self, r: int) -> int:
        """LoRA A and B on the text layers' seven projections (vlmr1's default targets)."""
        h, q, kv, ff = self.hidden, self.q_width, self.kv_width, self.intermediate
        shapes = [(h, q), (h, kv), (h, kv), (q, h), (h, ff), (h, ff), (ff, h)]
        return self.layers * sum(r * (i + o) for i, o in shapes)

    def image_patches(self, size: tuple[int, int], min_pixels: int, max_pixels: int, max_tiles: int) -> int:
        """Patches the vision tower sees for one image of ``size`` (width, height), as the family's processor
        resizes (Qwen: ``min_pixels``..``max_pixels`` in ``patch * merge`` steps) or tiles it (InternVL: at most
        ``max_tiles`` tiles, and a thumbnail when there are several)."""
        if self.tile:
            return internvl_tiles(size, max_tiles, self.tile) * self.tile_patches
        factor = self.patch * self.merge
        width, height = size
        if self.model_type == "glm4v" and min(width, height) < factor:  # GLM scales a thin image up first
            scale = max(factor / height, factor / width)
            width, height = int(width * scale), int(height * scale)
        h, w = max(factor, round(height / factor) * factor), max(factor, round(width / factor) * factor)
        if h * w > max_pixels:  # the processor's smart_resize, without importing transformers
            beta = math.sqrt(height * width / max_pixels)
            h = max(factor, math.floor(height / beta / factor) * factor)
            w = max(factor, math.floor(width / beta / factor) * factor)
        elif h * w < min_pixels:
            beta = math.sqrt(min_pixels / (height * width))
            h, w = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
        return (h // self.patch) * (w // self.patch)


def _internvl_vision(config: dict, vision: dict) -> dict:
    """InternVL's vision fields of :class:`ModelShape`."""
    side = vision.get("image_size", 448)
    side = side[0] if isinstance(side, (list, tuple)) else side
    patch = vision.get("patch_size", 14)
    patch = patch[0] if isinstance(patch, (list, tuple)) else patch
    positions = (side // patch) ** 2 + 1 if vision.get("use_absolute_position_embeddings", True) else 0
    return dict(vision_layers=vision["num_hidden_layers"], vision_hidden=vision["hidden_size"],
                vision_intermediate=vision["intermediate_size"], vision_out=config["text_config"]["hidden_size"],
                vision_heads=vision["num_attention_heads"], vision_gated=False,
                vision_rms=vision.get("norm_type", "layer_norm") == "rms_norm", patch=patch,
                merge=int(1 / config.get("downsample_ratio", 0.5)), temporal_patch=1,
                channels=vision.get("num_channels", 3), position_embeddings=positions, tile=side,
                vision_bias=vision.get("attention_bias", True), vision_qk_norm=vision.get("use_qk_norm", False))


def internvl_tiles(size: tuple[int, int], max_tiles: int, tile: int = 448, min_tiles: int = 1) -> int:
    """Tiles InternVL's processor cuts an image of ``size`` (width, height) into: the grid of ``min_tiles`` to
    ``max_tiles`` tiles of ``tile`` px whose aspect ratio is closest to the image's (on a tie the later, larger grid
    while the image covers more than half of it), plus a thumbnail when the grid has more than one tile."""
    width, height = size
    grids = sorted(((w, h) for w in range(1, max_tiles + 1) for h in range(1, max_tiles + 1)
                    if min_tiles <= w * h <= max_tiles), key=lambda g: g[0] * g[1])
    best, best_diff = (1, 1), math.inf
    for w, h in grids:
        diff = abs(width / height - w / h)
        if diff < best_diff:
            best, best_diff = (w, h), diff
        elif diff == best_diff and width * height > 0.5 * w * h * tile * tile:
            best = (w, h)
    tiles = best[0] * best[1]
    return tiles + 1 if tiles > 1 else tiles
