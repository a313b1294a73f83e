"""``--task_type point``: point at the object a phrase names; the point scores 1 when it falls inside the object.

A whole task in one file (the README's "Add a task" example): template, answer parser, frame-aware scoring, the reward,
eval metrics, row checks and drawing. Any REC or segmentation jsonl serves as data: the truth is the row's ``mask``
(COCO RLE) when it has one, else its ``bbox``; the ``gpt`` answer is not used.

The model answers ``[x, y]`` or Qwen's ``{"point_2d": [x, y]}`` in its own frame, mapped to original pixels by
:class:`vlmr1.models.frames.AnswerScale`. Reward ``point_in_object``: 1.0 inside, else 0.0. Metrics per file:
``accuracy`` (share of points inside) and ``parse_rate``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from vlmr1.geometry import rle_to_mask
from vlmr1.models.frames import AnswerScale
from vlmr1.rewards.accuracy import register_accuracy_method
from vlmr1.rewards.parsing import answer_or_text, load_json_answer
from vlmr1.rewards.registry import per_sample
from vlmr1.tasks.base import THINK_THEN_ANSWER, Overlay, Task
from vlmr1.tasks.rec import ground_truth_box


def parse_point(answer: str) -> list[float] | None:
    """``[x, y]`` from ``[x, y]``, ``{"point_2d": [x, y]}`` or a one-element list of either; None otherwise."""
    value = load_json_answer(answer) if isinstance(answer, str) and len(answer) < 1000 else None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict):
        value = value.get("point_2d", value.get("point"))
    if not (isinstance(value, list) and len(value) == 2):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return None
    return [float(v) for v in value]


def answer_point(text: str, row: Mapping[str, Any]) -> list[float] | None:
    """The completion's point in original pixels, or None."""
    point = parse_point(answer_or_text(text))
    return None if point is None else AnswerScale.of_row(row).points([point])[0].tolist()


def point_inside(point: list[float], row: Mapping[str, Any]) -> bool:
    """Whether ``point`` (original pixels) lies in the row's ``mask``, else in its ``bbox`` (pixel j spans [j, j+1)).

    Raises:
        ValueError: the row has neither a valid ``mask`` nor a valid ``bbox``.
    """
    x, y = point
    if row.get("mask") is not None:
        mask = rle_to_mask(row["mask"])
        col, line = math.floor(x), math.floor(y)
        return 0 <= line < mask.shape[0] and 0 <= col < mask.shape[1] and bool(mask[line, col])
    x1, y1, x2, y2 = ground_truth_box(row.get("bbox"))
    return x1 <= x < x2 and y1 <= y < y2


@per_sample(name="point_in_object")
def point_in_object_reward(text: str, **row: Any) -> float:
    """1.0 when the answered point (model frame -> original pixels) lies inside ``mask`` (else ``bbox``), else 0.0."""
    point = answer_point(text, row)
    return 1.0 if point is not None and point_inside(point, row) else 0.0


@register_accuracy_method("point_in_object")
def point_in_object_method(pred: str, gold: str, row: Mapping[str, Any]) -> float:
    """The ``accuracy`` of a point row: 1.0 when the answered point lies inside the object."""
    point = answer_point(pred, row)
    return 1.0 if point is not None and point_inside(point, row) else 0.0


class PointTask(Task):
    """One point per question, in the model's frame."""

    name = "point"
    template = "Point to {question}. " + THINK_THEN_ANSWER + " Output the point in the answer as [x, y]."
    default_rewards = ("point_in_object", "format")
    rewards = (point_in_object_reward,)

    def accuracy_method(self, row: Mapping[str, Any]) -> str:
        return "point_in_object"

    def sample_metrics(self, text: str, row: Mapping[str, Any]) -> dict[str, Any]:
        point = answer_point(text, row)
        try:
            hit = point is not None and point_inside(point, row)
        except (ValueError, TypeError):  # an unusable row scores as a miss
            hit = False
        return {"accuracy": float(hit), "parsed": float(point is not None)}

    def check_row(self, answer: str, fields: Mapping[str, Any]) -> list[tuple[str, str]]:
        try:
            point_inside([0.0, 0.0], fields)
        except (ValueError, TypeError) as e:
            return [("bad_field", f"no usable 'mask' or 'bbox' to test points against ({e})")]
        return []

    def overlay(self, row: Mapping[str, Any], text: str) -> Overlay:
        point = answer_point(text, row)
        true_mask, true_boxes = None, []
        try:
            if row.get("mask") is not None:
                true_mask = rle_to_mask(row["mask"])
            elif row.get("bbox") is not None:
                true_boxes = [ground_truth_box(row["bbox"])]
        except (ValueError, TypeError):  # a bad truth field: draw the answer alone
            pass
        score = self.sample_metrics(text, row)["accuracy"] if point is not None else None
        return Overlay(true_mask=true_mask, true_boxes=true_boxes, answer_points=[point] if point else [],
                       score=score, score_name="hit")


POINT = PointTask()
