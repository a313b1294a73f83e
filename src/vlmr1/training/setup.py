"""Wiring for a GRPO run: data and rewards (checked first), then model, processor, LoRA and the trainer."""

from __future__ import annotations

import logging
import re
from typing import Any

from vlmr1.data.loading import build_dataset, load_sources, pair_sources, split_validation
from vlmr1.rewards import get_reward_functions, validate_accuracy_method
from vlmr1.tasks import get_task

logger = logging.getLogger(__name__)


def prepare_data(script_args, training_args) -> tuple[Any, Any, list]:
    """Read and check every data file and resolve the rewards, before any model loads.

    Returns:
        ``(train_dataset, eval_dataset_or_None, reward_functions)``.
    """
    task = get_task(script_args.task_type)
    sources = pair_sources(script_args.data_file_paths, script_args.image_folders, script_args.reward_method)
    data = load_sources(sources, task_type=task.name, validate_method=validate_accuracy_method,
                        check_images=script_args.check_images)
    logger.info("%d samples from %d file(s); extra fields: %s", len(data), len(sources), data.extra_keys or "none")
    dataset = build_dataset(data, task.format_question)
    train_dataset, eval_dataset = split_validation(dataset, script_args.val_split_ratio, training_args.seed)
    reward_funcs = get_reward_functions(script_args.reward_funcs or list(task.default_rewards))
    return train_dataset, eval_dataset, reward_funcs


def load_model_and_processor(script_args, training_args, model_args):
    """Load the model through its family adapter and the processor with the run's pixel limits."""
    from transformers import AutoConfig, AutoProcessor

    from vlmr1.models import get_family

    path = model_args.model_name_or_path
    config = AutoConfig.from_pretrained(path, revision=model_args.model_revision)
    family = get_family(config.model_type)
    processor = AutoProcessor.from_pretrained(path, revision=model_args.model_revision)
    if processor.__class__.__name__ == "PreTrainedTokenizerFast" or not hasattr(processor, "image_processor"):
        raise ValueError(f"{path} has no image processor: save the processor next to the checkpoint "
                         "(processor.save_pretrained(dir)) or point --model_name_or_path at the base model")
    set_pixel_limits(processor, script_args.min_pixels, script_args.max_pixels)
    model = family.load(path, dtype=model_args.dtype or "auto", attn_implementation=model_args.attn_implementation,
                        revision=model_args.model_revision)
    if script_args.freeze_vision_modules:
        frozen = family.freeze_vision(model)
        logger.info("froze %d vision parameters", frozen)
    return family, model, processor


def set_pixel_limits(processor, min_pixels: int | None, max_pixels: int | None) -> None:
    """Bound the image area the processor resizes to (``--min_pixels/--max_pixels``); None keeps its own."""
    image_processor = processor.image_processor
    size = dict(image_processor.size)
    if min_pixels is not None:
        size["shortest_edge"] = min_pixels
    if max_pixels is not None:
        size["longest_edge"] = max_pixels
    if size["shortest_edge"] > size["longest_edge"]:
        raise ValueError(f"--min_pixels {size['shortest_edge']} is above --max_pixels {size['longest_edge']}")
    image_processor.size = {"shortest_edge": size["shortest_edge"], "longest_edge": size["longest_edge"]}


def text_lora_targets(family, names: list[str] | None) -> str:
    """A peft ``target_modules`` regex over the language model only.

    Args:
        family: the model family (its default regex is used when ``names`` is empty).
        names: ``--lora_target_modules`` (e.g. ``q_proj v_proj``), or None/``all-linear``.
    """
    if not names or names == ["all-linear"] or names == "all-linear":
        return family.lora_target_modules_default
    names = [names] if isinstance(names, str) else names
    alternatives = "|".join(re.escape(n) for n in names)
    return rf"(?:.*\.)?language_model\.layers\.\d+\.(?:.*\.)?(?:{alternatives})"


def lora_config(family, model_args):
    """TRL's LoRA config from ``--use_peft --lora_*``, restricted to the language model (the vision tower never
    gets adapters, whatever ``--lora_target_modules`` names)."""
    from trl import get_peft_config

    peft_config = get_peft_config(model_args)
    if peft_config is None:
        return None
    peft_config.target_modules = text_lora_targets(family, model_args.lora_target_modules)
    return peft_config


def build_trainer(script_args, training_args, model_args, train_dataset, eval_dataset, reward_funcs):
    """Build the GRPO trainer for a checked dataset."""
    from vlmr1.training.trainer import VLMGRPOTrainer

    # Our rows carry extra columns for the rewards; TRL must not drop them.
    training_args.remove_unused_columns = False
    family, model, processor = load_model_and_processor(script_args, training_args, model_args)
    return VLMGRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=lora_config(family, model_args),
    )
