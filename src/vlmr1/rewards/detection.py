"""Open-vocabulary detection (OD) rewards: ``od_ap``, ``od_ap50`` and ``od_length``, scored with pycocotools.

The model answers a JSON list in its own coordinate frame (mapped to original pixels exactly as for REC, see
:func:`vlmr1.rewards.box.frame_to_original`)::

    [{"bbox_2d": [x1, y1, x2, y2], "label": "dog"}, {"bbox_2d": [...], "label": "cat", "score": 0.7}, ...]

Ground truth is the row's extra field ``objects`` (one per jsonl line, original pixels)::

    "objects": [{"bbox": [x1, y1, x2, y2], "label": "dog"}, ...]

Scoring rules:

* AP is pycocotools' ``COCOeval`` (``iouType="bbox"``) on tiny in-memory COCO objects, one image per sample:
  ``od_ap`` is AP@[.5:.95] and ``od_ap50`` AP@0.5, the values ``COCOeval.summarize()`` reports as its first two
  stats (area "all", 100 detections per image; only that setting is evaluated, which is what makes it fast).
  AP is the mean over the labels present in the ground truth, as COCO defines it.
* Labels match after normalisation (Unicode NFKC, casefold, collapsed whitespace, trailing punctuation and quotes
  stripped); there is no synonym matching. A predicted label absent from the ground truth cannot be right and is
  ignored (COCO only scores ground-truth categories).
* A prediction's score is its ``score`` field when it is a finite number, else 1.0. With equal scores COCOeval keeps
  the listed order, so listing boxes best-first matters.
* An item whose box is malformed, non-finite, degenerate or huge stays in the list as a false positive (a zero-area
  box that matches nothing); items that are not objects with a string ``label`` are ignored.
* ``od_length`` = AP x min(1, #gt / #predicted items): plain AP does not fall when extra guesses are listed after the
  right ones, so this penalises over-long lists.
* A sample with no ground-truth objects scores 1.0 for an empty list and 0.0 otherwise. An answer that is not a JSON
  list (or single object), or lists more than ``MAX_DETECTIONS`` items, scores 0.

Cost per completion (one CPU core): about 1.3 ms for 1 object, 3 ms for 5 objects of 3 labels, 10 ms for 20 objects
of 10 labels; it grows with the number of labels, as ``COCOeval.accumulate`` loops over them in Python.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .box import frame_to_original, is_valid_box, load_json_answer, scale_box
from .parsing import answer_or_text, normalize_text
from .registry import per_sample, register_reward

MAX_DETECTIONS = 1000
# Beyond COCO's largest area range ([0, 1e5 ** 2]) a detection would be silently ignored, not counted as wrong.
_MAX_AREA = 1e10
MAX_DETS_PER_IMAGE = 100  # COCO's maxDets for AP
_NO_BOX = [0.0, 0.0, 0.0, 0.0]  # zero-area stand-in for an invalid box: matches nothing, counts as a false positive

GtObject = tuple[list[float], str]
PredObject = tuple[list[float] | None, str, float]


def normalize_label(label: Any) -> str:
    """Normalise a class label for matching (see the module docstring).

    Args:
        label: A label (non-strings are converted with ``str``).

    Returns:
        The normalised label.
    """
    return normalize_text(label if isinstance(label, str) else str(label))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def parse_detections(answer: str) -> list[dict[str, Any]] | None:
    """Parse a detection answer: a JSON list of ``{"bbox_2d", "label"[, "score"]}`` objects, or one such object.

    Args:
        answer: The ``<answer>`` content (fences and text around the JSON are tolerated).

    Returns:
        One dict per list item, ``{"bbox": [4 floats] | None, "label": str | None, "score": float}`` in the model's
        frame (``bbox`` None when malformed, ``label`` None when missing), or None when the answer is not such JSON.
    """
    if not isinstance(answer, str) or not answer.strip():
        return None
    value = load_json_answer(answer)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_DETECTIONS:
        return None
    items = []
    for item in value:
        if not isinstance(item, dict):
            items.append({"bbox": None, "label": None, "score": 1.0})
            continue
        raw = item.get("bbox_2d", item.get("bbox"))
        box = None
        if isinstance(raw, list) and len(raw) == 4:
            coords = [_number(v) for v in raw]
            box = None if any(c is None for c in coords) else coords
        label = item.get("label")
        score = _number(item.get("score"))
        items.append({"bbox": box, "label": label if isinstance(label, str) else None,
                      "score": 1.0 if score is None else score})
    return items


def ground_truth_objects(objects: Any) -> list[GtObject]:
    """Validate a row's ``objects`` field.

    Args:
        objects: ``[{"bbox": [x1, y1, x2, y2], "label": str}, ...]`` in original pixels.

    Returns:
        ``[(box, normalised_label), ...]``.

    Raises:
        ValueError: Not a list, or an object without a valid box and label.
    """
    if not isinstance(objects, list):
        raise ValueError(f"'objects' must be a list of {{'bbox', 'label'}}, got {type(objects).__name__}")
    out = []
    for k, obj in enumerate(objects):
        if not isinstance(obj, dict):
            raise ValueError(f"objects[{k}] must be an object, got {obj!r:.60}")
        raw = obj.get("bbox", obj.get("bbox_2d"))
        coords = [_number(v) for v in raw] if isinstance(raw, list) and len(raw) == 4 else None
        if coords is None or any(c is None for c in coords) or not is_valid_box(coords):
            raise ValueError(f"objects[{k}].bbox must be [x1, y1, x2, y2] with x2 > x1, y2 > y1, got {raw!r:.60}")
        if obj.get("label") is None:
            raise ValueError(f"objects[{k}] has no label")
        out.append((coords, normalize_label(obj["label"])))
    return out


def map_detections(items: Sequence[Mapping[str, Any]] | None, original_sizes: Any = None,
                   frame_sizes: Any = None) -> list[PredObject] | None:
    """Map parsed detections from the model's frame to original pixels, validating each box.

    Args:
        items: From :func:`parse_detections` (None passes through).
        original_sizes, frame_sizes: The row's fields.

    Returns:
        ``[(box_or_None, normalised_label, score), ...]`` for items with a label (an invalid box becomes None), or
        None when ``items`` is None. Items without a label are dropped.
    """
    if items is None:
        return None
    sx, sy, extent = frame_to_original(original_sizes, frame_sizes)
    out = []
    for item in items:
        if item["label"] is None:
            continue
        box = item["bbox"] if is_valid_box(item["bbox"], extent) else None
        out.append((None if box is None else scale_box(box, sx, sy), normalize_label(item["label"]), item["score"]))
    return out


def predicted_objects(text: str, original_sizes: Any = None, frame_sizes: Any = None) -> list[PredObject] | None:
    """A completion's detections in original pixels (:func:`parse_detections` then :func:`map_detections`).

    Args:
        text: Completion text (the ``<answer>`` content is parsed, else the whole text).
        original_sizes, frame_sizes: The row's fields.

    Returns:
        As :func:`map_detections`; None when the answer does not parse.
    """
    return map_detections(parse_detections(answer_or_text(text)), original_sizes, frame_sizes)


def _coco(dataset: dict[str, Any]):
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        coco.createIndex()
    return coco


def _xywh(box: Sequence[float] | None) -> list[float]:
    x1, y1, x2, y2 = _NO_BOX if box is None else box
    return [x1, y1, x2 - x1, y2 - y1]


def coco_average_precision(gts: Sequence[Sequence[GtObject]],
                           preds: Sequence[Sequence[PredObject] | None]) -> tuple[float, float] | None:
    """AP@[.5:.95] and AP@0.5 of a set of images from one pycocotools ``COCOeval`` (bbox, area "all", 100 dets).

    Args:
        gts: Per image, ``[(box_xyxy, label), ...]`` in original pixels; labels already normalised.
        preds: Per image (same order), ``[(box_xyxy_or_None, label, score), ...]``, or None (no detections).

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
                continue  # COCO scores ground-truth categories only
            xywh = _xywh(box)
            # Clamped so a degenerate or enormous box is a false positive, never skipped by COCO's area filter.
            area = min(max(xywh[2], 0.0) * max(xywh[3], 0.0), _MAX_AREA)
            dt_anns.append({"id": len(dt_anns) + 1, "image_id": i + 1, "category_id": cat_ids[label],
                            "bbox": xywh, "area": area, "score": float(score), "iscrowd": 0})
    coco_gt = _coco({"images": images, "categories": categories, "annotations": gt_anns})
    coco_dt = _coco({"images": images, "categories": categories, "annotations": dt_anns})
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        # AP uses the "all" area range and 100 detections per image only. Evaluating just those makes
        # accumulate() (Python loops over areas x maxDets x categories x IoU thresholds) 12x cheaper and
        # leaves the numbers unchanged: each setting is accumulated independently.
        evaluator.params.areaRng = [evaluator.params.areaRng[0]]
        evaluator.params.areaRngLbl = ["all"]
        evaluator.params.maxDets = [MAX_DETS_PER_IMAGE]
        evaluator.evaluate()
        evaluator.accumulate()
    # The two AP entries of COCOeval.summarize(): the mean of the accumulated precision [T, R, K, A, M] over
    # the entries that exist (-1 marks categories without ground truth), for all IoU thresholds and for 0.5.
    precision = evaluator.eval["precision"][:, :, :, 0, 0]
    at_50 = precision[np.isclose(evaluator.params.iouThrs, 0.5)]
    return _mean_defined(precision), _mean_defined(at_50)


