"""What a task is: how a row is asked, how its answer is read and scored, which rows are bad, and how it is drawn.

The base :class:`Task` is the free-text task (``--task_type default``): the answer is compared with the ``gpt`` value
by the row's accuracy method. A structured task (boxes, contours, detections, points) subclasses it and overrides the
hooks that differ; see ``vlmr1/tasks/point.py`` for a whole task in one file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vlmr1.data.schema import IMAGE_PLACEHOLDER
from vlmr1.rewards.accuracy import canonical_method, score_accuracy
from vlmr1.rewards.parsing import extract_answer

THINK_THEN_ANSWER = (
    "First output the thinking process in <think> </think> tags and then output the final answer in "
    "<answer> </answer> tags."
)


@dataclass
class Overlay:
    """What to draw over a row's first image, in original pixels: the truth in green, the answer in red.

    ``score`` is the task's headline per-sample number (``score_name``: IoU, hit, accuracy), None when the answer
    does not parse. ``true_labels`` / ``answer_labels`` name the boxes of the same index.
    """

    true_mask: Any = None  # (H, W) bool
    true_boxes: list[list[float]] = field(default_factory=list)
    true_labels: list[str] = field(default_factory=list)
    answer_polygon: Any = None  # (K, 2) x, y
    answer_boxes: list[list[float]] = field(default_factory=list)
    answer_labels: list[str] = field(default_factory=list)
    answer_points: list[list[float]] = field(default_factory=list)
    score: float | None = None
    score_name: str = "IoU"


def mean_metrics(samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Mean of every numeric per-sample metric (``parsed`` becomes ``parse_rate``)."""
    keys = [k for k, v in (samples[0].items() if samples else ()) if isinstance(v, int | float)]
    out = {k: sum(float(s[k]) for s in samples) / len(samples) for k in keys}
    if "parsed" in out:
        out["parse_rate"] = out.pop("parsed")
    return out


class Task:
    """One ``--task_type``. Subclass it and override what differs; instances may also override the class attributes.

    Attributes:
        name: the ``--task_type`` value.
        template: format string with ``{question}``, applied to the last user turn.
        default_rewards: reward names used when ``--reward_funcs`` is not given.
        rewards: reward functions this task brings; registering the task registers them under their ``__name__``.
        truth_fields: row fields holding this task's ground truth; ``vlmr1 draw`` picks the task of a row by them.
        vlm_module_rewards: what ``--is_reward_customized_from_vlm_module true`` swaps in for a reward name, as
            VLM-R1's model modules do (rec: ``accuracy`` -> ``rec_iou``, ``format`` -> ``rec_format``).
    """

    name: ClassVar[str] = "default"
    template: ClassVar[str] = "{question} " + THINK_THEN_ANSWER
    default_rewards: ClassVar[tuple[str, ...]] = ("accuracy", "format")
    rewards: ClassVar[tuple[Any, ...]] = ()
    truth_fields: ClassVar[tuple[str, ...]] = ()
    vlm_module_rewards: ClassVar[dict[str, str]] = {}

    def __init__(self, name: str | None = None, template: str | None = None,
                 default_rewards: Sequence[str] | None = None):
        if name is not None:
            self.name = name
        if template is not None:
            self.template = template
        if default_rewards is not None:
            self.default_rewards = tuple(default_rewards)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def format_question(self, question: str) -> str:
        """The question in the template. Leading ``<image>`` placeholders stay in front when the template puts text
        before the question (else "... this sentence describes: <image>the man in red")."""
        if self.template.startswith("{question}"):
            return self.template.format(question=question)
        rest, count = question.lstrip(), 0
        while rest.startswith(IMAGE_PLACEHOLDER):
            rest, count = rest[len(IMAGE_PLACEHOLDER):].lstrip(), count + 1
        return IMAGE_PLACEHOLDER * count + self.template.format(question=rest)

    def accuracy_method(self, row: Mapping[str, Any]) -> str:
        """The accuracy method the ``accuracy`` reward scores this row with: the row's ``accu_reward_method`` for a
        free-text task; a structured task returns its geometric score (``iou``, ``seg_iou``, ...) so that a box is
        never compared as text. Must not raise."""
        return canonical_method(row.get("accu_reward_method"))

    def sample_metrics(self, text: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """Metrics of one completion. Must not raise on any text: an unparsable answer is wrong, ``parsed = 0``.

        Args:
            text: the completion.
            row: the dataset row (``solution``, ``accu_reward_method``, ``original_sizes``, ``frame_sizes``, extras).
        """
        score = score_accuracy(text, row.get("solution"), self.accuracy_method(row), row)
        # a hit, not partial credit: the ``default`` method's Levenshtein ratio is a reward, not an accuracy
        return {"accuracy": float(score >= 1.0), "parsed": float(extract_answer(text) is not None)}

    def aggregate_metrics(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """One data file's metrics from its samples' :meth:`sample_metrics`."""
        return mean_metrics(samples)

    def check_row(self, answer: str, fields: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(kind, message)`` problems ``vlmr1 data check`` reports for a row (kinds: ``unparsable_answer``,
        ``bad_field``).

        Args:
            answer: the gold answer without ``<answer>`` tags ("" when empty: reported once, elsewhere).
            fields: the row's extra fields (``bbox``, ``mask``, ``objects``, ...).
        """
        return []

    def overlay(self, row: Mapping[str, Any], text: str) -> Overlay:
        """What to draw for ``text`` answering ``row``; a free-text task has no geometry, only its accuracy."""
        return Overlay(score=self.sample_metrics(text, row)["accuracy"], score_name="accuracy")
