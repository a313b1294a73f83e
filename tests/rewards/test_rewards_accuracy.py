"""Tests for the ``accuracy`` reward and its comparison methods."""

import functools
import logging

import pytest

from vlmr1.rewards import (
    ACCURACY_METHODS,
    accuracy_reward,
    list_accuracy_methods,
    register_accuracy_method,
    score_accuracy,
    validate_accuracy_method,
)
from vlmr1.rewards.accuracy import numeric_match

THINK = "<think>\nLet me look at the image.\nThere are several objects.\n</think>\n"


def wrap(answer):
    return f"{THINK}<answer>{answer}</answer>"


def acc(completion, solution, method=None):
    return accuracy_reward(completions=[completion], solution=[solution], accu_reward_method=[method])[0]


def test_builtin_methods_registered():
    assert {"default", "mcq", "yes_no", "all_match", "numeric", "math"} <= set(list_accuracy_methods())


@pytest.mark.parametrize(
    "answer,solution",
    [
        ("Paris", "paris"),
        ("  The   red car. ", "the red car"),
        ("3", "3.0"),
        ("1,000", "1000"),
        ("Paris", "<answer>Paris</answer>"),
        ("0.5", "1/2"),
    ],
)
def test_default_positive(answer, solution):
    assert acc(wrap(answer), solution) == 1.0
    assert acc(wrap(answer), solution, "default") == 1.0


@pytest.mark.parametrize("answer,solution", [("London", "Paris"), ("3", "4"), ("", "Paris"), ("Paris", "")])
def test_default_negative(answer, solution):
    assert acc(wrap(answer), solution) == 0.0


def test_default_without_answer_tags_uses_whole_text():
    assert acc("  Paris. ", "Paris") == 1.0
    assert acc("<think>Paris</think> London", "Paris") < 0.5  # the whole text is the answer: partial credit only


def test_last_answer_wins():
    text = "<think>maybe <answer>London</answer></think><answer>Paris</answer>"
    assert acc(text, "Paris") == 1.0


@pytest.mark.parametrize(
    "answer,solution,expected",
    [
        ("B", "B", 1.0),
        ("(B)", "B", 1.0),
        ("b", "(B) Paris", 1.0),
        ("B. Paris", "B", 1.0),
        ("The answer is B", "B.", 1.0),
        ("C", "B", 0.0),
        ("Paris", "B", 0.0),
        ("the answer is a cat", "A", 0.0),
    ],
)
def test_mcq(answer, solution, expected):
    assert acc(wrap(answer), solution, "mcq") == expected


@pytest.mark.parametrize(
    "answer,solution,expected",
    [
        ("Yes", "yes", 1.0),
        ("yes.", "Yes", 1.0),
        ("No, there is none.", "no", 1.0),
        ("yes", "no", 0.0),
        ("maybe", "yes", 0.0),
        ("yesterday", "yes", 0.0),
    ],
)
def test_yes_no(answer, solution, expected):
    assert acc(wrap(answer), solution, "yes_no") == expected


@pytest.mark.parametrize(
    "answer,solution,expected",
    [
        ("no defect", "No Defect", 1.0),
        ("no   defect", "no defect", 1.0),
        ("no defect.", "no defect", 1.0),  # trailing periods dropped, as VLM-R1's all_match
        ("no defect!", "no defect", 0.0),
        ("defect", "no defect", 0.0),
        ("no defect found", "no defect", 0.0),
    ],
)
def test_all_match(answer, solution, expected):
    assert acc(wrap(answer), solution, "all_match") == expected


@pytest.mark.parametrize(
    "answer,solution,expected",
    [
        ("3", "3", 1.0),
        ("There are 3 cats.", "3", 1.0),
        ("3.0000001", "3", 1.0),
        ("3.01", "3", 0.0),
        ("1,234", "1234", 1.0),
        ("none", "3", 0.0),
        ("3", "three", 0.0),
        ("nan", "nan", 0.0),
    ],
)
def test_numeric(answer, solution, expected):
    assert acc(wrap(answer), solution, "numeric") == expected


def test_numeric_tolerance_is_configurable():
    register_accuracy_method("numeric_test_1pct", functools.partial(numeric_match, rel_tol=0.01), overwrite=True)
    try:
        assert acc(wrap("3.01"), "3", "numeric_test_1pct") == 1.0
        assert acc(wrap("3.1"), "3", "numeric_test_1pct") == 0.0
    finally:
        ACCURACY_METHODS.pop("numeric_test_1pct")


