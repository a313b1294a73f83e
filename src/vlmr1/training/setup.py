"""Wiring for a GRPO run: data and rewards (checked first), then processor, model, LoRA and the trainer."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from vlmr1.data.loading import CheckedData, build_dataset, load_checked_data, split_validation
from vlmr1.errors import UserError
from vlmr1.models.loading import load_model, load_processor
from vlmr1.rewards import get_reward_functions
from vlmr1.rewards.checked import checked_reward

logger = logging.getLogger(__name__)


@dataclass
class CheckedRun:
    """The data and the reward functions of a run, checked before any model file is opened."""

    checked: CheckedData
    reward_funcs: list


def check_data(script_args) -> CheckedRun:
    """Read and check every data file and resolve the rewards (errors name file:line), loading no model."""
    checked = load_checked_data(script_args.data_file_paths, script_args.image_folders, script_args.reward_method,
                                script_args.task_type, script_args.check_images)
    logger.info("%d samples from %d file(s); extra fields: %s", len(checked.data), len(checked.sources),
                checked.data.extra_keys or "none")
    try:
        reward_funcs = get_reward_functions(script_args.reward_funcs or list(checked.task.default_rewards))
    except ValueError as e:
        raise UserError(str(e), where="--reward_funcs", kind="bad_reward") from e
    # a plain reward's bad output (a string, NaN, a wrong count) stops the first step with the reward's name
    return CheckedRun(checked, [checked_reward(fn) for fn in reward_funcs])


def make_datasets(run: CheckedRun, frame, val_split_ratio: float, seed: int):
    """The lazy train (and optional validation) datasets, with the model's coordinate frame on every row."""
    dataset = build_dataset(run.checked.data, run.checked.task.format_question, frame)
    return split_validation(dataset, val_split_ratio, seed)


def lora_config(family, model_args):
    """TRL's LoRA config from ``--use_peft --lora_*``, restricted to the language model; None without LoRA."""
    from trl import get_peft_config

    peft_config = get_peft_config(model_args)
    if peft_config is not None:
        peft_config.target_modules = family.lora_target_modules(model_args.lora_target_modules)
    return peft_config


def check_enough_prompts(num_train: int, training_args) -> None:
    """Refuse a training set smaller than one generation batch: TRL drops the incomplete batch and trains 0 steps."""
    needed = training_args.generation_batch_size * training_args.world_size // training_args.num_generations
    if num_train < needed:
        raise UserError(
            f"{num_train} training prompt(s), but one generation batch takes {needed} distinct prompts "
            f"(per_device_train_batch_size {training_args.per_device_train_batch_size} x steps_per_generation "
            f"{training_args.steps_per_generation} x {training_args.world_size} process(es) / num_generations "
            f"{training_args.num_generations})", kind="too_little_data",
            fix="add data or lower per_device_train_batch_size / gradient_accumulation_steps")


def build_trainer(script_args, training_args, model_args, run: CheckedRun | None = None) -> Any:
    """Check the data (unless given), then load processor and model and build the GRPO trainer."""
    from vlmr1.training.trainer import VLMGRPOTrainer

    run = run or check_data(script_args)
    num_rows = len(run.checked.data)
    held_out = math.ceil(num_rows * script_args.val_split_ratio)  # as datasets' train_test_split rounds
    check_enough_prompts(num_rows - held_out, training_args)
    family, processor = load_processor(model_args.model_name_or_path, model_args.model_revision,
                                       script_args.min_pixels, script_args.max_pixels)
    train_dataset, eval_dataset = make_datasets(run, family.coordinate_frame(processor),
                                                script_args.val_split_ratio, training_args.seed)
    # Our rows carry extra columns for the rewards; TRL must not drop them.
    training_args.remove_unused_columns = False
    return VLMGRPOTrainer(
        model=load_model(family, model_args.model_name_or_path, model_args.dtype, model_args.attn_implementation,
                         model_args.model_revision, freeze_vision=script_args.freeze_vision_modules),
        reward_funcs=run.reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=lora_config(family, model_args),
    )
