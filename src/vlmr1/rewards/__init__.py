"""Reward functions for GRPO training, resolved by name from :data:`REWARD_REGISTRY`.

This package holds the rewards any task can use (``format``, ``accuracy`` and its methods), the text helpers they
share, and the registry. A task's own rewards (``rec_iou``, ``seg_iou``, ``od_ap``, ...) live in its module under
``vlmr1.tasks`` and are registered with the task. Resolve the functions for TRL's ``GRPOTrainer(reward_funcs=...)``::

    from vlmr1.rewards import get_reward_functions
    reward_funcs = get_reward_functions("format accuracy mypkg.my_rewards:length_penalty")

Write new rewards as per-sample scorers wrapped with :func:`per_sample`, which enforces the contract
that a reward returns a float in [0, 1] for any output and never raises.
"""

from . import llm_judge  # noqa: F401 - registers the ``llm`` accuracy method
from .accuracy import (
    ACCURACY_METHODS,
    accuracy_reward,
    list_accuracy_methods,
    register_accuracy_method,
    score_accuracy,
    validate_accuracy_method,
)
from .format import format_reward, is_think_answer_format
from .length import length_reward
from .parsing import answer_or_text, extract_answer, extract_think
from .registry import (
    REWARD_REGISTRY,
    completion_text,
    get_reward_function,
    get_reward_functions,
    list_rewards,
    per_sample,
    register_reward,
)
from .repetition import repetition_reward

__all__ = [
    "ACCURACY_METHODS",
    "REWARD_REGISTRY",
    "accuracy_reward",
    "answer_or_text",
    "completion_text",
    "extract_answer",
    "extract_think",
    "format_reward",
    "get_reward_function",
    "get_reward_functions",
    "is_think_answer_format",
    "length_reward",
    "list_accuracy_methods",
    "list_rewards",
    "per_sample",
    "register_accuracy_method",
    "register_reward",
    "repetition_reward",
    "score_accuracy",
    "validate_accuracy_method",
]
