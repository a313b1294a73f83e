"""``--task_type od`` (open-vocabulary detection): box every object of the named categories, scored by COCO AP.

Rows carry ``objects`` = ``[{"bbox": [x1, y1, x2, y2], "label": "dog"}, ...]`` (original pixels), or hold the
objects in the ``gpt`` answer as VLM-R1's OD data does: a (```` ```json ````-fenced) JSON list of
``{"bbox_2d": [x1, y1, x2, y2], "label": "dog"}`` (original pixels), or the string ``None`` for no object. The model
answers a JSON list (or ``None``) in its own frame, mapped to original pixels as for REC::

    [{"bbox_2d": [x1, y1, x2, y2], "label": "dog"}, {"bbox_2d": [...], "label": "cat", "score": 0.7}, ...]

Scoring rules:

* AP is pycocotools' ``COCOeval`` (:func:`vlmr1.geometry.coco_average_precision`), one COCO image per sample:
  ``od_ap`` is AP@[.5:.95], ``od_ap50`` AP@0.5, the mean over the labels present in the ground truth.
* Labels match after normalisation (NFKC, casefold, collapsed whitespace, trailing punctuation and quotes stripped);
  no synonyms. A predicted label absent from the ground truth is ignored (COCO scores ground-truth categories only).
* A prediction's score is its finite ``score`` field, else 1.0; with equal scores the listed order decides.
* An item with a malformed, non-finite, degenerate or huge box stays as a false positive; items that are not objects
  with a string ``label`` are ignored.
* ``od_length`` = AP x min(1, #gt / #predicted): plain AP does not fall when guesses are appended to right answers
  (VLM-R1's ``odLength``). The ``accuracy`` reward scores an OD row with the row's OD method (``map``, ``od_ap``,
  ``od_ap50``, ``odLength``, ``weighted_sum``: :mod:`vlmr1.tasks.od_methods`), else with ``odLength``.
* A sample without ground-truth objects scores 1.0 for an empty list, else 0.0. An answer that is not a JSON list
  (or one object), or lists more than ``MAX_DETECTIONS`` items, scores 0.

Evaluation reports per file COCO ``ap`` and ``ap50`` from **one** COCOeval over all its samples (not a mean of
per-sample APs) and ``parse_rate``. Cost per completion (one core): ~1.3 ms for 1 object, 3 ms for 5 objects of 3
labels, 10 ms for 20 objects of 10 labels (``COCOeval.accumulate`` loops over labels in Python).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from vlmr1.geometry.average_precision import GtObject, PredObject, coco_average_precision
from vlmr1.geometry.boxes import is_valid_box
from vlmr1.models.frames import AnswerScale
from vlmr1.rewards.accuracy import canonical_method
from vlmr1.rewards.parsing import answer_or_text, load_json_answer, normalize_text
from vlmr1.rewards.registry import per_sample
from vlmr1.tasks.base import THINK_THEN_ANSWER, Overlay, Task

MAX_DETECTIONS = 1000
NO_OBJECTS = "none"  # VLM-R1's answer for an image without the asked objects, casefolded
# accuracy methods that score a detection answer (vlmr1.tasks.od_methods); any other method of an OD row means odLength
OD_METHODS = ("map", "od_ap", "od_ap50", "odlength", "weighted_sum")


def normalize_label(label: Any) -> str:
    """A class label normalised for matching (non-strings are converted with ``str``)."""
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
    """A detection answer as ``[{"bbox": [4 floats] | None, "label": str | None, "score": float}, ...]`` in the model's
    frame (``bbox`` None when malformed), or None when the answer is not a JSON list of objects (or one object)."""
    if not isinstance(answer, str) or not answer.strip():
        return None
    if answer.strip().casefold() == NO_OBJECTS:
        return []
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
    """A row's ``objects`` validated, as ``[(box, normalised_label), ...]``.

    Raises:
        ValueError: not a list, or an object without a valid box and label.
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


def solution_objects(solution: Any) -> list[dict[str, Any]] | None:
    """The objects of a VLM-R1 OD answer (``<answer>`` tags and ```` ```json ```` fences allowed): a JSON list, ``[]``
    for ``None``; None when the answer is neither (then it is not OD data)."""
    answer = answer_or_text(solution)
    if answer.casefold() == NO_OBJECTS:
        return []
    value = load_json_answer(answer) if answer.startswith(("[", "`")) else None
    return value if isinstance(value, list) else None


def truth_objects(row: Mapping[str, Any]) -> list[GtObject] | None:
    """A row's true objects, validated: its ``objects``, else those of its VLM-R1-format ``gpt`` answer; None when it
    has neither (not a detection row).

    Raises:
        ValueError: ``objects`` (or the answer's list) holds an object without a valid box and label.
    """
    objects = row.get("objects")
    if objects is None:
        objects = solution_objects(row.get("solution"))
        if objects is None:
            return None
    return ground_truth_objects(objects)


def map_detections(items: Sequence[Mapping[str, Any]] | None, row: Mapping[str, Any]) -> list[PredObject] | None:
    """Parsed detections in original pixels: ``[(box or None, normalised label, score), ...]`` for labelled items
    (an invalid box becomes None); None passes through."""
    if items is None:
        return None
    scale = AnswerScale.of_row(row)
    out = []
    for item in items:
        if item["label"] is None:
            continue
        box = item["bbox"] if is_valid_box(item["bbox"], scale.extent) else None
        out.append((None if box is None else scale.box(box), normalize_label(item["label"]), item["score"]))
    return out


