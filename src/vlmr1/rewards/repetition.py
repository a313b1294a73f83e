"""The ``repetition`` reward: VLM-R1's n-gram repetition penalty, as the share of distinct n-grams, for any task.

* A detection list (a ```` ``` ```` fenced block, or a bare JSON list, of objects with ``bbox_2d`` and ``label``):
  the share of distinct objects among the listed ones (n = 1), so listing one box twice costs.
* Any other text: the share of distinct word 6-grams (lower-cased, whitespace-split); under 6 words, 1.0.

An empty completion scores 1.0. VLM-R1 returns the penalty -(1 - share) in [-1, 0]; vlmr1 returns 1 + that, the share,
in [0, 1] (a shift, which GRPO's group baseline cancels). Unlike VLM-R1 it does not try ``json_repair`` on a broken
list (it is then read as text) and does not stop the run on a list of non-objects.
"""

from __future__ import annotations

import json
from typing import Any

from .parsing import answer_or_text, load_json_answer
from .registry import per_sample, register_reward

TEXT_NGRAM = 6
FENCE = "```"


def _fenced_block(text: str) -> str | None:
    start = text.find(FENCE)
    end = text.find(FENCE, start + len(FENCE)) if start >= 0 else -1
    if end < 0:
        return None
    block = text[start + len(FENCE):end]
    return block[4:] if block.startswith("json") else block


def detection_items(text: str) -> list[str] | None:
    """The listed objects as comparable strings, when the text holds a detection list, else None."""
    block = _fenced_block(text)
    if block is None and "bbox_2d" not in text:
        return None
    value = load_json_answer(block if block is not None else answer_or_text(text))
    if not isinstance(value, list) or not value or not all(isinstance(item, dict) for item in value):
        return None
    items = [json.dumps([item["bbox_2d"], item["label"]], sort_keys=True, default=str)
             for item in value if "bbox_2d" in item and "label" in item]
    return items or None


def distinct_share(units: list) -> float:
    """Distinct units / units (1.0 for none)."""
    return len(set(units)) / len(units) if units else 1.0


@register_reward("repetition")
@per_sample
def repetition_reward(text: str, **row: Any) -> float:
    """Share of distinct objects (detection lists) or word 6-grams (text): 1.0 without repetition."""
    items = detection_items(text)
    if items is not None:
        return distinct_share(items)
    words = text.lower().split()
    return distinct_share(list(zip(*(words[i:] for i in range(TEXT_NGRAM)))))
