"""Per-task question templates, answer parsers and default rewards."""

from vlmr1.tasks.base import TASKS, Task, get_task, register_task

# Importing the task modules registers them (and the rewards they use: rec_iou, rec_accuracy, od_ap, ...).
from vlmr1.tasks import gui, od, rec, seg  # noqa: E402,F401  isort: skip

__all__ = ["TASKS", "Task", "get_task", "register_task"]
