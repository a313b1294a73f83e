"""Model families: one adapter module per family in this package, selected by ``config.model_type``.

A :class:`Family` owns what the rest of vlmr1 must not hard-code: the model class and how to load it, the coordinate
frame the model answers boxes/points in (``vlmr1.models.frames``), how ``--min_pixels``/``--max_pixels`` (and
InternVL's ``--max_anyres_num``) reach its image processor, where the vision tower lives (to freeze it, keep it out of
LoRA and run it on a blank image under DeepSpeed), the text layers LoRA adapts, the layout of its image inputs and
positions, whether the shared-prefix forward supports it, and its tiny offline builder. Every module of this package
that defines a module-level ``Family`` registers it, so adding a family is adding one file. Families are never
chosen by looking at a checkpoint path.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import transformers
from torch import nn

from vlmr1.errors import bad_argument
from vlmr1.models.frames import CoordinateFrame, FrameKind, frame_settings_from_processor

if TYPE_CHECKING:
    from vlmr1.models.tokenizer import ChatTokens

logger = logging.getLogger(__name__)

# peft's default-style LoRA targets: attention and MLP projections of every text layer
TEXT_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TinySizes:
    """Dimensions of a tiny offline model (``vlmr1.models.tiny``); the vision tower's output matches ``hidden_size``.

    ``rope_theta`` None keeps the family's rotary base; ``tile_size`` (InternVL: the tile edge in pixels) None keeps
    the family's tiny default.
    """

    text_layers: int = 2
    hidden_size: int = 64
    num_attention_heads: int = 2
    num_key_value_heads: int = 1
    intermediate_size: int = 128
    vision_layers: int = 2
    vision_hidden: int = 32
    vision_heads: int = 2
    max_position_embeddings: int = 4096
    tie_word_embeddings: bool = False
    rope_theta: float | None = None
    tile_size: int | None = None

    def text_dims(self, vocab_size: int) -> dict[str, int]:
        """The language model's size keys, named as every family's text config names them."""
        return {
            "vocab_size": vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.text_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "max_position_embeddings": self.max_position_embeddings,
        }


@dataclass(frozen=True)
class Family:
    """Adapter for one model family.

    Attributes:
        model_type: the ``config.model_type`` this family handles.
        model_class_name: the transformers ``...ForConditionalGeneration`` class name.
        vision_class_path: ``"module:Class"`` of the vision tower, found by type in the module tree (some are not
            exported at the transformers top level).
        projector_class_path: ``"module:Class"`` of the vision-to-text projector where it is not part of the tower
            (InternVL); frozen and kept out of LoRA with it.
        frame_kind: coordinate convention of the model's answers (``"resized_pixels"`` or ``"norm1000"``).
        patch_size, merge_size, min_pixels, max_pixels: the released checkpoints' resize settings, used by
            :meth:`coordinate_frame` when no processor is given.
        frame_source: where the coordinate convention is documented.
        shared_prefix: whether ``--shared_prefix`` (``vlmr1.training.shared_prefix``) supports this family.
        text_layers_path: module path of the text decoder's layer list, which LoRA adapts (vision blocks may have
            projections of the same names: Qwen2.5-VL's have ``mlp.gate_proj``).
        text_projections: the linear layers of a text layer that default LoRA adapts (GLM-4.1V fuses gate and up).
        vision_attr: the vision tower's attribute on the ``<Family>Model`` backbone.
        mrope: positions are M-RoPE from ``get_rope_index`` (Qwen, GLM-4.1V); False: 1-D positions (InternVL).
        image_layout: ``"grid"``: flat patches with ``image_grid_thw``; ``"tiles"``: ``(tiles, 3, H, W)`` crops, a
            row's tile count read from its image tokens (``config.image_seq_length`` each).
        size_frames: how many frames the image processor's ``size`` limits count (GLM-4.1V: 2, its temporal
            patch), so that ``--min_pixels``/``--max_pixels`` bound the image area in every family.
    """

    model_type: str
    model_class_name: str
    vision_class_path: str
    frame_kind: FrameKind
    patch_size: int
    merge_size: int
    min_pixels: int
    max_pixels: int
    frame_source: str
    projector_class_path: str | None = None
    shared_prefix: bool = False
    text_layers_path: str = "language_model.layers"
    text_projections: tuple[str, ...] = TEXT_PROJECTIONS
    vision_attr: str = "visual"
    mrope: bool = True
    image_layout: Literal["grid", "tiles"] = "grid"
    size_frames: int = 1

    @property
    def model_class(self) -> type:
        return getattr(transformers, self.model_class_name)

    @property
    def vision_classes(self) -> tuple[type, ...]:
        """The vision tower's class, and the projector's where it is separate."""
        paths = [p for p in (self.vision_class_path, self.projector_class_path) if p]
        return tuple(getattr(importlib.import_module(p.split(":")[0]), p.split(":")[1]) for p in paths)

    def load(self, path: str | os.PathLike, dtype: torch.dtype | str | None = "auto", **kwargs: Any) -> nn.Module:
        """``from_pretrained`` of this family's class; ``dtype`` may be a name such as "bfloat16" or "auto"."""
        if isinstance(dtype, str) and dtype != "auto":
            dtype = getattr(torch, dtype)
        return self.model_class.from_pretrained(path, dtype=dtype, **kwargs)

    def coordinate_frame(self, processor: Any = None, **overrides: int) -> CoordinateFrame:
        """The frame of this family's answers, with the resize settings of ``processor`` (else the released
        checkpoints'); ``overrides`` (patch_size, merge_size, min_pixels, max_pixels) win over both."""
        settings = {"patch_size": self.patch_size, "merge_size": self.merge_size, "min_pixels": self.min_pixels,
                    "max_pixels": self.max_pixels}
        if processor is not None:
            settings.update(frame_settings_from_processor(processor))
            settings["min_pixels"] //= self.size_frames
            settings["max_pixels"] //= self.size_frames
        settings.update(overrides)
        return CoordinateFrame(kind=self.frame_kind, **settings)

    def set_image_limits(self, processor: Any, min_pixels: int | None = None, max_pixels: int | None = None,
                         max_tiles: int | None = None) -> None:
        """Bound the image area the processor resizes to (``--min_pixels``/``--max_pixels``); None keeps its own.

        Raises:
            UserError: ``min_pixels`` above ``max_pixels`` (``bad_argument``).
        """
        if max_tiles is not None:
            logger.info("--max_anyres_num means nothing for %s: it resizes each image to lie within "
                        "--min_pixels/--max_pixels", self.model_type)
        image_processor = processor.image_processor
        size = dict(image_processor.size)
        if min_pixels is not None:
            size["shortest_edge"] = min_pixels * self.size_frames
        if max_pixels is not None:
            size["longest_edge"] = max_pixels * self.size_frames
        if size["shortest_edge"] > size["longest_edge"]:
            raise bad_argument("--min_pixels", f"{size['shortest_edge'] // self.size_frames} is above --max_pixels "
                               f"{size['longest_edge'] // self.size_frames}", "give --min_pixels at most --max_pixels")
        image_processor.size = {"shortest_edge": size["shortest_edge"], "longest_edge": size["longest_edge"]}

    def image_settings(self, processor: Any) -> dict[str, int]:
        """What bounds the images ``processor`` makes, for a run's records: ``{"min_pixels", "max_pixels"}``."""
        frame = self.coordinate_frame(processor)
        return {"min_pixels": frame.min_pixels, "max_pixels": frame.max_pixels}

    def external_parameters(self, model: nn.Module) -> list[tuple[nn.Module, nn.Parameter]]:
        """(module, parameter) pairs where a module's forward reads a weight it does not own, which ZeRO-3 must be
        told about (``deepspeed.zero.register_external_parameter``); none in most families."""
        return []

    def vision_tower(self, backbone: nn.Module) -> nn.Module:
        """The vision tower of a ``<Family>Model`` backbone."""
        return getattr(backbone, self.vision_attr)

    def blank_image_inputs(self, backbone: nn.Module) -> dict[str, torch.Tensor]:
        """``get_image_features`` inputs of the smallest image the vision tower takes (one merged token's worth of
        patches), on the tower's device and dtype."""
        vision_config = backbone.config.vision_config
        tower = self.vision_tower(backbone)
        merge, temporal, patch = (vision_config.spatial_merge_size, vision_config.temporal_patch_size,
                                  vision_config.patch_size)
        patch_dim = vision_config.in_channels * temporal * patch * patch
        pixels = torch.zeros(merge * merge, patch_dim, dtype=tower.dtype, device=tower.device)
        grid = torch.tensor([[1, merge, merge]], dtype=torch.long, device=tower.device)
        return {"pixel_values": pixels, "image_grid_thw": grid}

    # The tiny offline builder (``vlmr1.models.tiny``): each built-in family implements these.

    def chat_tokens(self) -> ChatTokens:
        """The special tokens, eos and pad of the family's tokenizer."""
        raise NotImplementedError(f"{self.model_type} has no tiny builder")

    def chat_template(self, default_system_prompt: str | None = None) -> str:
        """A chat template rendering conversations as the released checkpoints' template does."""
        raise NotImplementedError(f"{self.model_type} has no tiny builder")

    def default_pixel_range(self) -> tuple[int, int]:
        """The tiny processor's default (min_pixels, max_pixels): 4 to 64 merged tokens' worth of pixels."""
        factor = self.patch_size * self.merge_size
        return factor * factor * 4, factor * factor * 64

    def tiny_config(self, tokenizer: Any, sizes: TinySizes) -> transformers.PreTrainedConfig:
        """The config of a tiny model with ``sizes``, its token ids taken from ``tokenizer``."""
        raise NotImplementedError(f"{self.model_type} has no tiny builder")

    def tiny_processor(self, tokenizer: Any, chat_template: str, min_pixels: int | None = None,
                       max_pixels: int | None = None, tile_size: int | None = None) -> transformers.ProcessorMixin:
        """The family's real processor around ``tokenizer``, with a small image budget."""
        raise NotImplementedError(f"{self.model_type} has no tiny builder")

    def tiny_generation_config(self, config: transformers.PreTrainedConfig) -> transformers.GenerationConfig:
        """The generation config saved with a tiny model: its bos, eos and pad."""
        return transformers.GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                                             pad_token_id=config.pad_token_id)

    def vision_module_prefixes(self, model: nn.Module) -> list[str]:
        """Qualified names of the vision tower(s) (and a separate projector) in ``model`` (through peft/DDP
        wrappers), e.g. ``["model.visual"]``."""
        vision_classes = self.vision_classes
        prefixes: list[str] = []
        for name, module in model.named_modules():
            if isinstance(module, vision_classes) and not any(name.startswith(p + ".") for p in prefixes):
                prefixes.append(name)
        if not prefixes:
            raise ValueError(f"no {self.vision_class_path} found in {type(model).__name__}")
        return prefixes

    def freeze_vision(self, model: nn.Module) -> int:
        """``requires_grad=False`` on every vision-tower parameter (patch merger included); returns how many
        elements were frozen."""
        frozen = 0
        for prefix in self.vision_module_prefixes(model):
            for param in model.get_submodule(prefix).parameters():
                param.requires_grad_(False)
                frozen += param.numel()
        return frozen

    def lora_target_modules(self, names: Sequence[str] | str | None = None) -> str:
        """A peft ``target_modules`` regex (peft fullmatches it) over the text layers only: ``names`` such as
        ``q_proj v_proj`` (``--lora_target_modules``), or every attention/MLP projection when empty or
        ``all-linear``. The vision tower never gets adapters, whatever the names."""
        names = [names] if isinstance(names, str) else list(names or [])
        if not names or names == ["all-linear"]:
            names = list(self.text_projections)
        alternatives = "|".join(re.escape(n) for n in names)
        return rf"(?:.*\.)?{re.escape(self.text_layers_path)}\.\d+\.(?:.*\.)?(?:{alternatives})"


