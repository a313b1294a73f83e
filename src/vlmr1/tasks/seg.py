"""``--task_type seg`` (and ``seg_radial``): outline the referred object as a Chebyshev contour, rewarded by mask IoU.

The jsonl question (from ``vlmr1 data coco``) names the object; the template adds the answer format. The model answers
one contour as JSON in the ``<answer>`` tag, in *its* coordinate frame:

* parametric: ``{"x": [c0, ..., c7], "y": [c0, ..., c7]}`` (:class:`vlmr1.geometry.ParametricContour`);
* radial: ``{"centre": [cx, cy], "coeffs": [c0, ..., c7]}`` (:class:`vlmr1.geometry.RadialContour`).

Which one, and how many coefficients, is read from the row's ``solution`` (what the converter wrote); without a usable
solution the answer's keys decide and the length must be 8. The JSON must have exactly the representation's keys, the
right number of finite numbers (|v| <= 1e5), and nothing else.

The decoded outline (256 points) is mapped to the pixels of the row's ``mask`` (COCO RLE) by
:class:`vlmr1.models.frames.AnswerScale` (an affine map of the polygon, exact for both representations), rasterised
with pycocotools clipped to the image, and compared with the mask in RLE space.

* ``seg_iou``: that IoU; 0 for an unparsable, wrong-representation, wrong-length or degenerate answer.
* ``seg_format``: 1 when the text has the R1 layout (as ``format``) AND the answer is a contour of the expected
  representation and length that encloses >= 1 square unit of its frame, else 0 (all-zero coefficients, a point or a
  line do not count). One reward for both, so ``--reward_funcs seg_iou seg_format`` needs no separate ``format``.

Metrics per sample: ``intersection``, ``union`` (pixels), ``iou``, ``parsed``; per file: ``cIoU`` = total
intersection / total union (large objects weigh more), ``gIoU`` = mean IoU, ``parse_rate``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from vlmr1.geometry import contour_from_json, polygon_to_rle, rle_area, rle_to_mask, signed_area
from vlmr1.geometry.masks import _as_rle
from vlmr1.models.frames import AnswerScale
from vlmr1.rewards.accuracy import register_accuracy_method
from vlmr1.rewards.format import is_think_answer_format
from vlmr1.rewards.parsing import answer_or_text, extract_answer, load_json_answer
from vlmr1.rewards.registry import per_sample
from vlmr1.tasks.base import THINK_THEN_ANSWER, Overlay, Task

DEFAULT_TERMS = 8
NUM_POINTS = 256  # outline samples rasterised per answer
# 16 coefficients at a few characters each fit in ~400 characters; anything this long is not a contour.
MAX_CONTOUR_ANSWER_CHARS = 4_000
KEYS = {("x", "y"): "parametric", ("centre", "coeffs"): "radial"}

PARAMETRIC_FORMAT = (
    'Output the object\'s outline as JSON {{"x": [c0, ..., c7], "y": [c0, ..., c7]}}: the 8 Chebyshev coefficients '
    "of x(t) and y(t), in image pixels, as t goes from -1 to 1 tracing the outline once clockwise from its topmost "
    "point (c0 is roughly the centre, c1 and c2 the main extent)."
)
RADIAL_FORMAT = (
    'Output the object\'s outline as JSON {{"centre": [cx, cy], "coeffs": [c0, ..., c7]}}: a centre in image pixels '
    "and the 8 Chebyshev coefficients of the radius r(theta), theta/pi from -1 to 1 (c0 is roughly the mean radius)."
)


def parse_contour(text: Any, representation: str | None = None, terms: int | None = DEFAULT_TERMS):
    """A ``ParametricContour``/``RadialContour`` from an answer (the ``<answer>`` content, or the whole text), or None.

    Args:
        text: completion or solution text.
        representation: required ``"parametric"``/``"radial"``, or None to accept either (by keys).
        terms: required number of coefficients, or None for any 1..64.
    """
    answer = answer_or_text(text)
    if not answer or len(answer) > MAX_CONTOUR_ANSWER_CHARS:
        return None
    value = load_json_answer(answer)
    if not isinstance(value, dict):
        return None
    found = KEYS.get(tuple(sorted(value)))
    if found is None or (representation is not None and found != representation):
        return None
    try:
        return contour_from_json(value, found, terms)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _solution_shape(solution: str) -> tuple[str, int] | None:
    contour = parse_contour(solution, None, None)
    if contour is None:
        return None
    return ("parametric" if hasattr(contour, "x") else "radial"), contour.terms


def expected_contour(row: Mapping[str, Any]) -> tuple[str | None, int]:
    """(representation, terms) the answer must have: from the solution, else from the answer's keys and 8 terms."""
    solution = row.get("solution")
    shape = None
    if isinstance(solution, str) and len(solution) <= 4 * MAX_CONTOUR_ANSWER_CHARS:
        shape = _solution_shape(solution)
    return shape if shape is not None else (None, DEFAULT_TERMS)


