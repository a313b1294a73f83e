"""Model families (one adapter per `config.model_type`), coordinate frames, and tiny offline model builders."""

from vlmr1.models.families import (
    TEXT_LORA_TARGET_REGEX,
    Family,
    freeze_vision,
    get_family,
    register_family,
    supported_model_types,
    vision_module_prefixes,
)
from vlmr1.models.frames import CoordinateFrame, frame_settings_from_processor, resized_input_size
from vlmr1.models.tiny import TINY_ARCHS, build_tiny_model, default_pixel_range, tiny_config, tiny_processor
from vlmr1.models.tokenizer import QWEN_SPECIAL_TOKENS, build_qwen_chat_template, train_tiny_tokenizer

__all__ = [
    "QWEN_SPECIAL_TOKENS",
    "TINY_ARCHS",
    "TEXT_LORA_TARGET_REGEX",
    "CoordinateFrame",
    "Family",
    "build_qwen_chat_template",
    "build_tiny_model",
    "default_pixel_range",
    "frame_settings_from_processor",
    "freeze_vision",
    "get_family",
    "register_family",
    "resized_input_size",
    "supported_model_types",
    "tiny_config",
    "tiny_processor",
    "train_tiny_tokenizer",
    "vision_module_prefixes",
]
