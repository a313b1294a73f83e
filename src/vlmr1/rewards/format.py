"""The ``format`` reward: is the completion exactly ``<think>...</think><answer>...</answer>``?

Precise rule (tags are case-sensitive):

* after stripping leading/trailing whitespace the text starts with ``<think>`` and ends with
  ``</answer>``;
* ``<think>``, ``</think>``, ``<answer>`` and ``</answer>`` each occur exactly once, in that order;
* only whitespace (newlines included) lies between ``</think>`` and ``<answer>``;
* the contents of both blocks are free (any characters, multi-line, possibly empty).

Anything else -- missing, repeated or nested tags, text before ``<think>``, between the blocks or
after ``</answer>`` -- scores 0.0. Implemented with ``str`` searches, so it is linear in length.
"""

from __future__ import annotations

from .parsing import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN
from .registry import per_sample, register_reward

_TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)


def is_think_answer_format(text: str) -> bool:
    """Check the R1 ``<think>...</think> <answer>...</answer>`` layout described in the module doc.

    Args:
        text: Completion text.

    Returns:
        True iff the text has exactly that layout.
    """
    if not isinstance(text, str):
        return False
    s = text.strip()
    if not (s.startswith(THINK_OPEN) and s.endswith(ANSWER_CLOSE)):
        return False
    if any(s.count(tag) != 1 for tag in _TAGS):
        return False
    think_close = s.find(THINK_CLOSE)
    answer_open = s.find(ANSWER_OPEN)
    if not (len(THINK_OPEN) <= think_close < answer_open <= len(s) - len(ANSWER_OPEN) - len(ANSWER_CLOSE)):
        return False
    return not s[think_close + len(THINK_CLOSE) : answer_open].strip()


@register_reward("format")
@per_sample
def format_reward(text: str, **row: object) -> float:
    """Score 1.0 when ``text`` follows the think/answer format, else 0.0.

    Args:
        text: Completion text.
        **row: Dataset columns of this sample (unused).

    Returns:
        1.0 or 0.0.
    """
    return 1.0 if is_think_answer_format(text) else 0.0
