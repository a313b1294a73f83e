"""``--task_type seg``: template, default rewards and the evaluator's metrics (cIoU, gIoU, parse_rate)."""

import json

import numpy as np
import pytest

from vlmr1.geometry import fit_contour, mask_to_rle
from vlmr1.tasks import get_task

H, W = 120, 160


def box_mask(x0, y0, x1, y1):
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def text_for(mask, decimals=2):
    contour = fit_contour(mask, "parametric", 8, "refined")
    return "<think>t</think><answer>" + json.dumps(contour.to_json_dict(decimals)) + "</answer>"


def test_seg_tasks_are_registered_with_their_rewards():
    for name, keys in (("seg", '{"x": [c0, ..., c7], "y": [c0, ..., c7]}'),
                       ("seg_radial", '{"centre": [cx, cy], "coeffs": [c0, ..., c7]}')):
        task = get_task(name)
        assert task.default_rewards == ("seg_iou", "seg_format")
        prompt = task.format_question("<image>Outline the dog.")
        assert prompt.startswith("<image>Outline the dog. ") and keys in prompt
        assert "<think>" in prompt and "<answer>" in prompt and "Chebyshev" in prompt


def test_metrics_per_sample_and_aggregate():
    task = get_task("seg")
    big, small = box_mask(10, 10, 110, 90), box_mask(5, 5, 15, 15)
    rows = [{"mask": mask_to_rle(big), "original_sizes": [[W, H]], "frame_sizes": [[W, H]]},
            {"mask": mask_to_rle(small), "original_sizes": [[W, H]], "frame_sizes": [[W, H]]}]
    good = task.sample_metrics(text_for(big), rows[0])
    assert good["parsed"] == 1.0 and good["iou"] > 0.9
    assert good["iou"] == pytest.approx(good["intersection"] / good["union"])
    miss = task.sample_metrics("<answer>no idea</answer>", rows[1])
    assert miss == {"intersection": 0.0, "union": float(small.sum()), "iou": 0.0, "parsed": 0.0}
    agg = task.aggregate_metrics([good, miss])
    assert agg["gIoU"] == pytest.approx(good["iou"] / 2)
    # cIoU weighs by area: the big object dominates, the missed small one barely counts
    assert agg["cIoU"] == pytest.approx(good["intersection"] / (good["union"] + small.sum()))
    assert agg["cIoU"] > agg["gIoU"] and agg["parse_rate"] == 0.5 and agg["count"] == 2


def test_metrics_never_raise():
    task = get_task("seg")
    for row in ({}, {"mask": "junk"}, {"mask": {"size": [H, W]}}):
        assert task.sample_metrics("anything", row)["parsed"] == 0.0
    assert task.sample_metrics(None, {"mask": mask_to_rle(box_mask(0, 0, 5, 5))})["iou"] == 0.0
    assert task.aggregate_metrics([]) == {"cIoU": 0.0, "gIoU": 0.0, "parse_rate": 0.0, "count": 0.0}
