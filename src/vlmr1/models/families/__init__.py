"""Model families: one adapter module per family in this package, selected by ``config.model_type``.

A :class:`Family` owns what the rest of vlmr1 must not hard-code: the model class and how to load it, the coordinate
frame the model answers boxes/points in (``vlmr1.models.frames``), where the vision tower lives (to freeze it and keep
it out of LoRA), the text layers LoRA adapts, and whether the shared-prefix forward supports it. Every module of this
package that defines a module-level ``Family`` registers it, so adding a family is adding one file. Families are never
chosen by looking at a checkpoint path.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import transformers
from torch import nn

from vlmr1.models.frames import CoordinateFrame, FrameKind, frame_settings_from_processor

# peft's default-style LoRA targets: attention and MLP projections of every text layer
TEXT_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Family:
    """Adapter for one model family.

    Attributes:
        model_type: the ``config.model_type`` this family handles.
        model_class_name: the transformers ``...ForConditionalGeneration`` class name.
        vision_class_path: ``"module:Class"`` of the vision tower, found by type in the module tree (some are not
            exported at the transformers top level).
        frame_kind: coordinate convention of the model's answers (``"resized_pixels"`` or ``"norm1000"``).
        patch_size, merge_size, min_pixels, max_pixels: the released checkpoints' resize settings, used by
            :meth:`coordinate_frame` when no processor is given.
        frame_source: where the coordinate convention is documented.
        shared_prefix: whether ``--shared_prefix`` (``vlmr1.training.shared_prefix``) supports this family.
        text_layers_path: module path of the text decoder's layer list, which LoRA adapts (vision blocks may have
            projections of the same names: Qwen2.5-VL's have ``mlp.gate_proj``).
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
    shared_prefix: bool = False
    text_layers_path: str = "language_model.layers"

    @property
    def model_class(self) -> type:
        return getattr(transformers, self.model_class_name)

    @property
    def vision_class(self) -> type:
        module_name, class_name = self.vision_class_path.split(":")
        return getattr(importlib.import_module(module_name), class_name)

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
        settings.update(overrides)
        return CoordinateFrame(kind=self.frame_kind, **settings)

    def vision_module_prefixes(self, model: nn.Module) -> list[str]:
        """Qualified names of the vision tower(s) in ``model`` (through peft/DDP wrappers), e.g. ``["model.visual"]``."""
        vision_cls = self.vision_class
        prefixes: list[str] = []
        for name, module in model.named_modules():
            if isinstance(module, vision_cls) and not any(name.startswith(p + ".") for p in prefixes):
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
            names = list(TEXT_PROJECTIONS)
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
