"""The one config system: TRL's parser over three dataclasses, from flags and/or a YAML recipe.

``VLMR1Arguments`` holds the seed's data and model flags; every ``trl.GRPOConfig`` field (``--learning_rate``,
``--num_generations``, ``--deepspeed``, ...) and every ``trl.ModelConfig`` field (``--model_name_or_path``,
``--use_peft``, ``--lora_r``, ...) is accepted as it is in TRL. ``--config recipe.yaml`` sets defaults that flags
override; a recipe key that no dataclass reads is an error.

Reading the flags (:func:`read_flags`) is pure; :func:`set_up_processes` is the one step that touches process state,
and :func:`build_configs` makes the dataclasses (``vlmr1.train`` runs the three in that order).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field, fields

import torch
import yaml
from accelerate import PartialState
from trl import GRPOConfig, ModelConfig, TrlParser


@dataclass
class VLMR1Arguments:
    """The seed's flags that TRL does not already have."""

    data_file_paths: str = field(
        default=None, metadata={"help": "jsonl files, ':'-separated: a.jsonl:b.jsonl"})
    image_folders: str = field(
        default=None, metadata={"help": "image folder per data file, ':'-separated; path = os.path.join(folder, image)"})
    reward_funcs: list[str] = field(
        default=None, metadata={"help": "reward names (see `vlmr1 rewards`) or package.module:function; "
                                        "default: the task's rewards"})
    reward_method: str = field(
        default=None, metadata={"help": "accuracy method per data file (':'-separated) or for all; "
                                        "a line's accu_reward_method wins"})
    task_type: str = field(default="default", metadata={"help": "question template and default rewards: "
                                                                 "default, rec, seg, od, gui"})
    val_split_ratio: float = field(default=0.0, metadata={"help": "fraction of lines held out for validation"})
    max_pixels: int = field(default=None, metadata={"help": "largest image area fed to the model, in pixels "
                                                             "(default: the processor's, 12845056 for Qwen2.5-VL)"})
    min_pixels: int = field(default=None, metadata={"help": "smallest image area fed to the model, in pixels "
                                                             "(default: the processor's, 3136 for Qwen2.5-VL)"})
    freeze_vision_modules: bool = field(default=False, metadata={"help": "train the language model only"})
    check_images: bool = field(default=True, metadata={"help": "check every image header before training"})


@dataclass
class VLMR1GRPOConfig(GRPOConfig):
    """``trl.GRPOConfig`` with defaults that follow the hardware (decided here, without touching process state).

    - ``bf16`` left unset means "where the GPU has it": TRL turns an unset ``bf16`` into True, which stops a CPU run
      at argument parsing. An explicit ``--bf16`` still wins.
    - ``report_to`` left unset means trackio (local) where it is installed, else none
      (:mod:`vlmr1.training.tracking`); ``project`` defaults to ``vlmr1``.
    - Without an accelerator, ``use_cpu`` is set, so ``torchrun`` on CPU runs data-parallel over gloo instead of
      N independent copies (transformers only builds a CPU process group when ``use_cpu`` is set). With
      ``--deepspeed`` under ``torchrun`` on CPU, the trainer uses the DeepSpeed-over-gloo state that
      :func:`set_up_processes` made instead.
    """

    shared_prefix: bool = field(
        default=True, metadata={"help": "run each group's images and prompt once (log-probs, training forward and "
                                        "transformers generation) where the model family and settings allow it; "
                                        "elsewhere TRL's stock path, with a log line saying why"})
    report_to: None | str | list[str] = field(
        default=None, metadata={"help": "trackers: trackio, wandb, tensorboard, ... or none; default trackio (local "
                                        "dashboard: trackio show --project vlmr1) when installed, else none"})
    project: str = field(default="vlmr1", metadata={"help": "the tracker's project (trackio)"})
    log_rollouts_steps: int = field(
        default=None, metadata={"help": "draw a grid of prompts x completions (the task's overlay, rewards, answers) "
                                        "every N steps into OUTPUT_DIR/rollouts/ and the tracker; default: at "
                                        "logging steps, ~100 per run at most, while drawing stays under 1% of the "
                                        "training time; 0: never"})
    log_rollouts_prompts: int = field(default=4, metadata={"help": "prompts per rollout picture"})

    def __post_init__(self):
        if self.report_to is None:
            from vlmr1.training.tracking import default_report_to

            self.report_to = default_report_to()
        if not has_accelerator():
            if deepspeed_over_gloo(self.deepspeed, self.accelerator_config):
                self.accelerator_config = {**(self.accelerator_config or {}), "use_configured_state": True}
            else:
                self.use_cpu = True
        if self.bf16 is None and not self.fp16:
            self.bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        super().__post_init__()


