"""The ``od`` task (open-vocabulary detection): box every object of the categories named in the question.

Rows carry the extra field ``objects`` = ``[{"bbox": [x1, y1, x2, y2], "label": "dog"}, ...]`` (original pixels);
the model answers a JSON list of ``{"bbox_2d": [...], "label": ...}`` in its own frame. Rewards are in
:mod:`vlmr1.rewards.detection`. Evaluation reports, per file, COCO ``ap`` (AP@[.5:.95]) and ``ap50`` from **one**
``COCOeval`` over all the file's samples (one COCO image per sample; not a mean of per-sample APs), and
``parse_rate`` (share of answers that are a JSON list of detections).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vlmr1.rewards.detection import coco_average_precision, od_scores
from vlmr1.tasks.base import THINK_THEN_ANSWER, register_task
from vlmr1.tasks.rec import ImagesFirstTask

OD_TEMPLATE = (
    "Locate every object of these categories in the image: {question}. " + THINK_THEN_ANSWER
    + ' Output the answer as a JSON list [{{"bbox_2d": [x1, y1, x2, y2], "label": "category"}}, ...],'
    " or [] when there is none."
)


def od_sample_metrics(text: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """Per-sample detection metrics; never raises (an unusable row is marked ``valid = 0``).

    Args:
        text: Completion text.
        row: The dataset row (``objects``, ``original_sizes``, ``frame_sizes``).

    Returns:
        ``{"ap", "ap50", "parsed", "valid", "gt", "pred"}``; ``gt``/``pred`` (original pixels, normalised labels)
        feed the file-level COCOeval in :func:`od_aggregate_metrics`.
    """
    try:
        scores = od_scores(text, row)
    except (ValueError, TypeError):
        return {"ap": 0.0, "ap50": 0.0, "parsed": 0.0, "valid": 0.0, "gt": [], "pred": None}
    return {"ap": scores["ap"], "ap50": scores["ap50"], "parsed": scores["parsed"], "valid": 1.0,
            "gt": scores["gt"], "pred": scores["pred"]}


def od_aggregate_metrics(samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """File-level detection metrics from one COCOeval over every valid sample.

    Args:
        samples: Per-sample dicts from :func:`od_sample_metrics`.

    Returns:
        ``{"ap", "ap50", "parse_rate", "num_samples", "num_gt"}``; AP is 0.0 when the file has no ground-truth object.
    """
    n = len(samples)
    valid = [s for s in samples if s.get("valid")]
    result = coco_average_precision([s["gt"] for s in valid], [s["pred"] for s in valid]) if valid else None
    ap, ap50 = result if result is not None else (0.0, 0.0)
    return {
        "ap": ap,
        "ap50": ap50,
        "parse_rate": sum(float(s["parsed"]) for s in samples) / n if n else 0.0,
        "num_samples": n,
        "num_gt": sum(len(s["gt"]) for s in valid),
    }


OD_TASK = register_task(ImagesFirstTask("od", OD_TEMPLATE, ("od_length", "format"),
                                        sample_metrics=od_sample_metrics, aggregate_metrics=od_aggregate_metrics))
