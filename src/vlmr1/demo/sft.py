"""Supervised warm start of the demo: TRL's ``SFTTrainer`` on the jsonl's ``gpt`` answers.

The rows come from the same loader as GRPO (:mod:`vlmr1.data.loading`: lazy images, the task's question template,
the model's coordinate frame), plus a ``completion`` column: the answer the model must learn, after an empty
``<think></think>`` so that it already has the layout ``seg_format`` rewards. TRL's vision-language collator
then renders prompt and completion with the chat template and computes the loss on the completion only.
"""

from __future__ import annotations

import math
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
    """Train for ``seconds`` of wall time or ``max_steps``, whichever comes first, optionally with a schedule.

    A laptop and a busy server then both finish on time, each with a complete schedule. Progress is the larger
    of the time and the step fractions; with ``peak_lr`` the learning rate warms up linearly over the first
    ``warmup`` of it and follows a cosine down to 0 at the end (the trainer's own scheduler must be
    ``constant``: this overwrites its base rate each step). Training stops once the time is spent.
    ``seconds=None`` leaves the trainer's step count and schedule alone.
    """

    def __init__(self, seconds: float | None, peak_lr: float | None = None, warmup: float = 0.05):
        self.seconds, self.peak_lr, self.warmup = seconds, peak_lr, warmup
        self.start, self.stopped_at = None, None

    def fraction(self) -> float:
        """Share of the time spent so far (0 before training starts)."""
        return 0.0 if self.start is None or not self.seconds else (time.monotonic() - self.start) / self.seconds

    def learning_rate(self, step_fraction: float = 0.0) -> float:
        """The scheduled rate at this moment (``step_fraction``: share of ``max_steps`` done)."""
        f = min(max(self.fraction(), step_fraction), 1.0)
        if f < self.warmup:
            return self.peak_lr * (f / self.warmup if self.warmup else 1.0)
        return self.peak_lr * 0.5 * (1.0 + math.cos(math.pi * (f - self.warmup) / (1.0 - self.warmup)))

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()
        if self.seconds is not None and self.peak_lr is not None and args.lr_scheduler_type != "constant":
            raise ValueError("a timed schedule needs lr_scheduler_type=constant (it replaces the trainer's)")

    def on_step_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        if self.seconds is None or self.peak_lr is None or optimizer is None:
            return control
        lr = self.learning_rate(state.global_step / max(state.max_steps, 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        if lr_scheduler is not None:  # its step() after this update resets the rate from base_lrs
            lr_scheduler.base_lrs = [lr] * len(optimizer.param_groups)
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if self.seconds is not None and self.fraction() >= 1.0:
            control.should_training_stop = True
            self.stopped_at = state.global_step
        return control


def train_sft(model, processor, train_dataset: Dataset, args, time_budget_s: float | None = None):
    """Run TRL's SFTTrainer on the in-memory model.

    Args:
        model: the model to train in place.
        processor: its processor.
        train_dataset: from :func:`sft_dataset`.
        args: a ``trl.SFTConfig`` (e.g. parsed from ``vlmr1/demo/recipes/seg_sft.yaml``).
        time_budget_s: train for this many seconds or ``args.max_steps``, whichever comes first, with a warm-up +
            cosine schedule over that, peaking at ``args.learning_rate``; None: ``max_steps`` and the recipe's
            own schedule.
    Returns:
        ``(trainer, budget)``: the finished trainer (``trainer.state.log_history`` has the loss curve) and the
        :class:`TimeBudget` (``stopped_at``: the step the time ran out at, or None).
    """
    from trl import SFTTrainer

    # Rows keep their extra fields (mask, bbox, ...): the collator reads only prompt, completion and images.
    args.remove_unused_columns = False
    budget = TimeBudget(time_budget_s, args.learning_rate)
    if time_budget_s is not None:
        args.lr_scheduler_type = "constant"
    from vlmr1.training.console import use_compact_console

    trainer = SFTTrainer(model=model, args=args, train_dataset=train_dataset, processing_class=processor,
                         callbacks=[budget])
    use_compact_console(trainer)
    trainer.train()
    return trainer, budget
