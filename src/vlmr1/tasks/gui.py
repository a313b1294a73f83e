"""``--task_type gui``: name the UI interaction defect a before/after screenshot pair shows, or "No Defect".

The classes are GUI-Testing-Arena's (GTArena); ``vlmr1 data gui-synthetic`` draws pairs of each. Answers are scored with
the ``accuracy`` reward: rows choose the comparison with ``accu_reward_method`` (the synthetic generator and GTArena
conversions write ``all_match``: whole-answer match ignoring case and extra whitespace), or the run passes
``--reward_method all_match``. Evaluation reports ``accuracy`` and ``parse_rate`` per file.
"""

from __future__ import annotations

from vlmr1.tasks.base import THINK_THEN_ANSWER, Task

NO_DEFECT = "No Defect"
NO_RESPONSE = "Operation No Response"
NAVIGATION = "Navigation Logic Error"
UNEXPECTED = "Unexpected Task Result"
KEYBOARD = "Virtual Keyboard Related Issue"
DEFECT_CLASSES = (NO_DEFECT, NO_RESPONSE, KEYBOARD, NAVIGATION, UNEXPECTED)


class GuiTask(Task):
    """A defect class for a screenshot pair; free text scored by the row's accuracy method."""

    name = "gui"
    template = "{question} " + THINK_THEN_ANSWER + " The answer is exactly one of: " + ", ".join(DEFECT_CLASSES) + "."


GUI = GuiTask()
