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

from vlmr1.arguments import trl_parser
from vlmr1.errors import UserError, bad_argument
from vlmr1.training.flag_checks import check_flag_values
from vlmr1.training.vlm_r1_flags import VLMR1CompatArguments, accept_bare_bool_flags, translate


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
    max_anyres_num: int = field(default=None, metadata={"help": "most tiles per image for tiling families "
                                                                 "(InternVL; VLM-R1's flag; default: the "
                                                                 "processor's, 12 for the -hf checkpoints)"})
    freeze_vision_modules: bool = field(default=False, metadata={"help": "train the language model only"})
    check_images: bool = field(default=True, metadata={"help": "decode every image once before training (good files "
                                                                "are remembered by size and mtime)"})


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
                                        "logging steps, ~100 per run at most, while drawing stays under 1%% of the "
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
    """The parser for ``vlmr1 train``: (VLMR1Arguments, VLMR1GRPOConfig, ModelConfig) and VLM-R1's other flags;
    abbreviated flags are refused, as unknown recipe keys are."""
    parser = trl_parser((VLMR1Arguments, VLMR1GRPOConfig, ModelConfig, VLMR1CompatArguments), prog="vlmr1 train")
    accept_bare_bool_flags(parser)
    return parser


def read_recipe(path: str) -> dict:
    """A YAML recipe as a mapping; a missing file or bad YAML is a ``bad_recipe`` error naming the file (and line)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            recipe = yaml.safe_load(f)
    except OSError as e:
        raise UserError(f"cannot read the recipe ({e.strerror})", where=path, kind="bad_recipe",
                        fix="give --config the path of a YAML file (recipes/<task>/*.yaml)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise UserError(f"not valid YAML ({getattr(e, 'problem', None) or e})", where=path,
                        line=mark.line + 1 if mark else None, kind="bad_recipe",
                        fix="one `flag_name: value` per line") from None
    if not isinstance(recipe, dict):
        raise UserError("must hold a YAML mapping of flag names to values", where=path, kind="bad_recipe")
    return recipe


def read_flags(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags over ``--config recipe.yaml`` as one namespace, VLM-R1's flags translated
    (:mod:`vlmr1.training.vlm_r1_flags`), numbers range-checked; touches no process state or environment.

    Raises:
        UserError: a recipe key or flag that no dataclass reads, or a value out of range (``bad_argument``).
    """
    parser = make_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    env: dict[str, str] = {}
    if "--config" in args:
        i = args.index("--config")
        args.pop(i)
        if i >= len(args):
            raise bad_argument("--config", "needs a path", "--config recipes/<task>/<recipe>.yaml")
        path = args.pop(i)
        recipe = read_recipe(path)
        env = {str(k): str(v) for k, v in (recipe.pop("env", None) or {}).items()}
        unknown = parser.set_defaults_with_config(**recipe)
        if unknown:
            raise UserError(f"unknown recipe keys {unknown[::2]} (no vlmr1/GRPOConfig/ModelConfig flag has these "
                            "names)", where=path, kind="bad_recipe", fix="`vlmr1 train --help` lists the flags")
    flags, unknown = parser.parse_known_args(args)
    if unknown:
        raise bad_argument("vlmr1 train", f"unknown arguments {unknown}", "`vlmr1 train --help` lists the flags "
                           "(abbreviations are not accepted)")
    flags.recipe_env = env
    translate(flags)
    return check_flag_values(flags, parser)


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
    configs = []
    for cls in (VLMR1Arguments, VLMR1GRPOConfig, ModelConfig):
        try:
            configs.append(cls(**{f.name: values[f.name] for f in fields(cls) if f.init and f.name in values}))
        except UserError:
            raise
        except ValueError as e:  # TRL's and transformers' own checks of flag combinations
            raise bad_argument("vlmr1 train", str(e), "change the flags named above") from e
    return tuple(configs)


def parse_train_args(argv: list[str] | None = None) -> tuple[VLMR1Arguments, VLMR1GRPOConfig, ModelConfig]:
    """Flags and ``--config recipe.yaml`` into the three dataclasses (no process set-up: see ``vlmr1.train``)."""
    return build_configs(read_flags(argv))