def _mean_defined(precision: np.ndarray) -> float:
    defined = precision[precision > -1]
    return float(np.mean(defined)) if defined.size else 0.0


def od_scores(text: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """Per-sample detection scores.

    Args:
        text: Completion text.
        row: The sample's fields (``objects``, ``original_sizes``, ``frame_sizes``).

    Returns:
        ``{"ap", "ap50", "length_factor", "parsed", "num_gt", "num_pred", "gt", "pred"}``; ``gt``/``pred`` are the
        validated objects (original pixels), kept for a file-level COCOeval.

    Raises:
        ValueError: The row's ``objects`` or image sizes are invalid.
    """
    gt = ground_truth_objects(row.get("objects"))
    items = parse_detections(answer_or_text(text))
    pred = map_detections(items, row.get("original_sizes"), row.get("frame_sizes"))
    num_pred = len(items) if items else 0
    result = coco_average_precision([gt], [pred])
    if result is None:  # nothing to find: only an empty answer is right
        ap = ap50 = 1.0 if items is not None and num_pred == 0 else 0.0
    else:
        ap, ap50 = result
    length_factor = min(1.0, len(gt) / num_pred) if num_pred else 1.0
    return {"ap": ap, "ap50": ap50, "length_factor": length_factor, "parsed": float(items is not None),
            "num_gt": len(gt), "num_pred": num_pred, "gt": gt, "pred": pred}


@register_reward("od_ap")
@per_sample
def od_ap_reward(text: str, **row: Any) -> float:
    """COCO AP@[.5:.95] of the answered detections against ``objects`` (pycocotools COCOeval).

    Args:
        text: Completion text.
        **row: The sample's fields (``objects``, ``original_sizes``, ``frame_sizes``).

    Returns:
        AP in [0, 1]; 0 when the answer does not parse.
    """
    if row.get("objects") is None:
        return 0.0  # not a detection row
    return od_scores(text, row)["ap"]


@register_reward("od_ap50")
@per_sample
def od_ap50_reward(text: str, **row: Any) -> float:
    """COCO AP@0.5 of the answered detections against ``objects`` (pycocotools COCOeval).

    Args:
        text: Completion text.
        **row: The sample's fields (``objects``, ``original_sizes``, ``frame_sizes``).

    Returns:
        AP50 in [0, 1]; 0 when the answer does not parse.
    """
    if row.get("objects") is None:
        return 0.0
    return od_scores(text, row)["ap50"]


@register_reward("od_length")
@per_sample
def od_length_reward(text: str, **row: Any) -> float:
    """COCO AP@[.5:.95] x min(1, #gt / #predicted): AP that does not pay for padding the list with guesses.

    Args:
        text: Completion text.
        **row: The sample's fields (``objects``, ``original_sizes``, ``frame_sizes``).

    Returns:
        Score in [0, 1].
    """
    if row.get("objects") is None:
        return 0.0
    scores = od_scores(text, row)
    return scores["ap"] * scores["length_factor"]
