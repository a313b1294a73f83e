"""``--task_type rec`` (referring-expression comprehension): the one box a sentence describes, rewarded by IoU.

Rows carry ``bbox`` (ground truth ``[x1, y1, x2, y2]``, original pixels, as ``vlmr1 data refcoco`` writes it; without
it the box in the ``gpt`` answer is the truth). The model answers one box in *its* frame, mapped to original pixels by
:class:`vlmr1.models.frames.AnswerScale`.

Answer parsing (:func:`parse_box`), tried in order on the ``<answer>`` content (the whole text without tags):

1. JSON (optionally fenced, or the outermost ``[...]``/``{...}`` span): ``[x1, y1, x2, y2]``, ``{"bbox_2d": [...]}``
   (or ``"bbox"``), or a one-element list of either;
2. exactly one bracketed group of four numbers, ``[a, b, c, d]`` or ``(a, b, c, d)``;
3. exactly four numbers in the whole text (``x1=10 y1=20 x2=30 y2=40``): with more numbers, or several groups, the
   answer is ambiguous and does not parse.

A box that does not parse, is non-finite, degenerate (``x2 <= x1``, swapped corners included) or huge (a coordinate
more than one frame extent outside the frame) scores 0. Rewards: ``rec_iou`` (the IoU), ``rec_accuracy``
(IoU >= 0.5) and ``rec_format`` (the layout holding one box). The ``accuracy`` reward scores a REC row by the
``iou`` method (the same IoU), as VLM-R1's model modules score ``accuracy`` for ``--task_type rec``; ``iou`` also
serves rows of any task (``accu_reward_method: iou``). Metrics per file: ``acc@0.5``, ``mean_iou``, ``parse_rate``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from vlmr1.geometry.boxes import box_iou_pairwise, is_valid_box
from vlmr1.models.frames import AnswerScale
from vlmr1.rewards.accuracy import register_accuracy_method
from vlmr1.rewards.format import is_think_answer_format
from vlmr1.rewards.parsing import answer_or_text, extract_answer, load_json_answer
from vlmr1.rewards.registry import per_sample
from vlmr1.tasks.base import THINK_THEN_ANSWER, Overlay, Task

# A box answer longer than this is not a box; also bounds the work on adversarial text.
MAX_BOX_ANSWER_CHARS = 20_000
ACCURACY_IOU = 0.5

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
# Standalone numbers: not glued to a word ("x1", "2nd") or to another number.
_NUMBER_RE = re.compile(rf"(?<![\w.]){_NUM}(?!\w)")
_GROUP_RE = re.compile(rf"[\[(]\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*[\])]")


def four_numbers(value: Any) -> list[float] | None:
    """``value`` as four floats when it is a list of four JSON numbers (not bools), else None."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    try:
        return [float(v) for v in value]
    except OverflowError:  # a JSON integer beyond float range
        return None


def box_from_json(value: Any) -> list[float] | None:
    """One box from decoded JSON: a 4-number list, a dict with ``bbox_2d``/``bbox``, or a 1-element list of either."""
    if isinstance(value, dict):
        for key in ("bbox_2d", "bbox"):
            if key in value:
                return four_numbers(value[key])
        return None
    box = four_numbers(value)
    if box is not None:
        return box
    if isinstance(value, list) and len(value) == 1:
        return box_from_json(value[0])
    return None


def parse_box(answer: str) -> list[float] | None:
    """One box from an answer by the rules in the module docstring, in the model's frame (not yet validated:
    check with :func:`vlmr1.geometry.is_valid_box`), or None when no unambiguous box is found."""
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


def ground_truth_box(bbox: Any = None, solution: Any = None) -> list[float]:
    """The row's true box in original pixels: ``bbox``, else the box in ``solution``.

    Raises:
        ValueError: no usable ground truth.
    """
    box = four_numbers(bbox) if bbox is not None else parse_box(answer_or_text(solution))
    if not is_valid_box(box):
        raise ValueError(f"no valid ground-truth box (bbox={bbox!r:.60}, solution={solution!r:.60})")
    return box


def predicted_box(text: str, row: Mapping[str, Any]) -> list[float] | None:
    """The completion's box in original pixels, or None when it does not parse or is invalid in its frame."""
    box = parse_box(answer_or_text(text))
    scale = AnswerScale.of_row(row)
    return scale.box(box) if is_valid_box(box, scale.extent) else None


