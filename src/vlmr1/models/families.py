"""Model-family adapters: one `Family` per supported `config.model_type`, and a registry to look them up.

A family owns what the rest of vlmr1 must not hard-code: the model class and how to load it, the coordinate frame
the model answers boxes/points in, where the vision tower lives (to freeze it / keep it out of LoRA), and the default
LoRA targets (text attention and MLP projections only). Families are selected by `config.model_type`, never by
looking at a checkpoint path.

Module layout in transformers 5.24 (identical for the three families)::

    <Family>ForConditionalGeneration
      .model                      <Family>Model
        .visual                   vision tower incl. patch merger (projector)
        .language_model           text decoder: layers.N.self_attn.{q,k,v,o}_proj, layers.N.mlp.{gate,up,down}_proj
      .lm_head

Note Qwen2.5-VL's vision blocks also have `mlp.{gate,up,down}_proj`, so bare names like "gate_proj" as LoRA targets
would hit the vision tower; the default targets are therefore a regex anchored on `language_model.layers`.

Forward/generate with images need the processor's `mm_token_type_ids` (M-RoPE positions are computed from it):
in transformers 5.24 Qwen2-VL and Qwen3-VL raise without it, while Qwen2.5-VL silently falls back to 1-D positions.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import transformers
from torch import nn

from vlmr1.models.frames import CoordinateFrame, FrameKind, frame_settings_from_processor

# Regex (peft fullmatches a string `target_modules` against each module name) selecting only text-decoder
# attention/MLP projections, with or without wrapper prefixes such as "base_model.model.".
TEXT_LORA_TARGET_REGEX = r"(?:.*\.)?language_model\.layers\.\d+\.(?:self_attn\.(?:q_proj|k_proj|v_proj|o_proj)|mlp\.(?:gate_proj|up_proj|down_proj))"


@dataclass(frozen=True)
class Family:
    """Adapter for one model family.

    Attributes:
        model_type: the `config.model_type` this family handles.
        model_class_name: name of the transformers class for generation (e.g. "Qwen2_5_VLForConditionalGeneration").
        vision_class_path: "module:Class" of the vision tower (found by type in the module tree; Qwen2-VL's is not
            exported at the transformers top level).
        frame_kind: coordinate convention of the model's answers ("resized_pixels" or "norm1000").
        patch_size, merge_size, min_pixels, max_pixels: resize settings of the released checkpoints' processors,
            used by `coordinate_frame()` when no processor is given.
        frame_source: where the coordinate convention is documented.
        lora_target_modules_default: peft `target_modules` regex: text attention/MLP projections only.
        shared_prefix: whether `--shared_prefix` (`vlmr1.training.shared_prefix`) is exact for this family; checked
            by its tests against TRL's stock path. Off by default: a new family opts in once it passes them.
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
    lora_target_modules_default: str = TEXT_LORA_TARGET_REGEX
    shared_prefix: bool = False

    @property
    def model_class(self) -> type:
        """The transformers `...ForConditionalGeneration` class."""
        return getattr(transformers, self.model_class_name)

    @property
    def vision_class(self) -> type:
        """The transformers vision-tower class."""
        module_name, class_name = self.vision_class_path.split(":")
        return getattr(importlib.import_module(module_name), class_name)

    def load(self, path: str | os.PathLike, dtype: torch.dtype | str | None = "auto", **kwargs: Any) -> nn.Module:
        """Load a checkpoint of this family.

        Args:
            path: local directory or Hub id.
            dtype: torch dtype, a name such as "bfloat16", or "auto" (the checkpoint's dtype).
            **kwargs: forwarded to `from_pretrained` (e.g. `attn_implementation`, `device_map`).

        Returns:
            The loaded `...ForConditionalGeneration` model.
        """
        if isinstance(dtype, str) and dtype != "auto":
            dtype = getattr(torch, dtype)
        return self.model_class.from_pretrained(path, dtype=dtype, **kwargs)

    def coordinate_frame(self, processor: Any = None, **overrides: int) -> CoordinateFrame:
        """Coordinate frame of this family's answers.

        Args:
            processor: the processor (or image processor) actually used; its resize settings decide the
                resized-pixel frame. Without it the released checkpoints' defaults are used.
            **overrides: any of patch_size, merge_size, min_pixels, max_pixels (win over the processor).

        Returns:
            A `CoordinateFrame`.
        """
        settings = {
            "patch_size": self.patch_size,
            "merge_size": self.merge_size,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
        }
        if processor is not None:
            settings.update(frame_settings_from_processor(processor))
        settings.update(overrides)
        return CoordinateFrame(kind=self.frame_kind, **settings)

    def vision_module_prefixes(self, model: nn.Module) -> list[str]:
        """Qualified names of the vision tower(s) in `model` (works through peft/DDP wrappers).

        Args:
            model: a model of this family, possibly wrapped.

        Returns:
            Module-name prefixes such as ["model.visual"]; every parameter under them belongs to the vision side.
        """
        vision_cls = self.vision_class
        prefixes: list[str] = []
        for name, module in model.named_modules():
            if isinstance(module, vision_cls) and not any(name.startswith(p + ".") for p in prefixes):
                prefixes.append(name)
        if not prefixes:
            raise ValueError(f"no {self.vision_class_path} found in {type(model).__name__}")
        return prefixes

    def is_vision_param(self, name: str, prefixes: Iterable[str]) -> bool:
        """Whether a parameter/module name lies under one of the vision prefixes.

        Args:
            name: qualified parameter or module name.
            prefixes: output of `vision_module_prefixes(model)`.

        Returns:
            True for vision-side names.
        """
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    def freeze_vision(self, model: nn.Module) -> int:
        """Set `requires_grad=False` on every vision-tower parameter (patch merger included).

        Args:
            model: a model of this family, possibly wrapped.

        Returns:
            Number of parameter elements frozen.
        """
        frozen = 0
        for prefix in self.vision_module_prefixes(model):
            for param in model.get_submodule(prefix).parameters():
                param.requires_grad_(False)
                frozen += param.numel()
        return frozen


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add a family to the registry (keyed by `family.model_type`).

    Args:
        family: the adapter to register; replaces any previous one for the same model_type.

    Returns:
        The same family, for chaining.
    """
    _FAMILIES[family.model_type] = family
    return family


register_family(
    Family(
        model_type="qwen2_5_vl",
        model_class_name="Qwen2_5_VLForConditionalGeneration",
        vision_class_path="transformers.models.qwen2_5_vl.modeling_qwen2_5_vl:Qwen2_5_VisionTransformerPretrainedModel",
        frame_kind="resized_pixels",
        patch_size=14,
        merge_size=2,
        min_pixels=56 * 56,
        max_pixels=28 * 28 * 16384,
        # Qwen2.5-VL report (arXiv:2502.13923, grounding): absolute coordinates of the input (resized) image.
        frame_source="Qwen2.5-VL technical report, arXiv:2502.13923: absolute coordinates on the resized input",
        shared_prefix=True,
    )
)
register_family(
    Family(
        model_type="qwen2_vl",
        model_class_name="Qwen2VLForConditionalGeneration",
        vision_class_path="transformers.models.qwen2_vl.modeling_qwen2_vl:Qwen2VisionTransformerPretrainedModel",
        frame_kind="norm1000",
        patch_size=14,
        merge_size=2,
        min_pixels=56 * 56,
        max_pixels=28 * 28 * 1280,
        # Qwen2-VL report (arXiv:2409.12191, visual grounding): boxes normalised to [0, 1000).
        frame_source="Qwen2-VL technical report, arXiv:2409.12191: box coordinates normalised to [0, 1000)",
        shared_prefix=True,
    )
)
register_family(
    Family(
        model_type="qwen3_vl",
        model_class_name="Qwen3VLForConditionalGeneration",
        vision_class_path="transformers.models.qwen3_vl.modeling_qwen3_vl:Qwen3VLVisionModel",
        frame_kind="norm1000",
        patch_size=16,
        merge_size=2,
        min_pixels=65536,
        max_pixels=16777216,
        # transformers 5.24's qwen3_vl code/docstrings say nothing about coordinates; the convention comes from
        # the official QwenLM/Qwen3-VL cookbooks (spatial_understanding.ipynb, mobile_agent.ipynb): relative 0-1000.
        frame_source="QwenLM/Qwen3-VL cookbooks (spatial_understanding): relative coordinates on a 0-1000 grid",
        shared_prefix=True,
    )
)


def supported_model_types() -> list[str]:
    """Model types with a registered family.

    Returns:
        Sorted list of model_type strings.
    """
    return sorted(_FAMILIES)


def _model_type_of(obj: Any) -> str | None:
    """Extract a model_type from a string, config, model (incl. peft-wrapped) or local checkpoint dir."""
    if isinstance(obj, str) and obj in _FAMILIES:
        return obj
    if isinstance(obj, (str, os.PathLike)):
        if os.path.isdir(obj):
            config = transformers.AutoConfig.from_pretrained(obj, local_files_only=True)
            return config.model_type
        return str(obj)
    config = obj if isinstance(obj, transformers.PreTrainedConfig) else getattr(obj, "config", None)
    return getattr(config, "model_type", None)


def get_family(obj: Any) -> Family:
    """Find the family adapter for a model_type, config, model or local checkpoint directory.

    Args:
        obj: a `model_type` string ("qwen2_5_vl"), a `PreTrainedConfig`, a model (peft-wrapped is fine), or the
            path of a local checkpoint directory (its config.json's model_type is used, never the path text).

    Returns:
        The registered `Family`.

    Raises:
        ValueError: if the model_type has no registered family; the message lists the supported ones.
    """
    model_type = _model_type_of(obj)
    if model_type not in _FAMILIES:
        raise ValueError(
            f"unsupported model family {model_type!r} (from {type(obj).__name__}); "
            f"supported model_types: {', '.join(supported_model_types())}"
        )
    return _FAMILIES[model_type]


def vision_module_prefixes(model: nn.Module) -> list[str]:
    """Qualified names of the vision tower(s) of `model`, resolved through its family.

    Args:
        model: a supported model, possibly wrapped (peft, DDP).

    Returns:
        Prefixes such as ["model.visual"] (["base_model.model.model.visual"] under peft).
    """
    return get_family(model).vision_module_prefixes(model)


def freeze_vision(model: nn.Module) -> int:
    """Freeze the vision tower (and patch merger) of `model`, resolved through its family.

    Args:
        model: a supported model, possibly wrapped.

    Returns:
        Number of parameter elements frozen.
    """
    return get_family(model).freeze_vision(model)
