"""The ``length`` reward: VLM-R1's cosine length reward (Kimi/"Demystifying long CoT" style), usable with any task.

A correct completion (its row's ``accuracy`` >= ``CORRECT_AT``, 0.7 as in VLM-R1) is worth more the shorter it is; a
wrong one is worth less the longer it is. With L the completion's length in tokens (``completion_ids``, which TRL
passes; whitespace-separated words without them), capped at ``MAX_LENGTH``, and c = (1 - cos(pi L / MAX_LENGTH)) / 2
going from 0 to 1::

    correct: 1 - c / 3          (1 at L = 0, 2/3 at MAX_LENGTH)
    wrong:   1/3 - c / 3        (1/3 at L = 0, 0 at MAX_LENGTH)

That is VLM-R1's 1 -> 0.5 (correct) and 0 -> -0.5 (wrong), mapped onto [0, 1] by (v + 0.5) / 1.5: in a GRPO group
the shift cancels, so ``--reward_weights`` of 1.5 for ``length`` gives VLM-R1's advantages exactly. Two VLM-R1 bugs are
not copied: it overwrites the accuracy with 1.0 (every completion counts as correct, so longer is always worse) and
takes it from an OD-only score; and past 1024 tokens its cosine turns back up (a 2048-token answer scores like an
empty one).
"""

from __future__ import annotations

import math
from typing import Any

from .registry import per_sample, register_reward

MAX_LENGTH = 1024  # VLM-R1's cosine_max_len
CORRECT_AT = 0.7


def cosine_length_score(length: float, correct: bool, max_length: int = MAX_LENGTH) -> float:
    """The reward of a completion of ``length`` tokens (module docstring)."""
    c = (1.0 - math.cos(math.pi * min(max(length, 0.0), max_length) / max_length)) / 2.0
    return 1.0 - c / 3.0 if correct else (1.0 - c) / 3.0


@per_sample(name="length")
def _length_score(text: str, completion_length: Any = None, **row: Any) -> float:
    from vlmr1.tasks import row_accuracy  # tasks build on the rewards: looked up at call time

    length = completion_length if isinstance(completion_length, int) else len(text.split())
    return cosine_length_score(length, row_accuracy(text, row) >= CORRECT_AT)


@register_reward("length")
def length_reward(prompts=None, completions=None, completion_ids=None, **kwargs: Any) -> list[float]:
    """VLM-R1's cosine length reward: right answers gain by being short, wrong ones lose by being long; in [0, 1]."""
    lengths = None
    try:
        if completion_ids is not None and completions is not None and len(completion_ids) == len(completions):
            lengths = [len(ids) for ids in completion_ids]
    except TypeError:
        lengths = None
    kwargs.pop("completion_length", None)
    return _length_score(prompts=prompts, completions=completions, completion_length=lengths, **kwargs)


length_reward.scorer = _length_score.scorer  # the per-sample function (length in words), as per_sample rewards have
