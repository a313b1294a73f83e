"""VLM-R1's detection accuracy methods, by its names: ``map``, ``od_ap``, ``od_ap50``, ``odLength``, ``weighted_sum``.

A row names one in ``accu_reward_method`` (or ``--reward_method``); the ``accuracy`` reward of an ``od`` row without
one uses ``odLength``. The truth is the row's ``objects``, else the objects in its ``gpt`` answer in VLM-R1's format
(a fenced JSON list of ``{"bbox_2d", "label"}``, or ``None``); the answer is read and frame-mapped as in
:mod:`vlmr1.tasks.od` (labels normalised, ``None`` or ``[]`` for no object).

* ``map`` / ``od_ap``: COCO AP@[.5:.95]; ``od_ap50``: AP@0.5; ``odLength``: AP x min(1, #gt / #predicted). With no
  true object, only an empty answer scores 1.
* ``weighted_sum``: VLM-R1's comprehensive detection score, 0.7 x position + 0.3 x completeness. Predictions and true
  objects are matched greedily by highest IoU while it is >= 0.5; position = sum of the IoUs of matches with the right
  label / #gt; completeness = 1 - (missed true objects / #gt + unmatched predictions / #predicted) / 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vlmr1.geometry.boxes import box_iou_pairwise, is_valid_box
from vlmr1.models.frames import AnswerScale
from vlmr1.rewards.accuracy import register_accuracy_method
from vlmr1.tasks.od import normalize_label, od_scores, parse_detections, truth_objects

POSITION_WEIGHT, LABEL_WEIGHT, COMPLETENESS_WEIGHT = 0.7, 0.0, 0.3  # VLM-R1's alpha, beta, gamma
MATCH_IOU = 0.5


@register_accuracy_method("od_ap")
def od_ap_method(pred: str, gold: str, row: Mapping[str, Any]) -> float:
    """COCO AP@[.5:.95] of the answered objects (VLM-R1's ``od_ap``)."""
    return od_scores(pred, row)["ap"]


@register_accuracy_method("map")
def map_method(pred: str, gold: str, row: Mapping[str, Any]) -> float:
    """COCO AP@[.5:.95] (VLM-R1's ``map``; it reads only ```` ```json ````-fenced lists, vlmr1 bare ones too)."""
    return od_scores(pred, row)["ap"]


@register_accuracy_method("od_ap50")
def od_ap50_method(pred: str, gold: str, row: Mapping[str, Any]) -> float:
    """COCO AP@0.5 of the answered objects (VLM-R1's ``od_ap50``)."""
    return od_scores(pred, row)["ap50"]


@register_accuracy_method("odLength")
def od_length_method(pred: str, gold: str, row: Mapping[str, Any]) -> float:
    """COCO AP@[.5:.95] x min(1, #gt / #predicted) (VLM-R1's ``odLength``, the ``od_length`` reward)."""
    scores = od_scores(pred, row)
    return scores["ap"] * scores["length_factor"]


def greedy_matches(ious: np.ndarray, threshold: float = MATCH_IOU) -> list[tuple[int, int, float]]:
    """``(pred, gt, iou)`` pairs: repeatedly the highest remaining IoU, while it is >= ``threshold``.

    Args:
        ious: (P, G) IoU of every prediction with every true object.
    """
    ious = ious.astype(np.float64).copy()
    out = []
    while ious.size:
        p, g = np.unravel_index(int(np.argmax(ious)), ious.shape)
        if ious[p, g] < threshold:
            break
        out.append((int(p), int(g), float(ious[p, g])))
        ious[p, :] = -1.0
        ious[:, g] = -1.0
    return out


@register_accuracy_method("weighted_sum")
def weighted_sum_method(pred: str, gold: str, row: Mapping[str, Any]) -> float:
    """VLM-R1's ``weighted_sum`` detection score (module docstring); 0 for an answer that is not a list."""
    truth = truth_objects(row)
    if truth is None:
        raise ValueError("no true objects: give the row 'objects' or a JSON list (or None) as its answer")
    items = parse_detections(pred)
    if items is None:
        return 0.0
    if not truth or not items:
        return 1.0 if not truth and not items else 0.0
    scale = AnswerScale.of_row(row)
    boxes = np.array([scale.box(it["bbox"]) if is_valid_box(it["bbox"], scale.extent) else [0.0, 0.0, 0.0, 0.0]
                      for it in items], dtype=np.float64)
    labels = [None if it["label"] is None else normalize_label(it["label"]) for it in items]
    true_boxes = np.array([box for box, _ in truth], dtype=np.float64)
    matches = greedy_matches(box_iou_pairwise(boxes[:, None, :], true_boxes[None, :, :]))
    right = [iou for p, g, iou in matches if labels[p] == truth[g][1]]
    position = sum(right) / len(truth)
    label = len(right) / len(truth)
    completeness = 1.0 - ((len(truth) - len(matches)) / len(truth) + (len(items) - len(matches)) / len(items)) / 2
    return (POSITION_WEIGHT * position + LABEL_WEIGHT * label + COMPLETENESS_WEIGHT * completeness) / (
        POSITION_WEIGHT + LABEL_WEIGHT + COMPLETENESS_WEIGHT)
