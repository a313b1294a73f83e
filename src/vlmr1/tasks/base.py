"""Tasks: what ``--task_type`` selects — the question template and the default rewards.

A task keeps its prompt and its reward choice together; answer parsers for structured tasks (boxes, contours,
detections) live in the task's own module and register here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

THINK_THEN_ANSWER = (
    "First output the thinking process in <think> </think> tags and then output the final answer in "
    "<answer> </answer> tags."
)


def accuracy_sample_metrics(text: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """Per-sample metrics of a free-text task: ``accuracy`` (the row's accuracy method) and ``parsed``."""
    from vlmr1.rewards import extract_answer, score_accuracy

    return {"accuracy": score_accuracy(text, row.get("solution"), row.get("accu_reward_method")),
            "parsed": float(extract_answer(text) is not None)}


def mean_metrics(samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Mean of every numeric per-sample metric (``parsed`` becomes ``parse_rate``)."""
    keys = [k for k, v in (samples[0].items() if samples else ()) if isinstance(v, int | float)]
    out = {k: sum(float(s[k]) for s in samples) / len(samples) for k in keys}
    if "parsed" in out:
        out["parse_rate"] = out.pop("parsed")
    return out


@dataclass(frozen=True)
class Task:
    """One task type.

    Attributes:
        name: the ``--task_type`` value.
        question_template: format string with ``{question}``, applied to the last user turn.
        default_rewards: reward names used when ``--reward_funcs`` is not given.
        sample_metrics: ``(completion_text, row) -> dict`` for one evaluated sample; ``row`` is the dataset row
            (``solution``, ``accu_reward_method``, ``original_sizes``, ``frame_sizes``, extra fields). Must not raise
            on any text; an unparsable answer scores as wrong and reports ``parsed = 0``.
        aggregate_metrics: per-sample dicts of one file -> the file's metrics (e.g. mean IoU, cIoU, AP).
    """

    name: str
    question_template: str
    default_rewards: tuple[str, ...]
    sample_metrics: Callable[[str, Mapping[str, Any]], dict[str, Any]] = accuracy_sample_metrics
    aggregate_metrics: Callable[[Sequence[Mapping[str, Any]]], dict[str, float]] = mean_metrics

    def format_question(self, question: str) -> str:
        return self.question_template.format(question=question)


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add a task to the registry (a later registration with the same name replaces the earlier one)."""
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """Look up a task by ``--task_type``; the error lists the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown --task_type {name!r}; choose one of {sorted(TASKS)}") from None


register_task(Task("default", "{question} " + THINK_THEN_ANSWER, ("accuracy", "format")))
