"""``--task_type default``: a free-text answer compared with the ``gpt`` value by the row's accuracy method.

The behaviour is the base :class:`vlmr1.tasks.Task`'s: accuracy and parse rate per file, rewards ``accuracy`` and
``format``. Counting, multiple choice, yes/no, math and other VLM-R1 ``default`` data use it.
"""

from vlmr1.tasks.base import Task

DEFAULT = Task()
