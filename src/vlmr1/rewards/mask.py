"""Segmentation-as-text rewards: ``seg_iou`` and ``seg_format`` (Chebyshev contour answers).

The model answers one contour in the ``<answer>`` tag, as JSON, in *its* coordinate frame (resized-input pixels
for Qwen2.5-VL, a 0-1000 grid for Qwen2-VL/Qwen3-VL):

* parametric: ``{"x": [c0, ..., c7], "y": [c0, ..., c7]}`` (see :class:`vlmr1.geometry.ParametricContour`);
* radial: ``{"centre": [cx, cy], "coeffs": [c0, ..., c7]}`` (see :class:`vlmr1.geometry.RadialContour`).

Which one, and how many coefficients, is read from the row's ``solution`` (what ``vlmr1 data coco`` wrote); without
a usable solution the answer's own keys decide and the length must be 8. The JSON must have exactly the
representation's keys, the right number of finite numbers (|v| <= 1e5), and nothing else.

The decoded outline (256 points) is mapped to original pixels with ``sx = original_w / frame_w``,
``sy = original_h / frame_h`` (row fields ``original_sizes``/``frame_sizes``, first image; an affine map of the
polygon, exact for both representations), rasterised with pycocotools *clipped to the image* (never a raster larger
than the image), and compared with the row's ``mask`` (COCO RLE, original pixels) in RLE space.

* ``seg_iou``: that IoU; 0 for an unparsable, wrong-representation, wrong-length or degenerate answer.
* ``seg_format``: 1 when the text has the R1 layout (``<think>...</think><answer>...</answer>``, as ``format``)
  AND the answer is a contour of the expected representation and length that encloses some area (>= 1 square
  unit of its frame: all-zero coefficients, a point or a line do not count), else 0. One reward for both, so a run
  with ``--reward_funcs seg_iou seg_format`` needs no separate ``format``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from .box import first_size, frame_to_original, load_json_answer
from .format import is_think_answer_format
from .parsing import answer_or_text, extract_answer
from .registry import per_sample, register_reward

__all__ = ["MAX_CONTOUR_ANSWER_CHARS", "NUM_POINTS", "SegScore", "answer_polygon", "contour_polygon", "contour_rle", "encloses_area", "expected_contour", "parse_contour",
           "seg_format_reward", "seg_iou_reward", "seg_score"]

DEFAULT_TERMS = 8
NUM_POINTS = 256  # outline samples rasterised per answer
# 16 coefficients at a few characters each fit in ~400 characters; anything this long is not a contour.
MAX_CONTOUR_ANSWER_CHARS = 4_000
KEYS = {("x", "y"): "parametric", ("centre", "coeffs"): "radial"}


def _classes():
    from vlmr1.geometry import ParametricContour, RadialContour  # lazy: numpy/scipy only when a seg reward runs

    return {"parametric": ParametricContour, "radial": RadialContour}


def parse_contour(text: Any, representation: str | None = None, terms: int | None = DEFAULT_TERMS):
    """Decode a contour answer (the ``<answer>`` content, or the whole text when there is no tag).

    Args:
        text: completion or solution text.
        representation: required ``"parametric"``/``"radial"``, or None to accept either (by keys).
        terms: required number of coefficients, or None for any 1..64.

    Returns:
        A ``ParametricContour``/``RadialContour`` in the answer's frame, or None for anything else.
    """
    answer = answer_or_text(text)
    if not answer or len(answer) > MAX_CONTOUR_ANSWER_CHARS:
        return None
    value = load_json_answer(answer)
    if not isinstance(value, dict):
        return None
    rep = KEYS.get(tuple(sorted(value)))
    if rep is None or (representation is not None and rep != representation):
        return None
    try:
        return _classes()[rep].from_json_dict(value, terms)
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


def _mask_rle(mask: Any) -> dict:
    """The row's ``mask`` as a pycocotools RLE; raises ValueError when it is not a COCO RLE."""
    if not isinstance(mask, Mapping) or "size" not in mask or "counts" not in mask:
        raise ValueError(f"row 'mask' must be a COCO RLE {{'size': [H, W], 'counts': ...}}, got {mask!r:.80}")
    from vlmr1.geometry.masks import _as_rle

    return _as_rle(mask)


def contour_polygon(contour, sx: float = 1.0, sy: float = 1.0, num_points: int = NUM_POINTS):
    """The outline as (num_points, 2) x, y after scaling by (sx, sy) (frame -> original pixels).

    Decoded with the contour's own ``to_polygon``, so the converter's ``fit_iou`` and this reward agree exactly
    (0.1-px answers put vertices on pixel centres, where any other evaluation order could flip a pixel).
    """
    import numpy as np

    with np.errstate(all="ignore"):
        return contour.to_polygon(num_points) * np.array([sx, sy])


