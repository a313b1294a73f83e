"""Tasks: the single plug-in. A task is one module holding its question template, answer parser, frame-aware
scoring, rewards, eval metrics, the row checks of ``vlmr1 data check`` and how a row and an answer are drawn.

Built-in tasks are the modules of this package: every module-level :class:`Task` instance in them is registered the
first time a task or reward is looked up, so adding a task is adding one file. A user's task loads from outside the
package like a user's reward does: ``--task_type my_pkg.tasks:Counting`` (a ``Task`` subclass or instance).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Mapping
from typing import Any

from vlmr1.plugins import load_object
from vlmr1.rewards.accuracy import score_accuracy
from vlmr1.rewards.registry import REWARD_REGISTRY, register_reward
from vlmr1.tasks.base import THINK_THEN_ANSWER, Overlay, Task, mean_metrics

logger = logging.getLogger(__name__)
TASKS: dict[str, Task] = {}
_builtin_loaded = False
_FREE_TEXT = Task()  # rows of an unknown task: scored by their own accuracy method
_logged_choices: set[tuple[str, str, str]] = set()


def register_task(task: Task | type[Task]) -> Task:
    """Add a task (a later one with the same name replaces it) and register its rewards under their names."""
    if isinstance(task, type):
        task = task()
    if not isinstance(task, Task):
        raise TypeError(f"a task must be a vlmr1.tasks.Task (subclass or instance), got {type(task).__name__}")
    for reward in task.rewards:
        if REWARD_REGISTRY.get(reward.__name__) is not reward:
            register_reward(reward.__name__, reward, overwrite=True)
    TASKS[task.name] = task
    return task


def load_builtin_tasks() -> None:
    """Register the Task instances defined at module level in this package's modules (once)."""
    global _builtin_loaded
    if _builtin_loaded:
        return
    _builtin_loaded = True
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Task):
                register_task(value)


def get_task(spec: str | Task) -> Task:
    """The task for a ``--task_type``: a registered name, or ``package.module:TaskClass`` (imported and registered).

    Raises:
        ValueError: unknown name or unusable import path; the message lists the known tasks.
    """
    if isinstance(spec, Task):
        return spec
    load_builtin_tasks()
    if spec in TASKS:
        return TASKS[spec]
    known = ", ".join(sorted(TASKS))
    if isinstance(spec, str) and ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            value = load_object(module_name, attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"--task_type {spec!r}: cannot load {attr!r} from {module_name!r} ({e}); "
                             f"built-in tasks: {known}") from None
        try:
            return register_task(value)
        except TypeError as e:
            raise ValueError(f"--task_type {spec!r}: {e}") from None
    raise ValueError(f"unknown --task_type {spec!r}; choose one of {known}, or give your own as "
                     "package.module:TaskClass")


def task_for_row(row, answer: str) -> Task:
    """The registered task that holds the row's ground truth (its ``truth_fields``) and reads its gold ``answer``
    (a COCO line has ``mask`` and ``bbox`` but a contour answer: seg, not rec); ``default`` when none does."""
    load_builtin_tasks()
    candidates = [t for t in TASKS.values() if t.truth_fields and all(row.get(f) is not None for f in t.truth_fields)]
    for task in candidates:
        if not any(kind == "unparsable_answer" for kind, _ in task.check_row(answer, row)):
            return task
    return candidates[0] if candidates else TASKS["default"]


def row_accuracy(text: str, row: Mapping[str, Any]) -> float:
    """The ``accuracy`` reward of one completion: the row's task (``task_type``) picks the method
    (:meth:`Task.accuracy_method`), e.g. IoU for a REC row, never a text match of its box. Each (task, row method,
    chosen method) is logged once per process."""
    load_builtin_tasks()
    task = TASKS.get(row.get("task_type")) or _FREE_TEXT
    method = task.accuracy_method(row)
    choice = (task.name, str(row.get("accu_reward_method") or "default"), method)
    if choice not in _logged_choices:
        _logged_choices.add(choice)
        logger.info("accuracy: task %r scores rows with accu_reward_method %r by %r", *choice)
    return score_accuracy(text, row.get("solution"), method, row)


__all__ = ["TASKS", "THINK_THEN_ANSWER", "Overlay", "Task", "get_task", "load_builtin_tasks", "mean_metrics",
           "register_task", "row_accuracy", "task_for_row"]
