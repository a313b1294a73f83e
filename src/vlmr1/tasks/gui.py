"""The ``gui`` task: name the UI interaction defect shown by a before/after screenshot pair, or "No Defect".

Answers are scored with the ``accuracy`` reward; rows choose the comparison with ``accu_reward_method`` (the
synthetic generator and GTArena conversions write ``all_match``: whole-answer match ignoring case and extra
whitespace), or the run passes ``--reward_method all_match``. The template lists the GTArena classes, which
``vlmr1 data gui-synthetic`` uses too. Evaluation reports ``accuracy`` and ``parse_rate`` per file.
"""

from __future__ import annotations

from vlmr1.data.gui_synthetic import DEFECT_CLASSES
from vlmr1.tasks.base import THINK_THEN_ANSWER, register_task
from vlmr1.tasks.rec import ImagesFirstTask

GUI_TEMPLATE = ("{question} " + THINK_THEN_ANSWER + " The answer is exactly one of: "
                + ", ".join(DEFECT_CLASSES) + ".")

GUI_TASK = register_task(ImagesFirstTask("gui", GUI_TEMPLATE, ("accuracy", "format")))