@pytest.mark.parametrize(
    "answer,solution,expected",
    [
        ("\\frac{1}{2}", "0.5", 1.0),
        ("0.5", "\\frac{1}{2}", 1.0),
        ("$\\frac{1}{2}$", "$0.5$", 1.0),
        ("The result is \\boxed{\\frac{1}{2}}.", "0.5", 1.0),
        ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", 1.0),
        ("x = 3", "3", 1.0),
        ("\\sqrt{8}", "2\\sqrt{2}", 1.0),  # bare LaTeX read as a whole, not as its leading "2"
        ("2", "2\\sqrt{2}", 0.0),
        ("so x = \\frac{1}{2} in the end", "\\frac{1}{2}", 1.0),
        ("\\pi/2", "\\frac{\\pi}{2}", 1.0),
        ("\\frac{1}{3}", "0.5", 0.0),
        ("no idea", "0.5", 0.0),
        ("B", "B", 1.0),  # gold not parseable as math: falls back to default matching
    ],
)
def test_math(answer, solution, expected):
    assert acc(wrap(answer), solution, "math") == expected


def test_mixed_methods_in_one_batch():
    completions = [
        wrap("(B)"),
        [{"role": "assistant", "content": wrap("Yes")}],
        wrap("\\frac{1}{2}"),
        wrap("no defect"),
        wrap("Paris"),
        wrap("Paris"),
        wrap("7 apples"),
    ]
    solutions = ["B", "<answer>yes</answer>", "0.5", "No defect", "paris", "paris", "7"]
    methods = ["mcq", "yes_no", "math", "all_match", None, "", "numeric"]
    rewards = accuracy_reward(
        prompts=["p"] * 7,
        completions=completions,
        completion_ids=[[1]] * 7,
        solution=solutions,
        accu_reward_method=methods,
        task_type=["vqa"] * 7,
        trainer_state=None,
        log_extra=lambda *a, **k: None,
        log_metric=lambda *a, **k: None,
    )
    assert rewards == [1.0] * 7
    # Same answers, methods rotated: most comparisons must now fail.
    rotated = accuracy_reward(completions=completions, solution=solutions, accu_reward_method=methods[1:] + methods[:1])
    assert rotated != [1.0] * 7


def test_missing_method_column_means_default():
    assert accuracy_reward(completions=[wrap("Paris")], solution=["paris"]) == [1.0]


def test_missing_solution_scores_zero():
    assert accuracy_reward(completions=[wrap("Paris")]) == [0.0]
    assert accuracy_reward(completions=[wrap("Paris")], solution=[None]) == [0.0]


def test_non_string_solution():
    assert accuracy_reward(completions=[wrap("3")], solution=[3], accu_reward_method=["numeric"]) == [1.0]


def test_unknown_method_scores_zero_and_logs(caplog):
    with caplog.at_level(logging.WARNING, logger="vlmr1.rewards.registry"):
        assert acc(wrap("Paris"), "Paris", "no_such_method_xyz") == 0.0
    assert "no_such_method_xyz" in caplog.text


def test_validate_accuracy_method():
    assert validate_accuracy_method(None) == "default"
    assert validate_accuracy_method("") == "default"
    assert validate_accuracy_method(" MCQ ") == "mcq"
    with pytest.raises(ValueError, match="no_such_method.*mcq"):
        validate_accuracy_method("no_such_method")


def test_custom_method_receives_row_columns():
    seen = {}

    def by_task(pred, gold, row):
        seen.update(row)
        return 1.0 if row["task_type"] == "gui" else 0.0

    register_accuracy_method("test_by_task", by_task, overwrite=True)
    try:
        out = accuracy_reward(
            completions=[wrap("x"), wrap("x")],
            solution=["y", "y"],
            accu_reward_method=["test_by_task", "test_by_task"],
            task_type=["gui", "vqa"],  # free-text tasks: the row's method decides (a rec row scores IoU)
            image_size=[(640, 480), (10, 10)],
        )
        assert out == [1.0, 0.0]
        assert seen["image_size"] == (10, 10) and seen["solution"] == "y"
    finally:
        ACCURACY_METHODS.pop("test_by_task")


def test_register_method_duplicate_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register_accuracy_method("default", lambda p, g, r: 1.0)


def test_score_accuracy_direct():
    assert score_accuracy(wrap("B"), "B", "mcq") == 1.0
    assert score_accuracy(wrap("B"), None, "mcq") == 0.0