def od_scores(text: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """Per-sample detection scores: ``ap``, ``ap50``, ``length_factor``, ``parsed``, ``num_gt``, ``num_pred`` and the
    validated ``gt``/``pred`` objects (original pixels) for a file-level COCOeval.

    Raises:
        ValueError: the row has no valid objects (``objects`` or a VLM-R1 answer) or its image sizes are invalid.
    """
    gt = truth_objects(row)
    if gt is None:
        raise ValueError("no true objects: give the row 'objects' or a JSON list (or None) as its answer")
    items = parse_detections(answer_or_text(text))
    pred = map_detections(items, row)
    num_pred = len(items) if items else 0
    result = coco_average_precision([gt], [pred])
    if result is None:  # nothing to find: only an empty answer is right
        ap = ap50 = 1.0 if items is not None and num_pred == 0 else 0.0
    else:
        ap, ap50 = result
    length_factor = min(1.0, len(gt) / num_pred) if num_pred else 1.0
    return {"ap": ap, "ap50": ap50, "length_factor": length_factor, "parsed": float(items is not None),
            "num_gt": len(gt), "num_pred": num_pred, "gt": gt, "pred": pred}


def is_detection_row(row: Mapping[str, Any]) -> bool:
    """Whether the row has true objects (``objects``, or a VLM-R1 OD answer); other rows score 0 silently."""
    return row.get("objects") is not None or solution_objects(row.get("solution")) is not None


@per_sample(name="od_ap")
def od_ap_reward(text: str, **row: Any) -> float:
    """COCO AP@[.5:.95] of the answered detections against ``objects``; 0 when the answer does not parse."""
    if not is_detection_row(row):
        return 0.0
    return od_scores(text, row)["ap"]


@per_sample(name="od_ap50")
def od_ap50_reward(text: str, **row: Any) -> float:
    """COCO AP@0.5 of the answered detections against ``objects``; 0 when the answer does not parse."""
    if not is_detection_row(row):
        return 0.0
    return od_scores(text, row)["ap50"]


@per_sample(name="od_length")
def od_length_reward(text: str, **row: Any) -> float:
    """COCO AP@[.5:.95] x min(1, #gt / #predicted): AP that does not pay for padding the list with guesses."""
    if not is_detection_row(row):
        return 0.0
    scores = od_scores(text, row)
    return scores["ap"] * scores["length_factor"]


class OdTask(Task):
    """Every object of the named categories, as a JSON list of boxes with labels."""

    name = "od"
    template = ("Locate every object of these categories in the image: {question}. " + THINK_THEN_ANSWER
                + ' Output the answer as a JSON list [{{"bbox_2d": [x1, y1, x2, y2], "label": "category"}}, ...],'
                " or [] when there is none.")
    default_rewards = ("od_length", "format")
    rewards = (od_ap_reward, od_ap50_reward, od_length_reward)
    truth_fields = ("objects",)

    def accuracy_method(self, row: Mapping[str, Any]) -> str:
        method = canonical_method(row.get("accu_reward_method"))
        return method if method in OD_METHODS else "odlength"

    def sample_metrics(self, text: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """``ap``, ``ap50``, ``parsed``, ``valid`` (0 for an unusable row) and the ``gt``/``pred`` objects."""
        try:
            scores = od_scores(text, row)
        except (ValueError, TypeError):
            return {"ap": 0.0, "ap50": 0.0, "parsed": 0.0, "valid": 0.0, "gt": [], "pred": None}
        return {"ap": scores["ap"], "ap50": scores["ap50"], "parsed": scores["parsed"], "valid": 1.0,
                "gt": scores["gt"], "pred": scores["pred"]}

    def aggregate_metrics(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """``ap``, ``ap50`` from one COCOeval over the valid samples (0 without ground truth), ``parse_rate``,
        ``num_samples``, ``num_gt``."""
        n = len(samples)
        valid = [s for s in samples if s.get("valid")]
        result = coco_average_precision([s["gt"] for s in valid], [s["pred"] for s in valid]) if valid else None
        ap, ap50 = result if result is not None else (0.0, 0.0)
        return {"ap": ap, "ap50": ap50, "parse_rate": sum(float(s["parsed"]) for s in samples) / n if n else 0.0,
                "num_samples": n, "num_gt": sum(len(s["gt"]) for s in valid)}

    def check_row(self, answer: str, fields: Mapping[str, Any]) -> list[tuple[str, str]]:
        if fields.get("objects") is not None:
            where, objects = "'objects'", fields["objects"]
        else:
            where, objects = "the answer", solution_objects(answer)
            if objects is None:
                return [("unparsable_answer", f"no 'objects' field, and the answer {answer!r:.60} is not a JSON list "
                                              'of {"bbox_2d": [x1, y1, x2, y2], "label": ...} (fenced or not) or None')]
        try:
            ground_truth_objects(objects)
        except (ValueError, TypeError) as e:
            return [("bad_field" if fields.get("objects") is not None else "unparsable_answer", f"{where}: {e}")]
        return []

    def overlay(self, row: Mapping[str, Any], text: str) -> Overlay:
        try:
            truth = truth_objects(row) or []
        except (ValueError, TypeError):
            truth = []
        pred = map_detections(parse_detections(answer_or_text(text)), row) or []
        found = [(box, label) for box, label, _ in pred if box is not None]
        score = self.sample_metrics(text, row)
        return Overlay(true_boxes=[b for b, _ in truth], true_labels=[lab for _, lab in truth],
                       answer_boxes=[b for b, _ in found], answer_labels=[lab for _, lab in found],
                       score=score["ap"] if score["parsed"] else None, score_name="AP")


OD = OdTask()