def rec_iou_value(text: str, row: Mapping[str, Any]) -> tuple[float, bool]:
    """``(IoU with the true box, whether a valid box was parsed)``; ``(0.0, False)`` for no valid box.

    Raises:
        ValueError: the row has no usable ground truth or its image sizes are invalid.
    """
    truth = ground_truth_box(row.get("bbox"), row.get("solution"))
    pred = predicted_box(text, row)
    if pred is None:
        return 0.0, False
    return float(box_iou_pairwise(pred, truth)), True


@per_sample(name="rec_iou")
def rec_iou_reward(text: str, **row: Any) -> float:
    """IoU of the answered box (model frame -> original pixels) with ``bbox``; 0 if unparsable or invalid."""
    if row.get("bbox") is None and row.get("solution") is None:
        return 0.0  # not a REC row; nothing to compare with
    return rec_iou_value(text, row)[0]


@per_sample(name="rec_accuracy")
def rec_accuracy_reward(text: str, **row: Any) -> float:
    """1.0 when the answered box has IoU >= 0.5 with ``bbox`` (Acc@0.5), else 0.0."""
    if row.get("bbox") is None and row.get("solution") is None:
        return 0.0
    return 1.0 if rec_iou_value(text, row)[0] >= ACCURACY_IOU else 0.0


@per_sample(name="rec_format")
def rec_format_reward(text: str, **row: Any) -> float:
    """1.0 for the think/answer layout (as ``format``) whose answer is one valid box, else 0.0 (VLM-R1's
    ``format_reward_rec``, with vlmr1's box reading: any unambiguous form, not only ``{..."bbox_2d": [...]...}``)."""
    return 1.0 if is_think_answer_format(text) and is_valid_box(parse_box(extract_answer(text) or "")) else 0.0


@register_accuracy_method("iou")
def iou_method(pred: str, gold: str, row: Mapping[str, Any]) -> float:
    """IoU of the answered box with the row's ``bbox`` (else the box in the gold answer), frame-mapped."""
    return rec_iou_value(pred, row)[0]


class RecTask(Task):
    """One box per question, in the model's frame."""

    name = "rec"
    template = ("Please provide the bounding box coordinate of the region this sentence describes: {question}. "
                + THINK_THEN_ANSWER + " Output the box in the answer as [x1, y1, x2, y2].")
    default_rewards = ("rec_iou", "format")
    rewards = (rec_iou_reward, rec_accuracy_reward, rec_format_reward)
    truth_fields = ("bbox",)
    vlm_module_rewards = {"accuracy": "rec_iou", "format": "rec_format"}

    def accuracy_method(self, row: Mapping[str, Any]) -> str:
        return "iou"

    def sample_metrics(self, text: str, row: Mapping[str, Any]) -> dict[str, Any]:
        try:
            value, parsed = rec_iou_value(text, row)
        except (ValueError, TypeError):  # an unusable row scores as a miss
            value, parsed = 0.0, False
        return {"iou": value, "acc@0.5": float(value >= ACCURACY_IOU), "parsed": float(parsed)}

    def aggregate_metrics(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        n = len(samples)
        if not n:
            return {"acc@0.5": 0.0, "mean_iou": 0.0, "parse_rate": 0.0, "num_samples": 0}
        return {"acc@0.5": sum(float(s["acc@0.5"]) for s in samples) / n,
                "mean_iou": sum(float(s["iou"]) for s in samples) / n,
                "parse_rate": sum(float(s["parsed"]) for s in samples) / n,
                "num_samples": n}

    def check_row(self, answer: str, fields: Mapping[str, Any]) -> list[tuple[str, str]]:
        out = []
        if answer and not is_valid_box(parse_box(answer)):
            out.append(("unparsable_answer", f"the answer {answer!r:.80} is not one box [x1, y1, x2, y2] with "
                                             "x2 > x1 and y2 > y1"))
        if fields.get("bbox") is not None:
            try:
                ground_truth_box(fields["bbox"], None)
            except (ValueError, TypeError) as e:
                out.append(("bad_field", f"'bbox': {e}"))
        return out

    def overlay(self, row: Mapping[str, Any], text: str) -> Overlay:
        try:
            truth = [ground_truth_box(row.get("bbox"), row.get("solution"))]
        except (ValueError, TypeError):
            truth = []
        pred = predicted_box(text, row)
        score = float(box_iou_pairwise(pred, truth[0])) if pred is not None and truth else None
        return Overlay(true_boxes=truth, answer_boxes=[pred] if pred is not None else [], score=score)


REC = RecTask()