_FAMILIES: dict[str, Family] = {}
_builtin_loaded = False


def register_family(family: Family) -> Family:
    """Add a family to the registry (a later one for the same ``model_type`` replaces it)."""
    _FAMILIES[family.model_type] = family
    return family


def _load_builtin_families() -> None:
    global _builtin_loaded
    if _builtin_loaded:
        return
    _builtin_loaded = True
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Family):
                register_family(value)


def supported_model_types() -> list[str]:
    """Model types with a registered family, sorted."""
    _load_builtin_families()
    return sorted(_FAMILIES)


def _model_type_of(obj: Any) -> str | None:
    """A model_type from a string, config, model (peft-wrapped too) or local checkpoint folder."""
    if isinstance(obj, str) and obj in _FAMILIES:
        return obj
    if isinstance(obj, (str, os.PathLike)):
        if os.path.isdir(obj):
            return transformers.AutoConfig.from_pretrained(obj, local_files_only=True).model_type
        return str(obj)
    config = obj if isinstance(obj, transformers.PreTrainedConfig) else getattr(obj, "config", None)
    return getattr(config, "model_type", None)


def get_family(obj: Any) -> Family:
    """The family of a model_type string, config, model (peft-wrapped too) or local checkpoint folder (its
    config.json's model_type, never the path text).

    Raises:
        ValueError: no registered family; the message lists the supported ones.
    """
    _load_builtin_families()
    model_type = _model_type_of(obj)
    if model_type not in _FAMILIES:
        raise ValueError(f"unsupported model family {model_type!r} (from {type(obj).__name__}); "
                         f"supported model_types: {', '.join(supported_model_types())}")
    return _FAMILIES[model_type]


def vision_module_prefixes(model: nn.Module) -> list[str]:
    """The vision tower prefixes of a supported (possibly wrapped) model, through its family."""
    return get_family(model).vision_module_prefixes(model)


def freeze_vision(model: nn.Module) -> int:
    """Freeze the vision tower of a supported (possibly wrapped) model, through its family."""
    return get_family(model).freeze_vision(model)
