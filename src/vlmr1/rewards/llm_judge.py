"""VLM-R1's ``llm`` accuracy method: an OpenAI-compatible chat server judges whether the answer means the gold.

Set up by environment, as in VLM-R1: ``OPENAI_API_BASE`` (e.g. ``http://localhost:11434/v1`` for a local Ollama),
``OPENAI_API_KEY`` (optional) and ``VLMR1_LLM_JUDGE_MODEL`` (default ``qwen2.5:7b``, the model VLM-R1 names).
Without ``OPENAI_API_BASE`` a run with ``llm`` rows stops before any model loads: VLM-R1 then calls
api.openai.com with a placeholder key and silently scores every answer by string equality.

The judge answers 1 or 0 (temperature 0); its reply is read as a number in [0, 1]. A call that fails (no reply within
``LLM_TIMEOUT_S``, an HTTP error, a reply that is not a number) scores by normalised exact match, as VLM-R1 falls back
to string equality, and is logged (rate-limited). Calls are made one completion at a time, in the reward's process.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Mapping
from typing import Any

from .accuracy import exact_match, register_accuracy_method
from .parsing import extract_last_number
from .registry import log_limited

DEFAULT_MODEL = "qwen2.5:7b"
LLM_TIMEOUT_S = 30.0
MAX_CHARS = 4000  # of each side sent to the judge

INSTRUCTION = ("You grade answers. Read the student's response, find its final answer and compare it with the "
               "correct solution. Reply with 1 if they mean the same, else 0. Reply with the number only.")


def check_judge() -> None:
    """Raise ValueError when no judge server is configured (called by ``validate_accuracy_method``)."""
    if not os.environ.get("OPENAI_API_BASE"):
        raise ValueError("accu_reward_method 'llm' needs a judge: set OPENAI_API_BASE to an OpenAI-compatible server "
                         "(e.g. http://localhost:11434/v1), optionally OPENAI_API_KEY and VLMR1_LLM_JUDGE_MODEL")


def ask_judge(pred: str, gold: str, timeout_s: float = LLM_TIMEOUT_S) -> float:
    """The judge's score of ``pred`` against ``gold``.

    Raises:
        OSError, ValueError: the server cannot be reached or its reply holds no number.
    """
    base = os.environ["OPENAI_API_BASE"].rstrip("/")
    body = {"model": os.environ.get("VLMR1_LLM_JUDGE_MODEL", DEFAULT_MODEL), "temperature": 0,
            "messages": [{"role": "system", "content": INSTRUCTION},
                         {"role": "user", "content": f"Student's response: {pred[-MAX_CHARS:]}\n"
                                                     f"Correct solution: {gold[:MAX_CHARS]}"}]}
    request = urllib.request.Request(f"{base}/chat/completions", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY', '')}"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        reply = json.loads(response.read())["choices"][0]["message"]["content"]
    score = extract_last_number(str(reply))
    if score is None:
        raise ValueError(f"the judge replied {reply!r:.80}, not a number")
    return min(max(score, 0.0), 1.0)


@register_accuracy_method("llm")
def llm_match(pred: str, gold: str, row: Mapping[str, Any] | None = None) -> float:
    """The judge's score (module docstring); normalised exact match when the judge cannot be asked."""
    if not os.environ.get("OPENAI_API_BASE"):
        log_limited("accuracy:llm-unset", "accu_reward_method 'llm' without OPENAI_API_BASE: exact match instead")
        return exact_match(pred, gold)
    try:
        return ask_judge(pred, gold)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        log_limited("accuracy:llm-failed", "the llm judge failed (%s: %s); exact match instead", type(e).__name__, e)
        return exact_match(pred, gold)


llm_match.precheck = check_judge
