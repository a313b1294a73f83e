"""The ``od`` task: template, defaults, and file-level AP from one COCOeval (not a mean of per-sample APs)."""

import json

import pytest

from vlmr1.rewards import get_reward_functions
from vlmr1.tasks import get_task

SIZES = dict(original_sizes=[[200, 200]], frame_sizes=[[200, 200]])


def answer(dets):
    return "<think>t</think><answer>" + json.dumps([{"bbox_2d": b, "label": label} for b, label in dets]) + "</answer>"


def row(*objects):
    return dict(objects=[{"bbox": b, "label": label} for b, label in objects], **SIZES)


def test_template_and_default_rewards():
    task = get_task("od")
    text = task.format_question("<image>dog, cat")
    assert text.startswith("<image>Locate every object") and '"bbox_2d"' in text and "dog, cat" in text
    assert [f.__name__ for f in get_reward_functions(list(task.default_rewards))] == ["od_length", "format"]


def test_file_ap_is_one_cocoeval_over_all_samples():
    task = get_task("od")
    dog_a, dog_b = [0, 0, 50, 50], [100, 100, 150, 150]
    samples = [
        # image 1: its dog found, but listed after a false positive (per-sample AP 0.5)
        task.sample_metrics(answer([(dog_b, "dog"), (dog_a, "dog")]), row((dog_a, "dog"))),
        # image 2: its dog found alone (per-sample AP 1)
        task.sample_metrics(answer([(dog_b, "dog")]), row((dog_b, "dog"))),
    ]
    assert [s["ap"] for s in samples] == pytest.approx([0.5, 1.0])
    metrics = task.aggregate_metrics(samples)
    # Pooled: three detections with equal scores, in file order FP, TP, TP: precision at recall 1/2 is 1/2 and
    # at recall 1 is 2/3; interpolated precision is 2/3 everywhere -> AP = 2/3, unlike the per-sample mean 0.75.
    assert metrics["ap"] == pytest.approx(2 / 3)
    assert metrics["ap50"] == pytest.approx(2 / 3)
    assert metrics["parse_rate"] == 1.0 and metrics["num_gt"] == 2


def test_unparsed_answers_and_bad_rows():
    task = get_task("od")
    good = task.sample_metrics(answer([([0, 0, 50, 50], "dog")]), row(([0, 0, 50, 50], "dog")))
    unparsed = task.sample_metrics("a dog", row(([0, 0, 50, 50], "dog")))
    bad_row = task.sample_metrics(answer([]), dict(objects="dog", **SIZES))
    assert unparsed["parsed"] == 0.0 and bad_row["valid"] == 0.0
    # The evaluator fills samples whose metrics failed with zeros / None; the aggregate must still run.
    filled = {k: (0.0 if isinstance(v, float) else None) for k, v in good.items()}
    metrics = task.aggregate_metrics([good, unparsed, bad_row, filled])
    # Ground truth of the two valid samples: found one dog of two -> AP 51/101 (COCO's 101 recall points).
    assert metrics["ap"] == pytest.approx(51 / 101)
    assert metrics["parse_rate"] == pytest.approx(1 / 4)
    assert task.aggregate_metrics([])["ap"] == 0.0
