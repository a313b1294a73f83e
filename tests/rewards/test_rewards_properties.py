"""Property tests: every registered reward returns floats in [0, 1], fast, for any text.

Profile ``vlmr1-rewards`` (200 examples) by default; ``HYPOTHESIS_PROFILE=nightly`` runs 10,000.
Inputs go up to 100 KB, built by repeating generated fragments (tags, numbers, LaTeX, options,
arbitrary unicode) so the adversarial structure survives at size.
"""

import math
import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlmr1.rewards import REWARD_REGISTRY, list_accuracy_methods

PROFILE = settings.get_profile(
    "vlmr1-rewards-nightly" if os.environ.get("HYPOTHESIS_PROFILE") == "nightly" else "vlmr1-rewards"
)
MAX_CHARS = 100_000
# Per completion: the math budget (math_equiv.MATH_TIMEOUT_S = 1 s) plus slack for a slow CI machine.
TIME_BOUND_S = 1.5

FRAGMENTS = [
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "<answer",
    "answer is ",
    "Answer: ",
    "option ",
    "(B)",
    "B.",
    "yes",
    "no",
    "Yes,",
    "\\boxed{",
    "\\frac{1}{2}",
    "}",
    "{",
    "$",
    "\\(",
    "\\[",
    "^",
    "_",
    "1e999",
    "nan",
    "inf",
    "-0",
    "1,234.5",
    "3/0",
    "0.5",
    "%",
    " ",
    "\n",
    "\t",
    "\u0000",
    "\u202e",
    "𝔘",
]

fragment_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=20), max_size=40).map("".join)
texts = st.one_of(
    st.text(max_size=2000),
    fragment_text,
    # Repeat a generated piece up to 100 KB: hypothesis cannot draw 100 KB of choices directly.
    st.builds(lambda piece, n: (piece * n)[:MAX_CHARS], fragment_text.filter(bool), st.integers(1, MAX_CHARS)),
)
methods = st.sampled_from([*list_accuracy_methods(), None, "", "not_a_method"])


def assert_rewards_ok(name, out, n):
    assert isinstance(out, list) and len(out) == n, name
    for value in out:
        assert isinstance(value, float) and not math.isnan(value) and 0.0 <= value <= 1.0, (name, value)


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    # First math-verify call imports sympy/latex2sympy; keep that out of the time bound.
    REWARD_REGISTRY["accuracy"](completions=["\\frac{1}{2}"], solution=["0.5"], accu_reward_method=["math"])


@settings(PROFILE)
@given(text=texts, solution=texts, method=methods)
def test_every_reward_is_bounded_and_fast(text, solution, method):
    completions = [text, [{"role": "assistant", "content": text}], f"<think>{text}</think><answer>{text}</answer>"]
    n = len(completions)
    for name, fn in REWARD_REGISTRY.items():
        start = time.perf_counter()
        out = fn(
            prompts=["prompt"] * n,
            completions=completions,
            completion_ids=[[0]] * n,
            solution=[solution, text, "0.5"],
            accu_reward_method=[method] * n,
            task_type=["vqa"] * n,
            trainer_state=None,
            log_extra=None,
            log_metric=None,
        )
        elapsed = time.perf_counter() - start
        assert_rewards_ok(name, out, n)
        assert elapsed < TIME_BOUND_S * n, f"{name} took {elapsed:.2f}s for {n} completions of {len(text)} chars"


@settings(PROFILE)
@given(text=texts)
def test_rewards_survive_missing_columns(text):
    for name, fn in REWARD_REGISTRY.items():
        assert_rewards_ok(name, fn(completions=[text]), 1)
