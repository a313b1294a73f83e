"""VLM-R1 run scripts unchanged: every flag of VLM-R1's ``grpo_jsonl.py``, with the meaning it has there.

VLM-R1's script parses its script arguments (on TRL 0.17's ``ScriptArguments``), its own ``GRPOConfig`` and
``ModelConfig`` with transformers 4.49. The flags vlmr1 and TRL 1.16 do not share are the fields of
:class:`VLMR1CompatArguments`, parsed with the others; :func:`translate` then rewrites :func:`read_flags`' namespace in
vlmr1's terms (no process state touched) and keeps one note per flag it acted on, which ``vlmr1.train`` logs:

* ``--resume_from_checkpoint True`` resumes from the newest complete checkpoint of ``--output_dir`` if there is one,
  else starts fresh; ``False`` starts fresh; a path resumes from it.
* ``--is_reward_customized_from_vlm_module True`` swaps in the task's model-module rewards, as VLM-R1 does (rec:
  ``accuracy`` -> ``rec_iou``, ``format`` -> ``rec_format``); VLM-R1 has them for rec only.
* ``--bf16`` (also bare, as VLM-R1's scripts write it) on a machine without a bfloat16 GPU trains in float32;
  ``--attn_implementation flash_attention_2`` without flash-attn and a GPU uses PyTorch's ``sdpa``; ``--report_to
  wandb`` without wandb installed reports to the default local tracker (trackio) instead.
* ``--torch_dtype``, ``--vllm_max_model_len``, ``--vllm_guided_decoding_regex``: TRL 1.16's ``--dtype``,
  ``--vllm_max_model_length``, ``--vllm_structured_outputs_regex``.
* ``--max_anyres_num``: InternVL's image tile limit, a vlmr1 flag (``VLMR1Arguments``) that the InternVL family reads.
* The rest (``--dataset-name``, ``--arrow_cache_dir``, ``--max_prompt_length``, ...) mean nothing here, nor in
  VLM-R1's script: accepted with one log line each.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
from dataclasses import dataclass, field

import torch

logger = logging.getLogger(__name__)

TRUE, FALSE = {"true", "yes", "1"}, {"false", "no", "0"}
RENAMED = {"torch_dtype": "dtype", "vllm_max_model_len": "vllm_max_model_length",
           "vllm_guided_decoding_regex": "vllm_structured_outputs_regex"}
UNUSED = {  # flag -> why it means nothing here
    "dataset_name": "the data come from --data_file_paths (VLM-R1's script ignores it too)",
    "dataset_config": "the data come from --data_file_paths",
    "dataset_train_split": "the data come from --data_file_paths",
    "dataset_test_split": "the data come from --data_file_paths; --val_split_ratio holds some out",
    "arrow_cache_dir": "rows are not cached as Arrow files (VLM-R1's script never reads it)",
    "max_prompt_length": "prompts are never truncated (VLM-R1 sets it to None as well)",
    "ignore_bias_buffers": "a TRL 0.17 script argument that GRPO never used",
    "gradient_checkpointing_use_reentrant": "use --gradient_checkpointing_kwargs '{\"use_reentrant\": false}'",
    "vllm_device": "TRL 1.16 places vLLM itself (--vllm_mode colocate or server)",
    "vllm_dtype": "vLLM uses the model's dtype",
    "vllm_enable_prefix_caching": "TRL 1.16 configures vLLM's prefix caching itself",
}


@dataclass
class VLMR1CompatArguments:
    """VLM-R1's ``grpo_jsonl.py`` flags that neither vlmr1 nor TRL 1.16 has (None: not given)."""

    is_reward_customized_from_vlm_module: bool = field(
        default=False, metadata={"help": "VLM-R1: use the model module's rewards for the task (rec: accuracy -> "
                                         "rec_iou, format -> rec_format)"})
    dataset_name: str = field(default=None, metadata={"help": "VLM-R1/TRL 0.17: ignored"})
    dataset_config: str = field(default=None, metadata={"help": "TRL 0.17: ignored"})
    dataset_train_split: str = field(default=None, metadata={"help": "TRL 0.17: ignored"})
    dataset_test_split: str = field(default=None, metadata={"help": "TRL 0.17: ignored"})
    arrow_cache_dir: str = field(default=None, metadata={"help": "VLM-R1: ignored"})
    max_prompt_length: int = field(default=None, metadata={"help": "VLM-R1: ignored (prompts are not truncated)"})
    ignore_bias_buffers: bool = field(default=None, metadata={"help": "TRL 0.17: ignored"})
    gradient_checkpointing_use_reentrant: bool = field(default=None, metadata={"help": "TRL 0.17: ignored"})
    torch_dtype: str = field(default=None, metadata={"help": "TRL 0.17's name of --dtype"})
    vllm_device: str = field(default=None, metadata={"help": "VLM-R1: ignored"})
    vllm_dtype: str = field(default=None, metadata={"help": "VLM-R1: ignored"})
    vllm_max_model_len: int = field(default=None, metadata={"help": "VLM-R1's name of --vllm_max_model_length"})
    vllm_enable_prefix_caching: bool = field(default=None, metadata={"help": "VLM-R1: ignored"})
    vllm_guided_decoding_regex: str = field(default=None, metadata={"help": "VLM-R1's --vllm_structured_outputs_regex"})


