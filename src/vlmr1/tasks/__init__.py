"""Per-task question templates, answer parsers and default rewards."""

from vlmr1.tasks.base import TASKS, Task, get_task, register_task

__all__ = ["TASKS", "Task", "get_task", "register_task"]
