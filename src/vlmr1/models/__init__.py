"""Models: one adapter per family (``families/``), the one owner of coordinate frames (``frames``), loading a model
and its processor for training, evaluation and the demo alike (``loading``), and tiny offline builders (``tiny``)."""

from vlmr1.models.families import (
    Family,
    freeze_vision,
    get_family,
    register_family,
    supported_model_types,
    vision_module_prefixes,
)
from vlmr1.models.frames import AnswerScale, CoordinateFrame, frame_settings_from_processor, resized_input_size
from vlmr1.models.tiny import TINY_ARCHS, build_tiny_model, default_pixel_range, tiny_config, tiny_processor
from vlmr1.models.tokenizer import QWEN_SPECIAL_TOKENS, build_qwen_chat_template, train_tiny_tokenizer

__all__ = [
    "QWEN_SPECIAL_TOKENS",
    "TINY_ARCHS",
    "AnswerScale",
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