def accept_bare_bool_flags(parser: argparse.ArgumentParser) -> None:
    """Let every boolean flag stand alone (``--bf16`` = ``--bf16 true``), as transformers 4.49 parsed VLM-R1's
    scripts; transformers 5 demands a value for the optional ones (bf16, tf32, ...)."""
    for action in parser._actions:
        if action.nargs is None and getattr(action.type, "__name__", "") == "string_to_bool":
            action.nargs, action.const = "?", True


def _resume(value):
    """``--resume_from_checkpoint`` as ``vlmr1.train`` takes it: None = newest complete checkpoint if any, False =
    fresh start, a path = that checkpoint."""
    if isinstance(value, bool):
        return None if value else False
    if isinstance(value, str) and value.strip().lower() in TRUE:
        return None
    if isinstance(value, str) and value.strip().lower() in FALSE:
        return False
    return value


def _customized_rewards(flags: argparse.Namespace) -> str:
    from vlmr1.tasks import get_task

    task = get_task(flags.task_type)
    names = list(flags.reward_funcs or task.default_rewards)
    if not task.vlm_module_rewards:
        return (f"--is_reward_customized_from_vlm_module: VLM-R1's model modules have rewards for --task_type rec "
                f"only (VLM-R1 stops for {task.name!r}); using {names}")
    flags.reward_funcs = [task.vlm_module_rewards.get(name, name) for name in names]
    swapped = ", ".join(f"{a} -> {b}" for a, b in zip(names, flags.reward_funcs) if a != b) or "nothing to swap"
    return f"--is_reward_customized_from_vlm_module: the {task.name} task's model-module rewards: {swapped}"


def _hardware(flags: argparse.Namespace) -> list[str]:
    notes = []
    gpu = torch.cuda.is_available()
    if flags.bf16 is True and not (gpu and torch.cuda.is_bf16_supported()):
        flags.bf16 = False
        notes.append("--bf16: no GPU with bfloat16 here; training in float32")
    if flags.attn_implementation == "flash_attention_2":
        from transformers.utils import is_flash_attn_2_available

        if not (gpu and is_flash_attn_2_available()):
            flags.attn_implementation = "sdpa"
            notes.append("--attn_implementation flash_attention_2: " + ("flash-attn is not installed (pip install "
                         "flash-attn)" if gpu else "no GPU here") + "; using PyTorch's sdpa attention")
    report_to = flags.report_to if isinstance(flags.report_to, list) else [flags.report_to]
    if "wandb" in report_to and importlib.util.find_spec("wandb") is None:
        from vlmr1.training.tracking import default_report_to

        flags.report_to = [r for r in report_to if r != "wandb"] or [default_report_to()]
        notes.append("--report_to wandb: wandb is not installed (pip install 'vlmr1[wandb]'); reporting to "
                     f"{', '.join(flags.report_to)} instead")
    return notes


def translate(flags: argparse.Namespace) -> None:
    """Rewrite VLM-R1's flags in ``flags`` into vlmr1's (module docstring); ``flags.vlm_r1_notes`` lists what was
    done, one line per flag. Touches no process state."""
    notes = []
    resume = _resume(flags.resume_from_checkpoint)
    if resume is not flags.resume_from_checkpoint:
        notes.append(f"--resume_from_checkpoint {flags.resume_from_checkpoint}: " + (
            "resuming from the newest complete checkpoint in --output_dir if there is one" if resume is None
            else "starting fresh, whatever --output_dir holds"))
        flags.resume_from_checkpoint = resume
    for old, new in RENAMED.items():
        if getattr(flags, old, None) is not None:
            setattr(flags, new, getattr(flags, old))
            notes.append(f"--{old} is --{new} in TRL 1.16: set to {getattr(flags, old)!r}")
    for name, why in UNUSED.items():
        if getattr(flags, name, None) is not None:
            notes.append(f"--{name} {getattr(flags, name)}: means nothing here; {why}")
    if flags.is_reward_customized_from_vlm_module:
        notes.append(_customized_rewards(flags))
    if notes and flags.loss_type == "dapo" and not flags.top_k:  # a VLM-R1 command line on TRL's defaults
        notes.append("TRL 1.16's defaults differ from VLM-R1's (loss_type dapo vs per-sequence grpo, top_k 0 vs 50, "
                     "beta 0.0 vs 0.04, max_completion_length 512 vs 256): add --config recipes/vlm_r1/defaults.yaml "
                     "for VLM-R1's")
    notes += _hardware(flags)
    flags.vlm_r1_notes = notes


def log_notes(flags: argparse.Namespace) -> None:
    """One log line per VLM-R1 flag :func:`translate` acted on (on the first process only)."""
    if int(os.environ.get("RANK", "0")) == 0:
        for note in getattr(flags, "vlm_r1_notes", ()):
            logger.info("VLM-R1 flag: %s", note)
