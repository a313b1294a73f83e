"""The ``rec`` task: template, default rewards, per-sample metrics and per-file Acc@0.5 / mean IoU / parse rate."""

import pytest

from vlmr1.rewards import get_reward_functions
from vlmr1.tasks import get_task

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
