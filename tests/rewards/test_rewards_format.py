"""Tests for the ``format`` reward."""

import pytest

from vlmr1.rewards import format_reward, is_think_answer_format


@pytest.mark.parametrize(
    "text",
    [
        "<think>reason</think><answer>42</answer>",
        "<think>\nstep 1\nstep 2\n</think>\n\n<answer>\n42\n</answer>\n",
        "  <think>a</think> <answer>b</answer>  ",
        "<think></think><answer></answer>",  # contents are free, empty included
        "<think>x < y and a > b</think><answer>\\frac{1}{2}</answer>",
    ],
)
def test_format_accepts(text):
    assert is_think_answer_format(text)
    assert format_reward(completions=[text]) == [1.0]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "42",
        "<think>a</think>",
        "<answer>b</answer>",
        "<answer>b</answer><think>a</think>",  # wrong order
        "preface <think>a</think><answer>b</answer>",  # text before
        "<think>a</think><answer>b</answer> trailing",  # text after
        "<think>a</think> between <answer>b</answer>",  # text between
        "<think>a</think><answer>b</answer><answer>c</answer>",  # two answers
        "<think>a<think>b</think><answer>c</answer>",  # two think openers
        "<think>a</think><answer>b",  # truncated
        "<THINK>a</THINK><ANSWER>b</ANSWER>",  # tags are case-sensitive
        "<think>a<answer>b</answer></think>",  # nested
        "<think>a</think><answer>b</think></answer>",
    ],
)
def test_format_rejects(text):
    assert not is_think_answer_format(text)
    assert format_reward(completions=[text]) == [0.0]


def test_format_message_list_and_string_agree():
    text = "<think>a</think><answer>b</answer>"
    convo = [{"role": "assistant", "content": text}]
    blocks = [{"role": "assistant", "content": [{"type": "text", "text": text}]}]
    assert format_reward(completions=[text, convo, blocks, [{"role": "assistant", "content": "b"}]]) == [
        1.0,
        1.0,
        1.0,
        0.0,
    ]


def test_format_reasoning_field_is_put_back():
    msg = [{"role": "assistant", "reasoning_content": "thinking", "content": "<answer>b</answer>"}]
    assert format_reward(completions=[msg]) == [1.0]