def contour_rle(contour, height: int, width: int, sx: float = 1.0, sy: float = 1.0,
                num_points: int = NUM_POINTS) -> dict:
    """Rasterise a contour given in the model's frame to an (height, width) RLE, clipped to the image.

    Args:
        contour: ``ParametricContour`` or ``RadialContour`` in the model's frame.
        height, width: original image size (the raster never exceeds it).
        sx, sy: frame -> original scale factors.

    Returns:
        pycocotools RLE (bytes counts); empty for a degenerate or off-image outline.
    """
    from vlmr1.geometry import polygon_to_rle

    return polygon_to_rle(contour_polygon(contour, sx, sy, num_points), height, width)


def answer_polygon(text: str, row: Mapping[str, Any], num_points: int = NUM_POINTS):
    """Decode a completion and map it to the pixels of the row's ``mask`` (or of the original image).

    Args:
        text: completion (or solution) text.
        row: ``solution``, ``original_sizes``, ``frame_sizes`` and optionally ``mask``.

    Returns:
        (num_points, 2) polygon, or None when the answer is not a contour of the expected shape.
    """
    sx, sy = _scales(row)
    representation, terms = expected_contour(row)
    contour = parse_contour(text, representation, terms)
    return None if contour is None else contour_polygon(contour, sx, sy, num_points)


def _scales(row: Mapping[str, Any]) -> tuple[float, float]:
    """frame -> mask-grid scale factors (frame -> original image, then image -> mask if they differ)."""
    sx, sy, _ = frame_to_original(row.get("original_sizes"), row.get("frame_sizes"))
    original = first_size(row.get("original_sizes"))
    mask = row.get("mask")
    if original is not None and isinstance(mask, Mapping) and isinstance(mask.get("size"), (list, tuple)):
        height, width = (float(v) for v in mask["size"])
        # the mask and the image disagree (e.g. a resized copy of the image): rescale so pixels still line up
        sx, sy = sx * width / original[0], sy * height / original[1]
    return sx, sy


class SegScore(NamedTuple):
    """One answer's overlap with the true mask, in original pixels."""

    intersection: float
    union: float
    iou: float
    parsed: bool


def seg_score(text: str, row: Mapping[str, Any]) -> SegScore:
    """Score one completion against the row's ``mask``.

    Args:
        text: completion text.
        row: fields ``mask``, ``solution``, ``original_sizes``, ``frame_sizes``.

    Returns:
        :class:`SegScore`; an unparsable answer gives intersection 0, union = the true mask's area, parsed False.

    Raises:
        ValueError: the row has no valid ``mask`` or sizes (a data problem, not a model one).
    """
    from pycocotools import mask as mask_utils

    from vlmr1.geometry import polygon_to_rle

    truth = _mask_rle(row.get("mask"))
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


@register_reward("seg_iou")
@per_sample
def seg_iou_reward(text: str, **row: Any) -> float:
    """IoU of the answered contour (model frame -> original pixels) with ``mask``; 0 if unparsable/degenerate.

    Args:
        text: completion text.
        **row: the sample's fields (``mask``, ``solution``, ``original_sizes``, ``frame_sizes``).

    Returns:
        IoU in [0, 1].
    """
    if row.get("mask") is None:
        return 0.0  # not a segmentation row
    return seg_score(text, row).iou


@register_reward("seg_format")
@per_sample
def seg_format_reward(text: str, **row: Any) -> float:
    """1.0 for a think/answer layout whose answer is a contour of the expected representation and length.

    Args:
        text: completion text.
        **row: the sample's fields (``solution`` decides representation and length).

    Returns:
        1.0 or 0.0.
    """
    if not is_think_answer_format(text):
        return 0.0
    representation, terms = expected_contour(row)
    contour = parse_contour(extract_answer(text), representation, terms)
    return 1.0 if contour is not None and encloses_area(contour) else 0.0


def encloses_area(contour, min_area: float = 1.0) -> bool:
    """True when the decoded outline encloses at least ``min_area`` square units of its own frame (not a point,
    not a line), so a model cannot collect the format reward with all-zero coefficients."""
    import numpy as np

    from vlmr1.geometry import signed_area

    polygon = contour_polygon(contour)
    with np.errstate(all="ignore"):
        area = abs(signed_area(polygon))
    return bool(np.isfinite(area) and area >= min_area)
