"""The ``rec`` task: box parsing, model frame -> original pixels, the rewards, metrics, checks and drawing, against
hand-computed values."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlmr1.geometry import is_valid_box
from vlmr1.rewards import get_reward_functions
from vlmr1.tasks import get_task
from vlmr1.tasks.rec import parse_box, predicted_box
from vlmr1.tasks.rec import rec_accuracy_reward as rec_accuracy
from vlmr1.tasks.rec import rec_iou_reward as rec_iou

ROW = dict(bbox=[0, 0, 10, 10], original_sizes=[[100, 100]], frame_sizes=[[50, 50]], solution="[0, 0, 10, 10]")


def answer(box):
    return f"<think>t</think><answer>{box}</answer>"


def test_template_keeps_the_image_first_and_asks_for_a_box():
    task = get_task("rec")
    text = task.format_question("<image>the man in red")
    assert text.startswith("<image>Please provide the bounding box")
    assert "the man in red" in text and "[x1, y1, x2, y2]" in text and "<think>" in text
    assert text.count("<image>") == 1
    assert [f.__name__ for f in get_reward_functions(list(task.default_rewards))] == ["rec_iou", "format"]


def test_sample_metrics_hand_computed():
    task = get_task("rec")
    # Frame 50x50 over a 100x100 image: [0, 0, 5, 5] -> [0, 0, 10, 10].
    assert task.sample_metrics(answer("[0, 0, 5, 5]"), ROW) == {"iou": pytest.approx(1.0), "acc@0.5": 1.0,
                                                                "parsed": 1.0}
    # [0, 0, 5, 2.5] -> [0, 0, 10, 5]: IoU 0.5.
    assert task.sample_metrics(answer("[0, 0, 5, 2.5]"), ROW)["iou"] == pytest.approx(0.5)
    assert task.sample_metrics(answer("somewhere left"), ROW) == {"iou": 0.0, "acc@0.5": 0.0, "parsed": 0.0}
    assert task.sample_metrics(answer("[0, 0, 5, 5]"), dict(ROW, bbox=[1, 1], solution=None))["parsed"] == 0.0


def test_file_metrics():
    task = get_task("rec")
    texts = [answer("[0, 0, 5, 5]"), answer("[0, 0, 5, 2.5]"), answer("[2.5, 0, 7.5, 5]"), "no answer"]
    # IoUs: 1, 0.5, 1/3 (half-shifted), 0 (unparsed).
    metrics = task.aggregate_metrics([task.sample_metrics(t, ROW) for t in texts])
    assert metrics["acc@0.5"] == pytest.approx(2 / 4)
    assert metrics["mean_iou"] == pytest.approx((1 + 0.5 + 1 / 3 + 0) / 4)
    assert metrics["parse_rate"] == pytest.approx(3 / 4)
    assert task.aggregate_metrics([])["num_samples"] == 0


def score(fn, text, **row):
    """Call a batch reward the way TRL does, for one completion."""
    columns = {k: [v] for k, v in row.items()}
    return fn(prompts=["p"], completions=[text], completion_ids=[[0]], trainer_state=None, log_extra=None,
              log_metric=None, **columns)[0]


@pytest.mark.parametrize("text, expected", [
    ("[10, 20, 30, 40]", [10, 20, 30, 40]),
    ("[10.5,20,30,40.25]", [10.5, 20, 30, 40.25]),
    ('{"bbox_2d": [1, 2, 3, 4], "label": "man 2"}', [1, 2, 3, 4]),
    ('[{"bbox_2d": [1, 2, 3, 4], "label": "the dog"}]', [1, 2, 3, 4]),
    ('```json\n[{"bbox_2d": [1, 2, 3, 4]}]\n```', [1, 2, 3, 4]),
    ("The box is [10, 20, 30, 40].", [10, 20, 30, 40]),
    ("(10, 20, 30, 40)", [10, 20, 30, 40]),
    ("x1=10 y1=20 x2=30 y2=40", [10, 20, 30, 40]),  # exactly four numbers: unambiguous
    ("(10,20),(30,40)", [10, 20, 30, 40]),
])
def test_parse_box_accepted_forms(text, expected):
    assert parse_box(text) == expected


@pytest.mark.parametrize("text", [
    "", "no box", "[1, 2, 3]", "1 2 3 4 5", "[1, 2, 3, 4] or [5, 6, 7, 8]",
    '[{"bbox_2d": [1, 2, 3, 4]}, {"bbox_2d": [5, 6, 7, 8]}]', '{"label": "dog"}', "[" * 50_000,
    '{"bbox_2d": [1, 2, true, 4]}',
])
def test_parse_box_rejects_missing_or_ambiguous(text):
    assert parse_box(text) is None


@pytest.mark.parametrize("text", [
    "<answer><ref>the dog</ref><box>[[250, 500, 500, 750]]</box></answer>",  # InternVL's grounding format
    "<answer>[[250, 500, 500, 750]]</answer>",
    "<answer><|begin_of_box|>[250, 500, 500, 750]<|end_of_box|></answer>",  # GLM-4.1V's answer box
    "<think>the dog is lower left</think><|begin_of_box|>[250, 500, 500, 750]<|end_of_box|>",  # GLM, no tags
])
def test_internvl_and_glm_answers_read_on_the_0_1000_grid(text):
    # both families answer on a 0-1000 grid: on a 640x480 image [250, 500, 500, 750] is [160, 240, 320, 360]
    row = dict(bbox=[160, 240, 320, 360], original_sizes=[[640, 480]], frame_sizes=[[1000, 1000]])
    assert predicted_box(text, row) == pytest.approx([160, 240, 320, 360])
    assert score(rec_iou, text, **row) == pytest.approx(1.0)


def test_resized_pixel_frame_maps_to_original_hand_computed():
    # Qwen2.5-VL style: a 200x100 image seen as 112x56 -> sx = sy = 200/112.
    row = dict(bbox=[50, 25, 150, 75], original_sizes=[[200, 100]], frame_sizes=[[112, 56]])
    assert score(rec_iou, answer("[28, 14, 84, 42]"), **row) == pytest.approx(1.0)
    assert predicted_box(answer("[28, 14, 84, 42]"), row) == pytest.approx([50, 25, 150, 75])


def test_norm1000_frame_maps_to_original_hand_computed():
    # Qwen2-VL/Qwen3-VL style: 0-1000 grid over a 640x480 image: [250, 500, 500, 750] -> [160, 240, 320, 360].
    row = dict(bbox=[160, 240, 320, 360], original_sizes=[[640, 480]], frame_sizes=[[1000, 1000]])
    assert score(rec_iou, answer("[250, 500, 500, 750]"), **row) == pytest.approx(1.0)
    # Read as original pixels instead, the same numbers would be another box: [250,500,500,750] vs gt -> IoU 0.
    assert score(rec_iou, answer("[250, 500, 500, 750]"), bbox=row["bbox"], original_sizes=[[640, 480]]) == 0.0


def test_iou_and_accuracy_hand_computed():
    row = dict(bbox=[0, 0, 10, 10], original_sizes=[[100, 100]], frame_sizes=[[100, 100]])
    # Shifted by half: intersection 50, union 150.
    assert score(rec_iou, answer("[5, 0, 15, 10]"), **row) == pytest.approx(1 / 3)
    assert score(rec_accuracy, answer("[5, 0, 15, 10]"), **row) == 0.0
    # Half the box: intersection 50, union 100 -> IoU exactly 0.5 counts as correct (>=).
    assert score(rec_iou, answer("[0, 0, 10, 5]"), **row) == pytest.approx(0.5)
    assert score(rec_accuracy, answer("[0, 0, 10, 5]"), **row) == 1.0
    assert score(rec_iou, answer("[50, 50, 60, 60]"), **row) == 0.0


def test_solution_is_the_fallback_ground_truth():
    assert score(rec_iou, answer("[0, 0, 10, 10]"), solution="[0, 0, 10, 20]",
                 original_sizes=[[100, 100]]) == pytest.approx(0.5)


@pytest.mark.parametrize("box_text", [
    "[10, 10, 10, 20]",        # zero width
    "[20, 10, 10, 20]",        # swapped corners
    "[NaN, 0, 10, 10]",        # JSON NaN
    "[1e999, 0, 10, 10]",      # overflows to inf
    "[0, 0, 1e6, 50]",         # huge: far beyond the 100x100 frame
    "[-150, 0, 50, 50]",       # more than one frame width to the left
    "[1" + "0" * 400 + ", 0, 10, 10]",  # integer beyond float range
    "the man on the left",
])
def test_invalid_boxes_score_zero(box_text):
    row = dict(bbox=[0, 0, 50, 50], original_sizes=[[100, 100]], frame_sizes=[[100, 100]])
    assert score(rec_iou, answer(box_text), **row) == 0.0
    assert score(rec_accuracy, answer(box_text), **row) == 0.0


def test_box_partly_outside_the_frame_is_scored_not_clipped():
    row = dict(bbox=[0, 0, 100, 100], original_sizes=[[100, 100]], frame_sizes=[[100, 100]])
    # [-50, 0, 150, 100] has area 20000; intersection 10000 -> 0.5 (clipping would give 1.0).
    assert score(rec_iou, answer("[-50, 0, 150, 100]"), **row) == pytest.approx(0.5)
    assert is_valid_box([-100, 0, 200, 100], (100, 100)) and not is_valid_box([-101, 0, 200, 100], (100, 100))


def test_conversational_completions_and_rows_without_ground_truth():
    msgs = [{"role": "assistant", "content": answer("[0, 0, 10, 10]")}]
    out = rec_iou(prompts=["p", "p"], completions=[msgs, msgs], bbox=[[0, 0, 10, 10], None],
                  solution=["[0, 0, 10, 10]", None], original_sizes=[[[10, 10]], [[10, 10]]])
    assert out == [1.0, 0.0]
    assert rec_iou(completions=[answer("[0, 0, 1, 1]")]) == [0.0]  # not a REC row at all


@pytest.mark.parametrize("row", [
    dict(bbox=[0, 0, 10, 10], original_sizes=[[0, 0]]),
    dict(bbox=[0, 0, 10, 10], original_sizes=[[10, 10]], frame_sizes=[[math.inf, 10]]),
    dict(bbox=[5, 5, 1, 1]),
    dict(bbox="junk"),
    dict(solution="no box here"),
])
def test_bad_rows_score_zero_without_raising(row):
    assert score(rec_iou, answer("[0, 0, 10, 10]"), **row) == 0.0


@settings(settings.get_profile("vlmr1-rewards"))
@given(text=st.text(max_size=300) | st.lists(st.sampled_from(["[", "]", ",", "1e9", "-3", "0.5", "{", "}",
                                                               '"bbox_2d":', "<answer>", "</answer>", " "]),
                                              max_size=40).map("".join))
def test_any_text_gives_a_bounded_score(text):
    row = dict(bbox=[0, 0, 50, 50], original_sizes=[[100, 80]], frame_sizes=[[56, 28]])
    for fn in (rec_iou, rec_accuracy):
        value = score(fn, text, **row)
        assert isinstance(value, float) and 0.0 <= value <= 1.0
