"""Referring-expression comprehension (REC) rewards: ``rec_iou`` and ``rec_accuracy``.

The model answers one box ``[x1, y1, x2, y2]`` in *its* coordinate frame (resized-input pixels for Qwen2.5-VL,
a 0-1000 grid for Qwen2-VL/Qwen3-VL). The data layer puts that frame's extent on every row as ``frame_sizes``
next to the image's ``original_sizes``; :func:`frame_to_original` maps the answer to original pixels with
``sx = original_w / frame_w``, ``sy = original_h / frame_h`` (the only place the per-family rule is applied),
and the IoU is taken there against the ground truth.

Row fields read:

* ``bbox``: ground truth ``[x1, y1, x2, y2]`` in original pixels (written by ``vlmr1 data refcoco``); when absent,
  the box parsed from ``solution`` is used (also original pixels).
* ``original_sizes``, ``frame_sizes``: ``[[w, h], ...]`` per image; the first image is used. Missing
  ``frame_sizes`` means the model answers in original pixels.

Answer parsing (:func:`parse_box`), tried in order on the ``<answer>`` content (the whole text without tags):

1. JSON (optionally inside a ```` ```json ```` fence, or the outermost ``[...]``/``{...}`` span of the text):
   ``[x1, y1, x2, y2]``, ``{"bbox_2d": [...]}`` (or ``"bbox"``), or a one-element list of either;
2. exactly one bracketed group of four numbers in the text, ``[a, b, c, d]`` or ``(a, b, c, d)``;
3. exactly four numbers in the whole text (e.g. ``x1=10 y1=20 x2=30 y2=40``) -- "the last four numbers", but
   only when nothing else could be meant: with five or more numbers, or several groups, the answer is ambiguous
   and does not parse.

A box that does not parse, has non-finite values, is degenerate (``x2 <= x1`` or ``y2 <= y1``, swapped corners
included) or is huge (a coordinate more than one frame extent outside the frame) scores 0.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from vlmr1.geometry.boxes import box_iou_pairwise

from .parsing import answer_or_text
from .registry import per_sample, register_reward

# A box answer longer than this is not a box; also bounds the work on adversarial text.
MAX_BOX_ANSWER_CHARS = 20_000
# How far outside the frame a coordinate may lie, in frame extents, before the box counts as "huge".
HUGE_MARGIN = 1.0
ACCURACY_IOU = 0.5

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
# Standalone numbers: not glued to a word ("x1", "2nd") or to another number.
_NUMBER_RE = re.compile(rf"(?<![\w.]){_NUM}(?!\w)")
_GROUP_RE = re.compile(rf"[\[(]\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*[\])]")
_FENCE_RE = re.compile(r"```[A-Za-z]*[ \t]*\n?")


def _strip_fence(text: str) -> str:
    # Qwen models often wrap JSON in ```json ... ```; drop the fences, keep what is inside.
    return _FENCE_RE.sub("", text) if "```" in text else text


def load_json_answer(text: str) -> Any:
    """Parse the JSON an answer holds: the whole (fence-stripped) text, else its outermost bracketed span.

    Args:
        text: Answer text.

    Returns:
        The decoded value, or None when neither attempt is valid JSON (deep nesting included).
    """
    text = _strip_fence(text).strip()
    candidates = [text]
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if starts:
        start = min(starts)
        end = max(text.rfind("]"), text.rfind("}"))
        if end > start and (start, end) != (0, len(text) - 1):
            candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the C parser's limit
            continue
    return None


def _four_numbers(value: Any) -> list[float] | None:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    try:
        return [float(v) for v in value]
    except OverflowError:  # a JSON integer beyond float range
        return None


def box_from_json(value: Any) -> list[float] | None:
    """Extract one box from decoded JSON: a 4-number list, a dict with ``bbox_2d``/``bbox``, or a 1-element list.

    Args:
        value: Decoded JSON.

    Returns:
        ``[x1, y1, x2, y2]`` as floats (not yet validated), or None.
    """
    if isinstance(value, dict):
        for key in ("bbox_2d", "bbox"):
            if key in value:
                return _four_numbers(value[key])
        return None
    box = _four_numbers(value)
    if box is not None:
        return box
    if isinstance(value, list) and len(value) == 1:
        return box_from_json(value[0])
    return None


def parse_box(answer: str) -> list[float] | None:
    """Parse one box from an answer with the rules in the module docstring.

    Args:
        answer: The ``<answer>`` content (or any text).

    Returns:
        ``[x1, y1, x2, y2]`` as floats in the model's frame (possibly non-finite or degenerate: check with
        :func:`is_valid_box`), or None when no unambiguous box is found.
    """
    if not isinstance(answer, str) or not answer.strip() or len(answer) > MAX_BOX_ANSWER_CHARS:
        return None
    box = box_from_json(load_json_answer(answer))
    if box is not None:
        return box
    groups = _GROUP_RE.findall(answer)
    if len(groups) == 1:
        return [float(v) for v in groups[0]]
    if groups:
        return None  # several candidate boxes: ambiguous
    numbers = _NUMBER_RE.findall(answer)
    if len(numbers) == 4:
        return [float(v) for v in numbers]
    return None


def first_size(sizes: Any) -> tuple[float, float] | None:
    """The ``(w, h)`` of the first image from a row's ``original_sizes``/``frame_sizes`` (``[[w, h], ...]``).

    Args:
        sizes: ``[[w, h], ...]``, a bare ``[w, h]``, or None.

    Returns:
        ``(w, h)`` as floats, or None when absent.

    Raises:
        ValueError: Present but not two positive finite numbers.
    """
    if sizes is None or (isinstance(sizes, (list, tuple)) and not sizes):
        return None
    if isinstance(sizes, (list, tuple)) and isinstance(sizes[0], (list, tuple)):
        sizes = sizes[0]
    if not isinstance(sizes, (list, tuple)) or len(sizes) != 2:
        raise ValueError(f"expected [w, h], got {sizes!r:.80}")
    try:
        w, h = float(sizes[0]), float(sizes[1])
    except (TypeError, ValueError, OverflowError):  # None, "a", an integer beyond float range
        raise ValueError(f"image size must be two numbers, got {sizes!r:.80}") from None
    if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
        raise ValueError(f"image size must be positive and finite, got {sizes!r:.80}")
    return w, h


def frame_to_original(original_sizes: Any, frame_sizes: Any) -> tuple[float, float, tuple[float, float] | None]:
    """Scale factors from the model's frame to original pixels for a row's first image.

    ``sx = original_w / frame_w`` and ``sy = original_h / frame_h``. The data layer has already applied the model
    family's rule when it computed ``frame_sizes`` (resized input for Qwen2.5-VL, ``[1000, 1000]`` for a 0-1000
    grid), so the same formula serves every family.

    Args:
        original_sizes: the row's ``original_sizes``.
        frame_sizes: the row's ``frame_sizes`` (None: the model answers in original pixels).

    Returns:
        ``(sx, sy, frame_extent)``; ``frame_extent`` is the frame's ``(w, h)`` (None when neither size is known).
    """
    original = first_size(original_sizes)
    frame = first_size(frame_sizes)
    if original is None or frame is None:
        return 1.0, 1.0, frame or original
    return original[0] / frame[0], original[1] / frame[1], frame


def is_valid_box(box: Sequence[float] | None, extent: tuple[float, float] | None = None) -> bool:
    """True for a finite, non-degenerate box that lies within one frame extent of the frame.

    Args:
        box: ``[x1, y1, x2, y2]``.
        extent: ``(w, h)`` of the frame the box is expressed in; None skips the "huge" check.

    Returns:
        Whether the box can be scored.
    """
    if box is None or len(box) != 4 or not all(math.isfinite(v) for v in box):
        return False
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        return False
    if extent is not None:
        w, h = extent
        if min(x1, x2) < -HUGE_MARGIN * w or max(x1, x2) > (1 + HUGE_MARGIN) * w:
            return False
        if min(y1, y2) < -HUGE_MARGIN * h or max(y1, y2) > (1 + HUGE_MARGIN) * h:
            return False
    return True


def scale_box(box: Sequence[float], sx: float, sy: float) -> list[float]:
    """Multiply a box's x coordinates by ``sx`` and y coordinates by ``sy``.

    Args:
        box: ``[x1, y1, x2, y2]``.
        sx, sy: Scale factors (from :func:`frame_to_original`).

    Returns:
        The scaled box.
    """
    return [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy]


def ground_truth_box(bbox: Any = None, solution: Any = None) -> list[float]:
    """The row's ground-truth box in original pixels: ``bbox``, else the box in ``solution``.

    Args:
        bbox: The row's ``bbox`` field.
        solution: The row's ``solution``.

    Returns:
        ``[x1, y1, x2, y2]``.

    Raises:
        ValueError: No usable ground truth.
    """
    box = _four_numbers(bbox) if bbox is not None else parse_box(answer_or_text(solution))
    if not is_valid_box(box):
        raise ValueError(f"no valid ground-truth box (bbox={bbox!r:.60}, solution={solution!r:.60})")
    return box


def predicted_box(text: str, original_sizes: Any = None, frame_sizes: Any = None) -> list[float] | None:
    """The completion's box mapped to original pixels, or None when it does not parse or is invalid.

    Args:
        text: Completion text.
        original_sizes, frame_sizes: The row's fields.

    Returns:
        ``[x1, y1, x2, y2]`` in original pixels, or None.
    """
    box = parse_box(answer_or_text(text))
    sx, sy, extent = frame_to_original(original_sizes, frame_sizes)
    if not is_valid_box(box, extent):
        return None
    return scale_box(box, sx, sy)


def rec_iou_value(text: str, row: Mapping[str, Any]) -> tuple[float, bool]:
    """IoU of a completion's box with the row's ground truth, and whether a valid box was parsed.

    Args:
        text: Completion text.
        row: The sample's fields (see the module docstring).

    Returns:
        ``(iou, parsed)``; ``(0.0, False)`` when no valid box was found.

    Raises:
        ValueError: The row has no usable ground truth or image sizes are invalid.
    """
    gt = ground_truth_box(row.get("bbox"), row.get("solution"))
    pred = predicted_box(text, row.get("original_sizes"), row.get("frame_sizes"))
    if pred is None:
        return 0.0, False
    return float(box_iou_pairwise(pred, gt)), True


@register_reward("rec_iou")
@per_sample
def rec_iou_reward(text: str, **row: Any) -> float:
    """IoU of the answered box (model frame -> original pixels) with ``bbox``; 0 if unparsable/invalid.

    Args:
        text: Completion text.
        **row: The sample's fields (``bbox`` or ``solution``, ``original_sizes``, ``frame_sizes``).

    Returns:
        IoU in [0, 1].
    """
    if row.get("bbox") is None and row.get("solution") is None:
        return 0.0  # not a REC row; nothing to compare with
    return rec_iou_value(text, row)[0]


@register_reward("rec_accuracy")
@per_sample
def rec_accuracy_reward(text: str, **row: Any) -> float:
    """1.0 when the answered box has IoU >= 0.5 with ``bbox`` (Acc@0.5), else 0.0.

    Args:
        text: Completion text.
        **row: The sample's fields (``bbox`` or ``solution``, ``original_sizes``, ``frame_sizes``).

    Returns:
        1.0 or 0.0.
    """
    if row.get("bbox") is None and row.get("solution") is None:
        return 0.0
    return 1.0 if rec_iou_value(text, row)[0] >= ACCURACY_IOU else 0.0
