"""The ``rec`` task (referring-expression comprehension): find the one box a sentence describes.

Rows carry ``bbox`` (ground truth, original pixels) as written by ``vlmr1 data refcoco``; the rewards and metrics are
in :mod:`vlmr1.rewards.box`. Evaluation reports, per file, ``acc@0.5`` (share of answers with IoU >= 0.5),
``mean_iou`` and ``parse_rate`` (share of answers holding a valid box).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vlmr1.data.schema import IMAGE_PLACEHOLDER
from vlmr1.rewards.box import ACCURACY_IOU, rec_iou_value
from vlmr1.tasks.base import THINK_THEN_ANSWER, Task, register_task

REC_TEMPLATE = (
    "Please provide the bounding box coordinate of the region this sentence describes: {question}. "
    + THINK_THEN_ANSWER + " Output the box in the answer as [x1, y1, x2, y2]."
)


@dataclass(frozen=True)
class ImagesFirstTask(Task):
    """A task whose template wraps the question text only: leading ``<image>`` placeholders stay in front.

    Data lines put the images first (``"<image>the man in red"``); without this the template would put the image
    in the middle of its sentence ("... this sentence describes: <image>the man in red").
    """

    def format_question(self, question: str) -> str:
        rest = question.lstrip()
        count = 0
        while rest.startswith(IMAGE_PLACEHOLDER):
            rest = rest[len(IMAGE_PLACEHOLDER):].lstrip()
            count += 1
        return IMAGE_PLACEHOLDER * count + self.question_template.format(question=rest)


def rec_sample_metrics(text: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """Per-sample REC metrics; never raises (an unusable row scores as a miss).

    Args:
        text: Completion text.
        row: The dataset row (``bbox`` or ``solution``, ``original_sizes``, ``frame_sizes``).

    Returns:
        ``{"iou": float, "acc@0.5": 0.0 | 1.0, "parsed": 0.0 | 1.0}``.
    """
    try:
        value, parsed = rec_iou_value(text, row)
    except (ValueError, TypeError):
        value, parsed = 0.0, False
    return {"iou": value, "acc@0.5": float(value >= ACCURACY_IOU), "parsed": float(parsed)}


def rec_aggregate_metrics(samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """File-level REC metrics.

    Args:
        samples: Per-sample dicts from :func:`rec_sample_metrics`.

    Returns:
        ``{"acc@0.5", "mean_iou", "parse_rate", "num_samples"}`` (zeros for an empty file).
    """
    n = len(samples)
    if not n:
        return {"acc@0.5": 0.0, "mean_iou": 0.0, "parse_rate": 0.0, "num_samples": 0}
    return {
        "acc@0.5": sum(float(s["acc@0.5"]) for s in samples) / n,
        "mean_iou": sum(float(s["iou"]) for s in samples) / n,
        "parse_rate": sum(float(s["parsed"]) for s in samples) / n,
        "num_samples": n,
    }


REC_TASK = register_task(ImagesFirstTask("rec", REC_TEMPLATE, ("rec_iou", "format"),
                              sample_metrics=rec_sample_metrics, aggregate_metrics=rec_aggregate_metrics))
