"""Supervised warm start of the demo: TRL's ``SFTTrainer`` on the jsonl's ``gpt`` answers.

The rows come from the same loader as GRPO (:mod:`vlmr1.data.loading`: lazy images, the task's question template,
the model's coordinate frame), plus a ``completion`` column: the answer the model must learn, after an empty
``<think></think>`` so that it already has the layout ``seg_format`` rewards. TRL's vision-language collator
then renders prompt and completion with the chat template and computes the loss on the completion only.
"""

from __future__ import annotations

import time
from typing import Any

from datasets import Dataset
from transformers import TrainerCallback

from vlmr1.data.loading import LoadedData, make_row_transform

# The tiny model thinks nothing worth writing; the empty block keeps the R1 layout the format reward checks.
THINK_PREFIX = "<think></think>"


def completion_messages(solution: str) -> list[dict[str, Any]]:
    """The assistant turn TRL's SFT collator trains on: ``<think></think>`` + the jsonl answer."""
    return [{"role": "assistant", "content": [{"type": "text", "text": THINK_PREFIX + solution}]}]


def sft_dataset(data: LoadedData, format_question=None, frame=None) -> Dataset:
    """The GRPO rows of ``data`` with a ``completion`` column, decoded lazily.

    Args:
        data: from :func:`vlmr1.data.loading.load_sources`.
        format_question: the task's question template (as in GRPO, so both stages see the same prompts).
        frame: the model's coordinate frame (rows carry ``frame_sizes``).
    Returns:
        A ``datasets.Dataset`` whose rows hold ``prompt``, ``images``, ``completion`` and the extra fields.
    """
    base = make_row_transform(data.extra_keys, format_question, frame)

    def transform(batch: dict[str, list]) -> dict[str, list]:
        out = base(batch)
        out["completion"] = [completion_messages(s) for s in out["solution"]]
        return out

    return Dataset.from_dict(data.rows).with_transform(transform)


class TimeBudget(TrainerCallback):
    """Stop training once ``seconds`` of wall time have passed (a slow machine trains fewer steps, not longer)."""

    def __init__(self, seconds: float | None):
        self.seconds, self.start, self.stopped_at = seconds, None, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.seconds is not None and time.monotonic() - self.start > self.seconds:
            control.should_training_stop = True
            self.stopped_at = state.global_step
        return control


def train_sft(model, processor, train_dataset: Dataset, args, time_budget_s: float | None = None):
    """Run TRL's SFTTrainer on the in-memory model.

    Args:
        model: the model to train in place.
        processor: its processor.
        train_dataset: from :func:`sft_dataset`.
        args: a ``trl.SFTConfig`` (e.g. parsed from ``recipes/demo/seg_sft.yaml``).
        time_budget_s: stop early after this many seconds (None: run ``max_steps``).
    Returns:
        ``(trainer, budget)``: the finished trainer (``trainer.state.log_history`` has the loss curve) and the
        :class:`TimeBudget` (``stopped_at`` is the step it cut training at, or None).
    """
    from trl import SFTTrainer

    # Rows keep their extra fields (mask, bbox, ...): the collator reads only prompt, completion and images.
    args.remove_unused_columns = False
    budget = TimeBudget(time_budget_s)
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_dataset, processing_class=processor,
                         callbacks=[budget])
    trainer.train()
    return trainer, budget