def has_accelerator() -> bool:
    return torch.cuda.is_available() or torch.backends.mps.is_available()


def deepspeed_over_gloo(deepspeed, accelerator_config) -> bool:
    """Whether this process runs DeepSpeed on CPU over gloo: ``--deepspeed`` under ``torchrun`` without an accelerator
    (accelerate only sets DeepSpeed up on an accelerator; on CPU it counts one process and DeepSpeed's batch check
    fails). This is how the DeepSpeed tests run ZeRO-2/3 on 2 CPU processes."""
    return (bool(deepspeed) and "LOCAL_RANK" in os.environ and not has_accelerator()
            and isinstance(accelerator_config, (dict, type(None))))


def make_parser() -> TrlParser:
    """The parser for ``vlmr1 train``: (VLMR1Arguments, VLMR1GRPOConfig, ModelConfig)."""
    return TrlParser((VLMR1Arguments, VLMR1GRPOConfig, ModelConfig))


def read_flags(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags over ``--config recipe.yaml`` as one namespace; touches no process state or environment.

    Raises:
        ValueError: a recipe key or flag that no dataclass reads.
    """
    parser = make_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    env: dict[str, str] = {}
    if "--config" in args:
        i = args.index("--config")
        args.pop(i)
        path = args.pop(i)
        with open(path) as f:
            recipe = yaml.safe_load(f)
        if not isinstance(recipe, dict):
            raise ValueError(f"{path} must hold a YAML mapping of flag names to values")
        env = {str(k): str(v) for k, v in (recipe.pop("env", None) or {}).items()}
        unknown = parser.set_defaults_with_config(**recipe)
        if unknown:
            raise ValueError(f"{path}: unknown recipe keys {unknown} (no vlmr1/GRPOConfig/ModelConfig flag has these "
                             "names)")
    flags, unknown = parser.parse_known_args(args)
    if unknown:
        raise ValueError(f"unknown arguments {unknown}: `vlmr1 train --help` lists the flags")
    flags.recipe_env = env
    return flags


def set_up_processes(flags: argparse.Namespace) -> None:
    """The one step of ``vlmr1 train`` that sets up process state, before the configs are built (transformers builds
    its device state inside ``TrainingArguments.__post_init__``): the recipe's ``env`` variables, and DeepSpeed over
    gloo where :func:`deepspeed_over_gloo` says so."""
    os.environ.update(flags.recipe_env)
    if not deepspeed_over_gloo(flags.deepspeed, flags.accelerator_config):
        return
    before = os.environ.get("ACCELERATE_USE_DEEPSPEED")
    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    try:
        PartialState(backend="gloo")
    finally:
        if before is None:
            del os.environ["ACCELERATE_USE_DEEPSPEED"]
        else:
            os.environ["ACCELERATE_USE_DEEPSPEED"] = before


def build_configs(flags: argparse.Namespace) -> tuple[VLMR1Arguments, VLMR1GRPOConfig, ModelConfig]:
    """The three dataclasses from :func:`read_flags`' namespace."""
    values = vars(flags)
    return tuple(cls(**{f.name: values[f.name] for f in fields(cls) if f.init and f.name in values})
                 for cls in (VLMR1Arguments, VLMR1GRPOConfig, ModelConfig))


def parse_train_args(argv: list[str] | None = None) -> tuple[VLMR1Arguments, VLMR1GRPOConfig, ModelConfig]:
    """Flags and ``--config recipe.yaml`` into the three dataclasses (no process set-up: see ``vlmr1.train``)."""
    return build_configs(read_flags(argv))
