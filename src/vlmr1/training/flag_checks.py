"""Range checks of ``vlmr1 train``'s numeric flags, before anything runs.

TRL and transformers accept many nonsensical numbers silently (``--learning_rate nan`` trains at loss nan,
``--num_generations 1`` has no advantage to learn from, ``--temperature 0`` divides by zero). :func:`check_flag_values`
refuses every value out of its range, from the command line or a recipe, with a ``bad_argument`` error.
"""

from __future__ import annotations

import argparse

from vlmr1.arguments import out_of_range, range_text
from vlmr1.errors import bad_argument

# flag -> (low, high, low_open, high_open); None values (unset optional flags) are not checked.
RANGES: dict[str, tuple] = {
    "learning_rate": (0, None, False, False),
    "num_train_epochs": (0, None, True, False),
    "per_device_train_batch_size": (1, None, False, False),
    "per_device_eval_batch_size": (1, None, False, False),
    "gradient_accumulation_steps": (1, None, False, False),
    "steps_per_generation": (1, None, False, False),
    "generation_batch_size": (1, None, False, False),
    "num_generations": (2, None, False, False),
    "num_generations_eval": (1, None, False, False),
    "num_iterations": (1, None, False, False),
    "max_completion_length": (1, None, False, False),
    "max_prompt_length": (1, None, False, False),
    "temperature": (0, None, True, False),
    "top_p": (0, 1, True, False),
    "top_k": (0, None, False, False),
    "min_p": (0, 1, False, False),
    "repetition_penalty": (0, None, True, False),
    "beta": (0, None, False, False),
    "epsilon": (0, None, False, False),
    "epsilon_high": (0, None, False, False),
    "logging_steps": (0, None, True, False),
    "save_steps": (0, None, True, False),
    "eval_steps": (0, None, True, False),
    "save_total_limit": (1, None, False, False),
    "warmup_steps": (0, None, False, False),
    "warmup_ratio": (0, 1, False, False),
    "weight_decay": (0, None, False, False),
    "max_grad_norm": (0, None, False, False),
    "adam_beta1": (0, 1, False, True),
    "adam_beta2": (0, 1, False, True),
    "adam_epsilon": (0, None, True, False),
    "seed": (0, 2**32 - 1, False, False),
    "data_seed": (0, 2**32 - 1, False, False),
    "dataloader_num_workers": (0, None, False, False),
    "val_split_ratio": (0, 1, False, True),
    "max_pixels": (1, None, False, False),
    "min_pixels": (1, None, False, False),
    "lora_r": (1, None, False, False),
    "lora_alpha": (0, None, True, False),
    "lora_dropout": (0, 1, False, True),
    "vllm_gpu_memory_utilization": (0, 1, True, False),
    "vllm_tensor_parallel_size": (1, None, False, False),
}


def check_flag_values(flags: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Refuse numbers out of range; returns ``flags``.

    Every float flag must be finite; the flags of :data:`RANGES` must also lie in their range, and ``--max_steps``
    is -1 (use the epochs) or at least 1.

    Raises:
        UserError: ``bad_argument``, naming the flag, the value and the range.
    """
    kinds = {action.dest: action.type for action in parser._actions if action.type in (int, float)}
    for name, value in vars(flags).items():
        if value is None or isinstance(value, bool):
            continue
        limits = RANGES.get(name)
        if limits is None and kinds.get(name) is float:
            limits = (None, None, False, False)  # any finite number
        problem = out_of_range(value, *limits) if limits is not None else None
        if problem:
            raise bad_argument(f"--{name}", problem, f"give --{name} a value {range_text(*limits)}")
    if getattr(flags, "max_steps", -1) not in (-1,) and isinstance(flags.max_steps, int) and flags.max_steps < 1:
        raise bad_argument("--max_steps", f"must be -1 (train for --num_train_epochs) or at least 1, got "
                           f"{flags.max_steps}", "leave --max_steps out, or give the number of optimizer steps")
    return flags
