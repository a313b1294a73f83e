"""COCO average precision of box detections, from pycocotools' own ``COCOeval`` on in-memory COCO objects.

One call scores a set of images (one COCO image each): AP@[.5:.95] and AP@0.5 with area "all" and 100 detections
per image, the first two numbers ``COCOeval.summarize()`` prints. Only that setting is evaluated, which makes
``accumulate()`` (Python loops over areas x maxDets x categories x IoU thresholds) 12x cheaper with the same numbers.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from .boxes import xyxy_to_xywh

MAX_DETS_PER_IMAGE = 100  # COCO's maxDets for AP
# Beyond COCO's largest area range ([0, 1e5 ** 2]) a detection would be silently ignored, not counted as wrong.
_MAX_AREA = 1e10
_NO_BOX = [0.0, 0.0, 0.0, 0.0]  # zero-area stand-in for an invalid box: matches nothing, counts as a false positive

GtObject = tuple[list[float], str]
PredObject = tuple[list[float] | None, str, float]


def _coco(dataset: dict[str, Any]):
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        coco.createIndex()
    return coco


def _xywh(box: Sequence[float] | None) -> list[float]:
    return xyxy_to_xywh(_NO_BOX if box is None else box).tolist()


def coco_average_precision(gts: Sequence[Sequence[GtObject]],
                           preds: Sequence[Sequence[PredObject] | None]) -> tuple[float, float] | None:
    """AP@[.5:.95] and AP@0.5 of a set of images.

    Args:
        gts: per image, ``[(box_xyxy, label), ...]`` in original pixels; labels already normalised.
        preds: per image (same order), ``[(box_xyxy_or_None, label, score), ...]``, or None (no detections). A None
            box is a false positive; labels absent from the ground truth are ignored (COCO scores its categories).

    Returns:
        ``(ap, ap50)``, or None when there is no ground-truth object at all (AP is undefined).
    """
    from pycocotools.cocoeval import COCOeval

    labels = sorted({label for objs in gts for _, label in objs})
    if not labels:
        return None
    cat_ids = {label: i + 1 for i, label in enumerate(labels)}
    images = [{"id": i + 1} for i in range(len(gts))]
    categories = [{"id": cid, "name": label} for label, cid in cat_ids.items()]
    gt_anns, dt_anns = [], []
    for i, objs in enumerate(gts):
        for box, label in objs:
            xywh = _xywh(box)
            gt_anns.append({"id": len(gt_anns) + 1, "image_id": i + 1, "category_id": cat_ids[label],
                            "bbox": xywh, "area": xywh[2] * xywh[3], "iscrowd": 0})
    for i, dets in enumerate(preds):
        for box, label, score in dets or ():
            if label not in cat_ids:
                continue
            xywh = _xywh(box)
            # clamped so a degenerate or enormous box is a false positive, never skipped by COCO's area filter
            area = min(max(xywh[2], 0.0) * max(xywh[3], 0.0), _MAX_AREA)
            dt_anns.append({"id": len(dt_anns) + 1, "image_id": i + 1, "category_id": cat_ids[label],
                            "bbox": xywh, "area": area, "score": float(score), "iscrowd": 0})
    coco_gt = _coco({"images": images, "categories": categories, "annotations": gt_anns})
    coco_dt = _coco({"images": images, "categories": categories, "annotations": dt_anns})
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.params.areaRng = [evaluator.params.areaRng[0]]
        evaluator.params.areaRngLbl = ["all"]
        evaluator.params.maxDets = [MAX_DETS_PER_IMAGE]
        evaluator.evaluate()
        evaluator.accumulate()
    # summarize()'s AP: the mean of precision [T, R, K, A, M] over defined entries (-1: category without truth)
    precision = evaluator.eval["precision"][:, :, :, 0, 0]
    at_50 = precision[np.isclose(evaluator.params.iouThrs, 0.5)]
    return _mean_defined(precision), _mean_defined(at_50)


def _mean_defined(precision: np.ndarray) -> float:
    defined = precision[precision > -1]
    return float(np.mean(defined)) if defined.size else 0.0
