"""VLM-R1's rewards and accuracy methods, case by case: (completion, gold, row) -> the score vlmr1 gives.

Each expected value is worked out by hand from VLM-R1's reward code (``grpo_jsonl.py``, ``vlm_modules/``). Where vlmr1
deliberately differs, the case names the difference (a row of README's "Where vlmr1 differs from VLM-R1" table), gives
VLM-R1's score, and asserts vlmr1's.
"""

import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from vlmr1.rewards import REWARD_REGISTRY
from vlmr1.rewards.math_equiv import math_equivalent

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
THINK = "<think>I look at the image.</think>"
DOG = {"bbox_2d": [10, 10, 50, 50], "label": "dog"}
CAT = {"bbox_2d": [60, 60, 90, 90], "label": "cat"}


def fenced(*objects):
    return "```json\n" + json.dumps(list(objects)) + "\n```"


def tagged(answer):
    return f"{THINK}<answer>{answer}</answer>"


class Case(NamedTuple):
    id: str
    reward: str
    completion: str
    gold: str
    expected: float
    row: dict[str, Any] = {}
    vlm_r1: float | None = None  # VLM-R1's score where it differs
    difference: str | None = None  # the README row that explains it


REC = {"task_type": "rec"}
OD = {"task_type": "od"}
BOX = "[100, 100, 300, 300]"
CASES = [
    # accuracy on REC rows: the IoU, whatever the text of the box (VLM-R1's model modules score IoU too)
    Case("rec-same-box-other-spacing", "accuracy", tagged("[100,100,300,300]"), BOX, 1.0, REC),
    Case("rec-iou-0.39", "accuracy", tagged("[150, 150, 350, 350]"), BOX, 22500 / 57500, REC),
    Case("rec-json-answer", "accuracy", tagged('{"bbox_2d": [100, 100, 300, 300], "label": "man"}'), BOX, 1.0, REC),
    Case("rec-gold-with-tags", "accuracy", tagged(BOX), f"<answer>{BOX}</answer>", 1.0, REC),
    Case("rec-method-does-not-text-match", "accuracy", tagged("[100,100,300,300]"), BOX, 1.0,
         {**REC, "accu_reward_method": "all_match"}),
    Case("rec-bbox-field-is-the-truth", "accuracy", tagged("[0, 0, 10, 10]"), BOX, 1.0, {**REC, "bbox": [0, 0, 10, 10]}),
    Case("rec-model-frame-mapped", "accuracy", tagged("[50, 25, 100, 50]"), "[100, 50, 200, 100]", 1.0,
         {**REC, "original_sizes": [[200, 100]], "frame_sizes": [[100, 50]]}),
    Case("rec-truncated-answer", "accuracy", f"{THINK}<answer>{BOX}", BOX, 0.0, REC),
    Case("rec-no-box", "accuracy", tagged("the man on the left"), BOX, 0.0, REC),
    Case("rec-untagged-answer", "accuracy", BOX, BOX, 1.0, REC, 0.0, "untagged answer"),
    Case("rec-hedged", "accuracy", tagged(f"{BOX} or [0, 0, 50, 50]"), BOX, 0.0, REC, 1.0, "hedged multi-box answer"),
    Case("rec-decimals", "accuracy", tagged("[100.5, 100, 300, 300]"), BOX, 0.9975, REC, 0.0,
         "decimal box coordinates"),
    Case("iou-method-any-task", "accuracy", tagged("[150, 150, 350, 350]"), BOX, 22500 / 57500,
         {"accu_reward_method": "iou"}),
    # rec_format (what --is_reward_customized_from_vlm_module swaps in for format)
    Case("rec-format-json", "rec_format", tagged('{"bbox_2d": [1, 2, 30, 40]}'), BOX, 1.0),
    Case("rec-format-no-box", "rec_format", tagged("the man"), BOX, 0.0),
    Case("rec-format-bare-list", "rec_format", tagged("[1, 2, 30, 40]"), BOX, 1.0, {}, 0.0, "`rec_format` box form"),
    Case("rec-format-text-around", "rec_format", "Sure. " + tagged('{"bbox_2d": [1, 2, 30, 40]}'), BOX, 0.0, {}, 1.0,
         "text around the layout"),
    # format
    Case("format-ok", "format", f"{THINK}\n<answer>b</answer>", "b", 1.0),
    Case("format-trailing-text", "format", tagged("b") + " done", "b", 0.0),
    Case("format-no-think", "format", "<answer>b</answer>", "b", 0.0),
    Case("format-two-answers", "format", tagged("b") + "<answer>c</answer>", "b", 0.0, {}, 1.0, "repeated tags"),
    # default: math-verify, then numbers, then option letters, then Levenshtein partial credit
    Case("default-math", "accuracy", tagged("\\frac{1}{2}"), "0.5", 1.0),
    Case("default-number-in-text", "accuracy", tagged("There are 3 cats."), "3", 1.0),
    Case("default-wrong-number", "accuracy", tagged("4"), "3", 0.0),
    Case("default-thousands", "accuracy", tagged("1,000"), "1000", 1.0),
    Case("default-same-text-number", "accuracy", tagged("10 apples"), "10 apples", 1.0),
    Case("default-wrong-number-in-text", "accuracy", tagged("11 apples"), "10 apples", 0.0, {}, 8 / 9,
         "wrong number in a text answer"),
    Case("default-choice", "accuracy", tagged("(B)"), "B", 1.0),
    Case("default-wrong-choice", "accuracy", tagged("C"), "B", 0.0),
    Case("default-partial-credit", "accuracy", tagged("a red car"), "the red car", 0.8),
    Case("default-case-and-period", "accuracy", tagged("Paris."), "paris", 1.0),
    Case("default-gold-with-tags", "accuracy", tagged("Paris"), "<answer> Paris </answer>", 1.0),
    Case("default-empty-answer", "accuracy", tagged(""), "Paris", 0.0),
    Case("default-unrelated", "accuracy", tagged("London"), "Paris", 0.0),
    Case("default-truncated", "accuracy", f"{THINK}<answer>Paris", "Paris", 0.0, {}, 10 / 53, "truncated answer"),
    # mcq
    Case("mcq-letter-and-text", "accuracy", tagged("(B) Paris"), "B", 1.0, {"accu_reward_method": "mcq"}),
    Case("mcq-phrase", "accuracy", tagged("The answer is B."), "B", 1.0, {"accu_reward_method": "mcq"}),
    Case("mcq-wrong", "accuracy", tagged("C"), "B", 0.0, {"accu_reward_method": "mcq"}),
    Case("mcq-last-answer", "accuracy", "<think>maybe <answer>A</answer></think><answer>B</answer>", "B", 1.0,
         {"accu_reward_method": "mcq"}, 0.0, "which answer counts"),
    # yes_no
    Case("yes-no-yes", "accuracy", tagged("Yes, it is."), "yes", 1.0, {"accu_reward_method": "yes_no"}),
    Case("yes-no-wrong", "accuracy", tagged("no"), "yes", 0.0, {"accu_reward_method": "yes_no"}),
    Case("yes-no-know", "accuracy", tagged("I don't know"), "no", 0.0, {"accu_reward_method": "yes_no"}, 1.0,
         "`no` inside `know`"),
    Case("yes-no-neither", "accuracy", tagged("perhaps"), "unclear", 0.0, {"accu_reward_method": "yes_no"}, 1.0,
         "neither side says yes or no"),
    # all_match
    Case("all-match-period-case", "accuracy", tagged("No Defect."), "no defect", 1.0, {"accu_reward_method": "all_match"}),
    Case("all-match-wrong", "accuracy", tagged("Navigation Logic Error"), "No Defect", 0.0,
         {"accu_reward_method": "all_match"}),
    Case("all-match-spaces", "accuracy", tagged("no   defect"), "No Defect", 1.0, {"accu_reward_method": "all_match"},
         0.0, "spaces inside an all_match answer"),
    # math, numeric
    Case("math-boxed", "accuracy", tagged("\\boxed{2}"), "2", 1.0, {"accu_reward_method": "math"}),
    Case("math-fraction", "accuracy", tagged("0.5"), "\\frac{1}{2}", 1.0, {"accu_reward_method": "math"}),
    Case("math-wrong", "accuracy", tagged("3"), "4", 0.0, {"accu_reward_method": "math"}),
    Case("numeric", "accuracy", tagged("3.0"), "3", 1.0, {"accu_reward_method": "numeric"}),
    # OD rows in VLM-R1's format: the objects are the gpt answer (a fenced JSON list, or None)
    Case("odlength-exact", "accuracy", tagged(fenced(DOG)), fenced(DOG), 1.0, {**OD, "accu_reward_method": "odLength"}),
    Case("odlength-padded", "accuracy", tagged(fenced(DOG, {**CAT, "label": "dog"})), fenced(DOG), 0.5,
         {**OD, "accu_reward_method": "odLength"}),
    Case("od-default-is-odlength", "accuracy", tagged(fenced(DOG, {**CAT, "label": "dog"})), fenced(DOG), 0.5, OD),
    Case("map-padded", "accuracy", tagged(fenced(DOG, {**CAT, "label": "dog"})), fenced(DOG), 1.0,
         {**OD, "accu_reward_method": "map"}),
    Case("od-ap50-iou-0.83", "accuracy", tagged(fenced({**DOG, "bbox_2d": [10, 10, 50, 58]})), fenced(DOG), 1.0,
         {**OD, "accu_reward_method": "od_ap50"}),
    Case("od-ap-iou-0.83", "accuracy", tagged(fenced({**DOG, "bbox_2d": [10, 10, 50, 58]})), fenced(DOG), 0.7,
         {**OD, "accu_reward_method": "od_ap"}),
    Case("od-none-none", "accuracy", tagged("None"), "None", 1.0, {**OD, "accu_reward_method": "od_ap"}),
    Case("od-none-gold-boxes-answered", "accuracy", tagged(fenced(DOG)), "None", 0.0, OD),
    Case("od-boxes-gold-none-answered", "accuracy", tagged("None"), fenced(DOG), 0.0, OD),
    Case("od-objects-column", "accuracy", tagged(fenced(DOG)), "[]", 1.0,
         {**OD, "objects": [{"bbox": [10, 10, 50, 50], "label": "dog"}]}),
    Case("od-od-length-reward", "od_length", tagged(fenced(DOG, {**CAT, "label": "dog"})), fenced(DOG), 0.5),
    Case("od-label-case", "accuracy", tagged(fenced({**DOG, "label": "Dog"})), fenced(DOG), 1.0, OD, 0.0,
         "OD label case"),
    Case("map-unfenced", "accuracy", tagged(json.dumps([DOG])), fenced(DOG), 1.0, {**OD, "accu_reward_method": "map"},
         0.0, "unfenced detection list"),
    Case("weighted-sum-exact", "accuracy", tagged(fenced(DOG)), fenced(DOG), 1.0,
         {**OD, "accu_reward_method": "weighted_sum"}),
    Case("weighted-sum-false-alarm", "accuracy", tagged(fenced(DOG, {**CAT, "label": "dog"})), fenced(DOG), 0.925,
         {**OD, "accu_reward_method": "weighted_sum"}),
    Case("weighted-sum-wrong-label", "accuracy", tagged(fenced({**DOG, "label": "cat"})), fenced(DOG), 0.3,
         {**OD, "accu_reward_method": "weighted_sum"}),
    Case("weighted-sum-missed", "accuracy", tagged(fenced(DOG)), fenced(DOG, CAT), 0.575,
         {**OD, "accu_reward_method": "weighted_sum"}),
    Case("weighted-sum-none", "accuracy", tagged("None"), "None", 1.0, {**OD, "accu_reward_method": "weighted_sum"}),
    # length: cosine in the completion's tokens, by correctness (the row's accuracy >= 0.7); VLM-R1's values v map to
    # (v + 0.5) / 1.5
    Case("length-correct-short", "length", tagged("Paris"), "Paris", 1.0, {"tokens": 0}),
    Case("length-correct-half", "length", tagged("Paris"), "Paris", 1 - 0.5 / 3, {"tokens": 512}),
    Case("length-correct-long", "length", tagged("Paris"), "Paris", 2 / 3, {"tokens": 1024}, 0.5,
         "length reward range"),
    Case("length-wrong-short", "length", tagged("London"), "Paris", 1 / 3, {"tokens": 0}),
    Case("length-wrong-half", "length", tagged("London"), "Paris", 0.5 / 3, {"tokens": 512}),
    Case("length-wrong-long", "length", tagged("London"), "Paris", 0.0, {"tokens": 1024}, 0.5,
         "length counts every answer correct"),
    Case("length-past-max", "length", tagged("Paris"), "Paris", 2 / 3, {"tokens": 2048}, 1.0,
         "length past 1024 tokens"),
    Case("length-rec-row", "length", tagged("[150, 150, 350, 350]"), BOX, 1 / 3, {**REC, "tokens": 0}),
    # repetition: the share of distinct word 6-grams (text) or objects (detection lists)
    Case("repetition-text", "repetition", "a b c d e f a b c d e f", "x", 6 / 7, {}, -1 / 7, "repetition range"),
    Case("repetition-loop", "repetition", " ".join(["go"] * 11), "x", 1 / 6),
    Case("repetition-short", "repetition", "one two three", "x", 1.0),
    Case("repetition-empty", "repetition", "", "x", 1.0),
    Case("repetition-duplicate-box", "repetition", tagged(fenced(DOG, DOG)), "x", 0.5),
    Case("repetition-distinct-boxes", "repetition", tagged(fenced(DOG, CAT)), "x", 1.0),
]


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    # math-verify imports sympy on first use; keep that out of the 1 s budget of a comparison
    math_equivalent("\\frac{1}{2}", "0.5")


def score(case: Case) -> float:
    row = dict(case.row)
    tokens = row.pop("tokens", None)
    columns = {key: [value] for key, value in row.items()}
    if tokens is not None:
        columns["completion_ids"] = [[0] * tokens]
    return REWARD_REGISTRY[case.reward](completions=[case.completion], solution=[case.gold], **columns)[0]


def test_there_are_enough_cases():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_reward(case):
    assert score(case) == pytest.approx(case.expected, abs=1e-3)


@pytest.mark.parametrize("case", [c for c in CASES if c.difference], ids=lambda c: c.id)
def test_each_difference_is_named_in_the_readme(case):
    assert case.vlm_r1 is not None and case.vlm_r1 != pytest.approx(case.expected, abs=1e-3)
    assert case.difference in README, f"README's differences table has no row for {case.difference!r}"
