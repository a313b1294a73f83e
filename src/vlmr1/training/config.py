"""The one config system: TRL's parser over three dataclasses, from flags and/or a YAML recipe.

``VLMR1Arguments`` holds the seed's data and model flags; every ``trl.GRPOConfig`` field (``--learning_rate``,
``--num_generations``, ``--deepspeed``, ...) and every ``trl.ModelConfig`` field (``--model_name_or_path``,
``--use_peft``, ``--lora_r``, ...) is accepted as it is in TRL. ``--config recipe.yaml`` sets defaults that flags
override; a recipe key that no dataclass reads is an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
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
    """``trl.GRPOConfig`` with defaults that follow the hardware.

    - ``bf16`` left unset means "where the GPU has it": TRL turns an unset ``bf16`` into True, which stops a CPU run
      at argument parsing. An explicit ``--bf16`` still wins.
    - Without an accelerator, ``use_cpu`` is set, so ``torchrun`` on CPU runs data-parallel over gloo instead of
      N independent copies (transformers only builds a CPU process group when ``use_cpu`` is set). With
      ``--deepspeed`` under ``torchrun`` on CPU, DeepSpeed runs over gloo instead (see ``deepspeed_over_gloo``).
    """

    shared_prefix: bool = field(
        default=True, metadata={"help": "run each group's images and prompt once (log-probs, training forward and "
                                        "transformers generation) where the model family and settings allow it; "
                                        "elsewhere TRL's stock path, with a log line saying why"})

    def __post_init__(self):
        if not torch.cuda.is_available() and not torch.backends.mps.is_available():
            if self.deepspeed and "LOCAL_RANK" in os.environ and isinstance(self.accelerator_config, (dict, type(None))):
                self.accelerator_config = deepspeed_over_gloo(self.accelerator_config)
            else:
                self.use_cpu = True
        if self.bf16 is None and not self.fp16:
            self.bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        super().__post_init__()


def deepspeed_over_gloo(accelerator_config: dict | None) -> dict:
    """Set this process up for DeepSpeed over gloo, and return the ``accelerator_config`` that makes the trainer use it.

    accelerate only sets DeepSpeed up on an accelerator (on CPU it counts one process and DeepSpeed's batch check
    fails); DeepSpeed itself runs on CPU over gloo. This is how the DeepSpeed tests run ZeRO-2/3 on 2 CPU processes.
    """
    before = os.environ.get("ACCELERATE_USE_DEEPSPEED")
    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    try:
        PartialState(backend="gloo")
    finally:
        if before is None:
            del os.environ["ACCELERATE_USE_DEEPSPEED"]
        else:
            os.environ["ACCELERATE_USE_DEEPSPEED"] = before
    return {**(accelerator_config or {}), "use_configured_state": True}


def make_parser() -> TrlParser:
    """The parser for ``vlmr1 train``: (VLMR1Arguments, VLMR1GRPOConfig, ModelConfig)."""
    return TrlParser((VLMR1Arguments, VLMR1GRPOConfig, ModelConfig))


def parse_train_args(argv: list[str] | None = None) -> tuple[VLMR1Arguments, VLMR1GRPOConfig, ModelConfig]:
    """Parse flags and ``--config recipe.yaml`` into the three dataclasses."""
    script_args, training_args, model_args = make_parser().parse_args_and_config(args=argv)
    return script_args, training_args, model_args
