"""A readable console: one compact line per logging step instead of transformers' dict, and the full dict in a file.

    step  40/155  reward 1.61 ±0.21 (seg_iou 0.61, seg_format 1.00)  kl 0.00123  len 58 (6% at max)  clip 0.4%  1.21 s/step  ETA 2m19s

GRPO lines show the total reward and its std over the samples, each reward function's mean, KL (when ``--beta`` > 0),
the mean completion length with the share cut at ``--max_completion_length``, the share of tokens whose policy ratio
was clipped, seconds per step and the time left; other trainers (the demo's SFT) show loss, learning rate and gradient
norm. Every logged dict, unchanged, is also appended to ``OUTPUT_DIR/train_log.jsonl`` (``trainer_state.json`` keeps
it at each checkpoint, as before).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from vlmr1.viz.report import LOG_FILE


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _num(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def reward_names(logs: Mapping) -> list[str]:
    """The reward functions of a GRPO log dict, in logged order (``rewards/<name>/mean``)."""
    return [k[len("rewards/"):-len("/mean")] for k in logs if k.startswith("rewards/") and k.endswith("/mean")]


def format_line(logs: Mapping, step: int, max_steps: int, seconds_per_step: float | None = None) -> str:
    """The console line of one log dict (see the module docstring).

    Args:
        logs: what the trainer logged at this step.
        step, max_steps: progress.
        seconds_per_step: measured wall time per step, for s/step and the ETA (None leaves both out).
    """
    width = len(str(max_steps))
    if "train_runtime" in logs:  # the trainer's end-of-run summary
        runtime = _num(logs["train_runtime"]) or 0.0
        return f"done: {step} steps in {_duration(runtime)} ({runtime / max(step, 1):.2f} s/step)"
    parts = [f"step {step:>{width}}/{max_steps}"]
    if any(k.startswith("eval_") for k in logs):
        parts[0] = f"eval at step {step}"
        logs = {k.removeprefix("eval_"): v for k, v in logs.items()}
    if (reward := _num(logs.get("reward"))) is not None:
        std = _num(logs.get("reward_std"))
        per_function = ", ".join(f"{name.rsplit(':', 1)[-1]} {_num(logs[f'rewards/{name}/mean']) or 0:.2f}"
                                 for name in reward_names(logs))
        parts.append(f"reward {reward:.2f}" + (f" ±{std:.2f}" if std is not None else "")
                     + (f" ({per_function})" if per_function else ""))
        if (kl := _num(logs.get("kl"))) is not None:
            parts.append(f"kl {kl:.3g}")
        if (length := _num(logs.get("completions/mean_length"))) is not None:
            clipped = _num(logs.get("completions/clipped_ratio"))
            parts.append(f"len {length:.0f}" + (f" ({clipped:.0%} at max)" if clipped is not None else ""))
        if (clip := _num(logs.get("clip_ratio/region_mean"))) is not None:
            parts.append(f"clip {clip:.1%}")
    else:
        for key, label, fmt in (("loss", "loss", ".4g"), ("learning_rate", "lr", ".2e"), ("grad_norm", "grad", ".3g")):
            if (value := _num(logs.get(key))) is not None:
                parts.append(f"{label} {value:{fmt}}")
    if seconds_per_step is not None and "eval" not in parts[0]:
        parts.append(f"{seconds_per_step:.2f} s/step  ETA {_duration(seconds_per_step * (max_steps - step))}")
    return "  ".join(parts)


class _Pace:
    """Seconds per step: from the start of training until the first log (warm-up included), from the first log on
    after that."""

    def __init__(self):
        self.origin: tuple[int, float] | None = None
        self.first_logged = False

    def start(self, step: int) -> None:
        self.origin, self.first_logged = (step, time.monotonic()), False

    def update(self, step: int) -> float | None:
        now = time.monotonic()
        if self.origin is None or step <= self.origin[0]:
            return None
        pace = (now - self.origin[1]) / (step - self.origin[0])
        if not self.first_logged:
            self.origin, self.first_logged = (step, now), True
        return pace


class CompactProgress(ProgressCallback):
    """transformers' progress bar, writing :func:`format_line` above it instead of the logged dict."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pace = _Pace()

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        self.pace.start(state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            self.training_bar.write(format_line(logs, state.global_step, state.max_steps,
                                                self.pace.update(state.global_step)))


class CompactPrinter(PrinterCallback):
    """transformers' printer (``--disable_tqdm``), printing :func:`format_line` instead of the logged dict."""

    def __init__(self):
        self.pace = _Pace()

    def on_train_begin(self, args, state, control, **kwargs):
        self.pace.start(state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            print(format_line(logs, state.global_step, state.max_steps, self.pace.update(state.global_step)),
                  flush=True)


class JsonlLog(TrainerCallback):
    """Appends every logged dict, with its step and time, to ``OUTPUT_DIR/train_log.jsonl`` (main process).

    One line per log, written whole and flushed: a reader of a running or killed run sees complete lines (a torn last
    line, if the machine died mid-write, is skipped by :func:`vlmr1.viz.report.read_log`). A resumed run appends again
    from its checkpoint's step; readers keep the last line of each step.
    """

    def __init__(self, output_dir: str):
        self.path = os.path.join(output_dir, LOG_FILE)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        line = json.dumps({**logs, "step": state.global_step, "time": round(time.time(), 3)}, default=str)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def use_compact_console(trainer) -> None:
    """Replace ``trainer``'s dict printer (progress bar or plain printer) by the compact line."""
    for callback in list(trainer.callback_handler.callbacks):
        if type(callback) is ProgressCallback:
            trainer.callback_handler.remove_callback(callback)
            trainer.add_callback(CompactProgress(max_str_len=callback.max_str_len))
        elif type(callback) is PrinterCallback:
            trainer.callback_handler.remove_callback(callback)
            trainer.add_callback(CompactPrinter())
