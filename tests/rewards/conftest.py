"""The reward property tests iterate over every registered reward: load the built-in tasks, which register theirs."""

from vlmr1.tasks import load_builtin_tasks

load_builtin_tasks()
