"""Tests for vlmr1.rewards.parsing: tag extraction, numbers, options, yes/no."""

import pytest

from vlmr1.rewards.parsing import (
    answer_or_text,
    extract_answer,
    extract_choice,
    extract_last_number,
    extract_think,
    extract_yes_no,
    normalize_text,
    parse_number,
)


def test_extract_answer_last_pair_wins_and_strips():
    text = "<think>I will write <answer>draft</answer> later</think>\n<answer>\n  final \n</answer>"
    assert extract_answer(text) == "final"


def test_extract_answer_needs_complete_pair():
    assert extract_answer("<answer>unclosed") is None
    assert extract_answer("closed only</answer>") is None
    assert extract_answer("no tags") is None
    assert extract_answer("<answer></answer>") == ""


def test_extract_think_multiline():
    assert extract_think("<think>\nline 1\nline 2\n</think><answer>x</answer>") == "line 1\nline 2"
    assert extract_think("no think") is None


def test_answer_or_text_falls_back_to_whole_text():
    assert answer_or_text("  42 \n") == "42"
    assert answer_or_text("<answer> B </answer>") == "B"
    assert answer_or_text(None) == ""
    assert answer_or_text(7) == "7"


def test_answer_or_text_drops_glm_box_markers():
    # GLM-4.1V-Thinking wraps its final answer in <|begin_of_box|>...<|end_of_box|>, inside our tags or alone
    assert answer_or_text("<think>t</think><answer><|begin_of_box|>B<|end_of_box|></answer>") == "B"
    assert answer_or_text("<think>so 3</think><|begin_of_box|> 3 <|end_of_box|>") == "3"
    assert answer_or_text("<|begin_of_box|>1<|end_of_box|> then <|begin_of_box|>2<|end_of_box|>") == "2"
    assert answer_or_text("unclosed <|begin_of_box|>[1, 2, 3, 4]") == "unclosed [1, 2, 3, 4]"


def test_normalize_text():
    assert normalize_text("  The   Cat. ") == "the cat"
    assert normalize_text('"Paris"!') == "paris"
    assert normalize_text("ＡＢＣ") == "abc"  # full-width via NFKC


@pytest.mark.parametrize(
    "text,value",
    [
        ("42", 42.0),
        ("-3.5", -3.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("1,234.5", 1234.5),
        ("50%", 50.0),
        ("$12", 12.0),
        ("1/2", 0.5),
        (" 7. ", 7.0),
        ("+2", 2.0),
    ],
)
def test_parse_number_accepts(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize(
    "text", ["", "nan", "inf", "-inf", "1e999", "1/0", "12,34", "abc", "3 apples", "1" * 100, None]
)
def test_parse_number_rejects(text):
    assert parse_number(text) is None


def test_extract_last_number():
    assert extract_last_number("There are 3 cats and 12 dogs.") == 12.0
    assert extract_last_number("Total: 1,234 items") == 1234.0
    assert extract_last_number("version v2 of x3") is None  # digits inside words are not numbers
    assert extract_last_number("none") is None


@pytest.mark.parametrize(
    "text,letter",
    [
        ("B", "B"),
        ("b", "B"),
        ("(B)", "B"),
        ("(c)", "C"),
        ("[D].", "D"),
        ("B.", "B"),
        ("B. Paris", "B"),
        ("(B) Paris", "B"),
        ("B) Paris", "B"),
        ("The answer is B", "B"),
        ("The answer is B because x", "B"),
        ("Answer: (c)", "C"),
        ("option D", "D"),
        ("I think (A) is right", "A"),
    ],
)
def test_extract_choice(text, letter):
    assert extract_choice(text) == letter


@pytest.mark.parametrize("text", ["the answer is a cat", "Paris", "", "answers vary", "12"])
def test_extract_choice_none(text):
    assert extract_choice(text) is None


@pytest.mark.parametrize(
    "text,yn",
    [
        ("Yes", "yes"),
        ("no.", "no"),
        ("No, there is a dog", "no"),
        ("There is no car, so yes", "yes"),
        ("**Yes**", "yes"),
        ("yesterday", None),
        ("nope", None),
        ("", None),
    ],
)
def test_extract_yes_no(text, yn):
    assert extract_yes_no(text) == yn
