"""``--task_type seg`` (and ``seg_radial``): outline the referred object as 8 Chebyshev coefficients per coordinate.

The jsonl question (from ``vlmr1 data coco``) is self-contained ("<image>Outline the person."); the template adds
the answer format. Rewards: ``seg_iou`` + ``seg_format`` (``vlmr1.rewards.mask``). Evaluation metrics per sample:
``intersection``, ``union`` (pixels, original image), ``iou`` and ``parsed``; per file: ``cIoU`` = cumulative
intersection / cumulative union (large objects weigh more), ``gIoU`` = mean per-sample IoU, ``parse_rate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import vlmr1.rewards.mask  # noqa: F401  (registers seg_iou / seg_format until rewards/__init__ imports it)
from vlmr1.tasks.base import THINK_THEN_ANSWER, Task, register_task

PARAMETRIC_FORMAT = (
    'Output the object\'s outline as JSON {{"x": [c0, ..., c7], "y": [c0, ..., c7]}}: the 8 Chebyshev coefficients '
    "of x(t) and y(t), in image pixels, as t goes from -1 to 1 tracing the outline once clockwise from its topmost "
    "point (c0 is roughly the centre, c1 and c2 the main extent)."
)
RADIAL_FORMAT = (
    'Output the object\'s outline as JSON {{"centre": [cx, cy], "coeffs": [c0, ..., c7]}}: a centre in image pixels '
    "and the 8 Chebyshev coefficients of the radius r(theta), theta/pi from -1 to 1 (c0 is roughly the mean radius)."
)


def seg_sample_metrics(text: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """``intersection``, ``union``, ``iou``, ``parsed`` of one completion; zeros for a row without a valid mask.

    Args:
        text: the completion.
        row: the dataset row (``mask``, ``solution``, ``original_sizes``, ``frame_sizes``).

    Returns:
        The metrics dict; never raises.
    """
    from vlmr1.rewards.mask import seg_score

    try:
        score = seg_score(text if isinstance(text, str) else "", row)
    except Exception:  # a row without a usable mask: count it as a miss, the evaluator must go on
        return {"intersection": 0.0, "union": 0.0, "iou": 0.0, "parsed": 0.0}
    return {"intersection": score.intersection, "union": score.union, "iou": score.iou,
            "parsed": float(score.parsed)}


def seg_aggregate_metrics(samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``cIoU``, ``gIoU``, ``parse_rate`` and ``count`` over one file's samples (zeros when empty).

    Args:
        samples: per-sample dicts from :func:`seg_sample_metrics`.

    Returns:
        The file's metrics.
    """
    n = len(samples)
    inter = sum(float(s.get("intersection", 0.0)) for s in samples)
    union = sum(float(s.get("union", 0.0)) for s in samples)
    return {"cIoU": inter / union if union > 0 else 0.0,
            "gIoU": sum(float(s.get("iou", 0.0)) for s in samples) / n if n else 0.0,
            "parse_rate": sum(float(s.get("parsed", 0.0)) for s in samples) / n if n else 0.0,
            "count": float(n)}


SEG = register_task(Task("seg", "{question} " + THINK_THEN_ANSWER + " " + PARAMETRIC_FORMAT,
                         ("seg_iou", "seg_format"), seg_sample_metrics, seg_aggregate_metrics))
SEG_RADIAL = register_task(Task("seg_radial", "{question} " + THINK_THEN_ANSWER + " " + RADIAL_FORMAT,
                                ("seg_iou", "seg_format"), seg_sample_metrics, seg_aggregate_metrics))

# The demo's task: `seg` with the question alone. A tiny model reads no instructions (SFT teaches it the layout),
# and the 177-token seg instruction would triple every sequence, i.e. every CPU step.
SEG_DEMO = register_task(Task("seg_demo", "{question}", ("seg_iou", "seg_format"), seg_sample_metrics,
                              seg_aggregate_metrics))