def mask_rle(mask: Any) -> dict:
    """The row's ``mask`` as a pycocotools RLE; raises ValueError when it is not a COCO RLE."""
    if not isinstance(mask, Mapping) or "size" not in mask or "counts" not in mask:
        raise ValueError(f"row 'mask' must be a COCO RLE {{'size': [H, W], 'counts': ...}}, got {mask!r:.80}")
    return _as_rle(mask)


def answer_polygon(text: str, row: Mapping[str, Any], num_points: int = NUM_POINTS):
    """(num_points, 2) outline of a completion in the pixels of the row's ``mask`` (or of the original image), or None
    when the answer is not a contour of the expected shape.

    Decoded with the contour's own ``to_polygon``, so the converter's ``fit_iou`` and this reward agree exactly.
    """
    scale = AnswerScale.of_row(row)
    mask = row.get("mask")
    if isinstance(mask, Mapping) and isinstance(mask.get("size"), (list, tuple)) and len(mask["size"]) == 2:
        height, width = (float(v) for v in mask["size"])
        scale = scale.onto(width, height)  # a mask stored at another size than the image: pixels still line up
    representation, terms = expected_contour(row)
    contour = parse_contour(text, representation, terms)
    if contour is None:
        return None
    with np.errstate(all="ignore"):
        return scale.points(contour.to_polygon(num_points))


class SegScore(NamedTuple):
    """One answer's overlap with the true mask, in mask pixels."""

    intersection: float
    union: float
    iou: float
    parsed: bool


def seg_score(text: str, row: Mapping[str, Any]) -> SegScore:
    """Score one completion against the row's ``mask``; an unparsable answer gives intersection 0, union = the true
    mask's area, parsed False.

    Raises:
        ValueError: the row has no valid ``mask`` or sizes (a data problem, not a model one).
    """
    from pycocotools import mask as mask_utils

    truth = mask_rle(row.get("mask"))
    height, width = (int(v) for v in truth["size"])
    true_area = float(mask_utils.area(truth))
    polygon = answer_polygon(text, row)
    if polygon is None:
        return SegScore(0.0, true_area, 0.0, False)
    pred = polygon_to_rle(polygon, height, width)
    pred_area = float(mask_utils.area(pred))
    inter = float(mask_utils.area(mask_utils.merge([pred, truth], intersect=True))) if pred_area else 0.0
    union = pred_area + true_area - inter
    iou = inter / union if union > 0 else 0.0
    return SegScore(inter, union, min(max(iou, 0.0), 1.0) if math.isfinite(iou) else 0.0, True)


def encloses_area(contour, min_area: float = 1.0) -> bool:
    """True when the outline encloses at least ``min_area`` square units of its own frame (not a point, not a line),
    so a model cannot collect the format reward with all-zero coefficients."""
    with np.errstate(all="ignore"):
        area = abs(signed_area(contour.to_polygon(NUM_POINTS)))
    return bool(np.isfinite(area) and area >= min_area)


