"""Wiring for a GRPO run: data and rewards (checked first), then processor, model, LoRA and the trainer."""

from __future__ import annotations

import json
import logging
import math
import os
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
                                       script_args.min_pixels, script_args.max_pixels, script_args.max_anyres_num)
    train_dataset, eval_dataset = make_datasets(run, family.coordinate_frame(processor),
                                                script_args.val_split_ratio, training_args.seed)
    # Our rows carry extra columns for the rewards; TRL must not drop them.
    training_args.remove_unused_columns = False
    trainer = VLMGRPOTrainer(
        model=load_model(family, model_args.model_name_or_path, model_args.dtype, model_args.attn_implementation,
                         model_args.model_revision, freeze_vision=script_args.freeze_vision_modules),
        reward_funcs=run.reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=lora_config(family, model_args),
    )
    watch_training(trainer, run.checked.task, run_settings(script_args, training_args, model_args, run))
    return trainer


RUN_SETTINGS_KEYS = ("learning_rate", "num_generations", "per_device_train_batch_size", "gradient_accumulation_steps",
                     "max_steps", "num_train_epochs", "max_completion_length", "temperature", "beta", "loss_type",
                     "seed", "world_size", "report_to", "log_rollouts_steps")


def run_settings(script_args, training_args, model_args, run: CheckedRun) -> dict:
    """What ``run.json`` records for the report: model, task, rewards, data and the main training settings."""
    settings = {"model_name_or_path": model_args.model_name_or_path, "task_type": run.checked.task.name,
                "reward_funcs": [getattr(f, "__name__", str(f)) for f in run.reward_funcs],
                "data_file_paths": script_args.data_file_paths, "image_folders": script_args.image_folders,
                "num_samples": len(run.checked.data), "use_peft": model_args.use_peft,
                "freeze_vision_modules": script_args.freeze_vision_modules}
    settings.update({k: getattr(training_args, k, None) for k in RUN_SETTINGS_KEYS})
    return settings


def watch_training(trainer, task, settings: dict | None = None) -> None:
    """What a person watching the run sees: the compact console line, ``train_log.jsonl``, rollout pictures, tracker
    rows at the training step, and ``run.json`` (the settings the report shows)."""
    from vlmr1.fileio import atomic_write
    from vlmr1.training.console import JsonlLog, use_compact_console
    from vlmr1.training.rollouts import RolloutPictures
    from vlmr1.training.tracking import align_trackio_steps
    from vlmr1.viz.report import RUN_SETTINGS

    args = trainer.args
    if settings is not None and trainer.accelerator.is_main_process:
        atomic_write(os.path.join(args.output_dir, RUN_SETTINGS), json.dumps(settings, indent=1, default=str) + "\n")
    use_compact_console(trainer)
    align_trackio_steps(trainer)
    trainer.add_callback(JsonlLog(args.output_dir))
    pictures = RolloutPictures(args.output_dir, getattr(args, "log_rollouts_steps", None),
                               getattr(args, "log_rollouts_prompts", 4), task)
    pictures.trainer_callbacks = trainer.callback_handler.callbacks
    # right after the flow callback: it sees this step's should_log, and it sends its last picture before the
    # trackers close their runs in on_train_end
    trainer.callback_handler.callbacks.insert(1, pictures)
    trainer.rollout_pictures = pictures
