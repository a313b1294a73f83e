"""Reward functions for GRPO training, resolved by name from :data:`REWARD_REGISTRY`.

Importing this package registers the built-in rewards (``format``, ``accuracy``). Resolve the
functions to hand to TRL's ``GRPOTrainer(reward_funcs=...)`` with::

    from vlmr1.rewards import get_reward_functions
    reward_funcs = get_reward_functions("format accuracy mypkg.my_rewards:length_penalty")

Write new rewards as per-sample scorers wrapped with :func:`per_sample`, which enforces the contract
that a reward returns a float in [0, 1] for any output and never raises.
"""

from . import accuracy as _accuracy  # noqa: F401  (registers "accuracy")
from . import box as _box  # noqa: F401  (registers "rec_iou", "rec_accuracy")
from . import detection as _detection  # noqa: F401  (registers "od_ap", "od_ap50", "od_length")
from . import format as _format  # noqa: F401  (registers "format")
from . import mask as _mask  # noqa: F401  (registers "seg_iou", "seg_format")
from .accuracy import (
    ACCURACY_METHODS,
    accuracy_reward,
    list_accuracy_methods,
    register_accuracy_method,
    score_accuracy,
    validate_accuracy_method,
)
from .format import format_reward, is_think_answer_format
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
    "list_accuracy_methods",
    "list_rewards",
    "per_sample",
    "register_accuracy_method",
    "register_reward",
    "score_accuracy",
    "validate_accuracy_method",
]
