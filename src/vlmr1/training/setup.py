"""Wiring for a GRPO run: data and rewards (checked first), then processor, model, LoRA and the trainer."""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from typing import Any

from vlmr1.data.loading import LoadedData, build_dataset, load_sources, pair_sources, split_validation
from vlmr1.rewards import get_reward_functions, validate_accuracy_method
from vlmr1.tasks import Task, get_task

logger = logging.getLogger(__name__)


@dataclass
class CheckedData:
    """Everything read and validated before any model file is opened."""

    task: Task
    data: LoadedData
    reward_funcs: list


def check_data(script_args) -> CheckedData:
    """Read and check every data file and resolve the rewards (errors name file:line), loading no model."""
    task = get_task(script_args.task_type)
    sources = pair_sources(script_args.data_file_paths, script_args.image_folders, script_args.reward_method)
    data = load_sources(sources, task_type=task.name, validate_method=validate_accuracy_method,
                        check_images=script_args.check_images)
    logger.info("%d samples from %d file(s); extra fields: %s", len(data), len(sources), data.extra_keys or "none")
    reward_funcs = get_reward_functions(script_args.reward_funcs or list(task.default_rewards))
    return CheckedData(task, data, reward_funcs)


def make_datasets(checked: CheckedData, frame, val_split_ratio: float, seed: int):
    """The lazy train (and optional validation) datasets, with the model's coordinate frame on every row."""
    dataset = build_dataset(checked.data, checked.task.format_question, frame)
    return split_validation(dataset, val_split_ratio, seed)


PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


def check_model_folder(path: str) -> None:
    """Explain what a local ``--model_name_or_path`` folder lacks (transformers' own errors name the wrong file)."""
    if not os.path.isdir(path):
        return
    if not os.path.isfile(os.path.join(path, "config.json")):
        if os.path.isfile(os.path.join(path, "adapter_config.json")):
            raise ValueError(f"{path} holds a LoRA adapter, not a full model: merge it first (peft: "
                             "PeftModel.from_pretrained(base, dir).merge_and_unload().save_pretrained(out), "
                             "then copy the processor files into out) and use the merged folder")
        raise ValueError(f"{path} has no config.json: give a model checkpoint folder or a Hub id")
    if not any(os.path.isfile(os.path.join(path, f)) for f in PROCESSOR_FILES):
        raise ValueError(f"{path} has no processor ({' / '.join(PROCESSOR_FILES)} missing): save it next to the "
                         "weights, e.g. AutoProcessor.from_pretrained(<base model>).save_pretrained("
                         f"'{path}'), with the --max_pixels the model was trained with")


def load_processor(model_args, min_pixels: int | None, max_pixels: int | None):
    """The model's family adapter and processor (no weights), with the run's pixel limits applied."""
    from transformers import AutoConfig, AutoProcessor

    from vlmr1.models import get_family

    path = model_args.model_name_or_path
    check_model_folder(path)
    config = AutoConfig.from_pretrained(path, revision=model_args.model_revision)
    family = get_family(config.model_type)
    processor = AutoProcessor.from_pretrained(path, revision=model_args.model_revision)
    if not hasattr(processor, "image_processor"):
        raise ValueError(f"{path} has a tokenizer but no image processor: save the processor next to the checkpoint "
                         "(processor.save_pretrained(dir)) or copy it from the base model")
    set_pixel_limits(processor, min_pixels, max_pixels)
    return family, processor


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


def load_model(family, model_args, freeze_vision_modules: bool):
    """Load the weights through the family adapter; optionally freeze the vision tower."""
    model = family.load(model_args.model_name_or_path, dtype=model_args.dtype or "auto",
                        attn_implementation=model_args.attn_implementation, revision=model_args.model_revision)
    if freeze_vision_modules:
        logger.info("froze %d vision parameters", family.freeze_vision(model))
    return model


def text_lora_targets(family, names: list[str] | str | None) -> str:
    """A peft ``target_modules`` regex over the language model only (the vision tower never gets adapters).

    Args:
        family: the model family (its default regex is used when ``names`` is empty or ``all-linear``).
        names: ``--lora_target_modules`` such as ``q_proj v_proj``.
    """
    names = [names] if isinstance(names, str) else names
    if not names or names == ["all-linear"]:
        return family.lora_target_modules_default
    alternatives = "|".join(re.escape(n) for n in names)
    return rf"(?:.*\.)?language_model\.layers\.\d+\.(?:.*\.)?(?:{alternatives})"


def lora_config(family, model_args):
    """TRL's LoRA config from ``--use_peft --lora_*``, restricted to the language model; None without LoRA."""
    from trl import get_peft_config

    peft_config = get_peft_config(model_args)
    if peft_config is not None:
        peft_config.target_modules = text_lora_targets(family, model_args.lora_target_modules)
    return peft_config


def check_enough_prompts(num_train: int, training_args) -> None:
    """Refuse a training set smaller than one generation batch: TRL drops the incomplete batch and trains 0 steps."""
    needed = training_args.generation_batch_size * training_args.world_size // training_args.num_generations
    if num_train < needed:
        raise ValueError(
            f"{num_train} training prompt(s), but one generation batch takes {needed} distinct prompts "
            f"(per_device_train_batch_size {training_args.per_device_train_batch_size} x steps_per_generation "
            f"{training_args.steps_per_generation} x {training_args.world_size} process(es) / num_generations "
            f"{training_args.num_generations}): add data or lower per_device_train_batch_size / "
            "gradient_accumulation_steps")


def build_trainer(script_args, training_args, model_args, checked: CheckedData | None = None) -> Any:
    """Check the data (unless given), then load processor and model and build the GRPO trainer."""
    from vlmr1.training.trainer import VLMGRPOTrainer

    checked = checked or check_data(script_args)
    held_out = math.ceil(len(checked.data) * script_args.val_split_ratio)  # as datasets' train_test_split rounds
    check_enough_prompts(len(checked.data) - held_out, training_args)
    family, processor = load_processor(model_args, script_args.min_pixels, script_args.max_pixels)
    train_dataset, eval_dataset = make_datasets(checked, family.coordinate_frame(processor),
                                                script_args.val_split_ratio, training_args.seed)
    # Our rows carry extra columns for the rewards; TRL must not drop them.
    training_args.remove_unused_columns = False
    return VLMGRPOTrainer(
        model=load_model(family, model_args, script_args.freeze_vision_modules),
        reward_funcs=checked.reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=lora_config(family, model_args),
    )