@per_sample(name="seg_iou")
def seg_iou_reward(text: str, **row: Any) -> float:
    """IoU of the answered contour (model frame -> original pixels) with ``mask``; 0 if unparsable or degenerate."""
    if row.get("mask") is None:
        return 0.0  # not a segmentation row
    return seg_score(text, row).iou


@per_sample(name="seg_format")
def seg_format_reward(text: str, **row: Any) -> float:
    """1.0 for a think/answer layout whose answer is a contour of the expected representation and length."""
    if not is_think_answer_format(text):
        return 0.0
    representation, terms = expected_contour(row)
    contour = parse_contour(extract_answer(text), representation, terms)
    return 1.0 if contour is not None and encloses_area(contour) else 0.0


@register_accuracy_method("seg_iou")
def seg_iou_method(pred: str, gold: str, row: Mapping[str, Any]) -> float:
    """The ``accuracy`` of a segmentation row: the mask IoU of ``seg_iou``."""
    return seg_score(pred, row).iou


class SegTask(Task):
    """One Chebyshev contour per question. ``representation`` is what ``vlmr1 data check`` expects of the answers."""

    name = "seg"
    template = "{question} " + THINK_THEN_ANSWER + " " + PARAMETRIC_FORMAT
    default_rewards = ("seg_iou", "seg_format")
    rewards = (seg_iou_reward, seg_format_reward)
    truth_fields = ("mask",)

    def __init__(self, name: str | None = None, template: str | None = None, representation: str = "parametric"):
        super().__init__(name, template)
        self.representation = representation

    def accuracy_method(self, row: Mapping[str, Any]) -> str:
        return "seg_iou"

    def sample_metrics(self, text: str, row: Mapping[str, Any]) -> dict[str, Any]:
        try:
            score = seg_score(text if isinstance(text, str) else "", row)
        except Exception:  # a row without a usable mask: count it as a miss, the evaluator must go on
            return {"intersection": 0.0, "union": 0.0, "iou": 0.0, "parsed": 0.0}
        return {"intersection": score.intersection, "union": score.union, "iou": score.iou,
                "parsed": float(score.parsed)}

    def aggregate_metrics(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        n = len(samples)
        inter = sum(float(s.get("intersection", 0.0)) for s in samples)
        union = sum(float(s.get("union", 0.0)) for s in samples)
        return {"cIoU": inter / union if union > 0 else 0.0,
                "gIoU": sum(float(s.get("iou", 0.0)) for s in samples) / n if n else 0.0,
                "parse_rate": sum(float(s.get("parsed", 0.0)) for s in samples) / n if n else 0.0,
                "count": float(n)}

    def check_row(self, answer: str, fields: Mapping[str, Any]) -> list[tuple[str, str]]:
        out = []
        if answer and parse_contour(answer, self.representation, None) is None:
            out.append(("unparsable_answer", f"the answer {answer!r:.80} is not a {self.representation} Chebyshev "
                                             f"contour (task {self.name}); see vlmr1.tasks.seg"))
        if fields.get("mask") is None:
            out.append(("bad_field", "no 'mask' (COCO RLE of the object): seg_iou would score every answer 0"))
        else:
            try:
                rle_area(fields["mask"])
            except (ValueError, TypeError) as e:
                out.append(("bad_field", f"'mask' is not a valid COCO RLE: {e}"))
        return out

    def overlay(self, row: Mapping[str, Any], text: str) -> Overlay:
        try:
            true_mask = rle_to_mask(row["mask"])
        except (KeyError, ValueError, TypeError):
            true_mask = None
        polygon = answer_polygon(text, row)
        score = seg_score(text, row).iou if polygon is not None and true_mask is not None else None
        return Overlay(true_mask=true_mask, answer_polygon=polygon, score=score)


SEG = SegTask()
SEG_RADIAL = SegTask("seg_radial", "{question} " + THINK_THEN_ANSWER + " " + RADIAL_FORMAT, "radial")
# The demo's task: `seg` with the question alone. A tiny model reads no instructions (SFT teaches it the layout),
# and the 177-token seg instruction would triple every sequence, i.e. every CPU step.
SEG_DEMO = SegTask("seg_demo", "{question}")
