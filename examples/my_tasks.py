"""A task of your own in one file: counting objects, with partial credit for near misses.

    vlmr1 train --task_type my_tasks:Counting --data_file_paths examples/counting.jsonl --image_folders examples/images ...

(run from ``examples/``, or with it on ``PYTHONPATH``). ``vlmr1 data check`` and ``vlmr1 eval`` take the same
``--task_type``; the task's reward ``count_closeness`` is registered with it, so ``--reward_funcs`` can name it.
"""

from vlmr1.rewards import per_sample
from vlmr1.rewards.parsing import answer_or_text, extract_last_number
from vlmr1.tasks import THINK_THEN_ANSWER, Task


@per_sample(name="count_closeness")
def count_closeness(text, solution=None, **row):
    """1 for the right count, falling linearly to 0 at half the true count (or 1) off."""
    guess, truth = extract_last_number(answer_or_text(text)), extract_last_number(answer_or_text(solution))
    if guess is None or truth is None:
        return 0.0
    return max(0.0, 1.0 - abs(guess - truth) / max(1.0, 0.5 * abs(truth)))


class Counting(Task):
    name = "counting"
    template = "{question} " + THINK_THEN_ANSWER + " The answer is one number."
    default_rewards = ("count_closeness", "format")
    rewards = (count_closeness,)

    def sample_metrics(self, text, row):
        closeness = count_closeness.scorer(text, **row)
        parsed = extract_last_number(answer_or_text(text)) is not None
        return {"exact": float(closeness == 1.0), "closeness": closeness, "parsed": float(parsed)}

    def check_row(self, answer, fields):
        if extract_last_number(answer) is None:
            return [("unparsable_answer", f"the answer {answer!r:.60} holds no count")]
        return []
