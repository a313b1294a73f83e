"""Rollout pictures during training: what the model answers on the images, drawn by the task, every few steps.

The trainer hands this callback each generation's rows, completions and rewards (:meth:`RolloutPictures.capture`,
main process only: references, no copies). At a step that is due, a background thread draws the grid
(:func:`vlmr1.viz.rollouts.draw_rollouts`), writes ``OUTPUT_DIR/rollouts/step-NNNNNN.png`` and the main thread then
sends it to the tracker.

When a step is due (``--log_rollouts_steps``):

- N > 0: every N steps;
- unset: at logging steps, at most about 100 per run (spread over ``max_steps``), skipped while the previous picture is
  still being drawn or while drawing has cost more than 1% of the training time so far (CPU time of the drawing thread
  against wall time of training): a fast CPU run draws every few steps, a long GPU run every few logging steps;
- 0: never.
"""

from __future__ import annotations

import io
import logging
import math
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from transformers import TrainerCallback

from vlmr1.fileio import atomic_write
from vlmr1.rewards.registry import completion_text
from vlmr1.training.tracking import log_picture
from vlmr1.viz.rollouts import Rollout, draw_rollouts

logger = logging.getLogger(__name__)

FOLDER = "rollouts"
BUDGET = 0.01  # share of the training time the unset cadence lets drawing take
MAX_PICTURES = 100  # per run, with the unset cadence (a picture of photos at G = 8 is ~1 MB, and trackio copies it)


def picture_path(output_dir: str, step: int) -> str:
    """``OUTPUT_DIR/rollouts/step-NNNNNN.png``."""
    return os.path.join(output_dir, FOLDER, f"step-{step:06d}.png")


@dataclass
class Picture:
    """A drawn grid: where it was written, the image, its step and the drawing thread's CPU seconds."""

    path: str
    image: object
    step: int
    cpu_seconds: float


class RolloutPictures(TrainerCallback):
    """Draws rollout grids during training (see the module docstring).

    Args:
        output_dir: the run's folder; pictures go to its ``rollouts/``.
        every: ``--log_rollouts_steps`` (None: at logging steps within the budget; 0: never).
        num_prompts: prompts per grid (each with its completions).
        task: the task of rows without ``task_type``.
        budget: share of training time the unset cadence may spend drawing.
    """

    def __init__(self, output_dir: str, every: int | None = None, num_prompts: int = 4, task=None,
                 budget: float = BUDGET):
        self.output_dir, self.every, self.num_prompts, self.task, self.budget = (
            output_dir, every, num_prompts, task, budget)
        self.latest: list[Rollout] | None = None
        self.pending: list[Future] = []
        self.sent: list[Picture] = []
        self.skipped = 0
        self.cpu_seconds = 0.0
        self.started = None
        self.trainer_callbacks: list = []
        self._pool: ThreadPoolExecutor | None = None
        self._last_checked = -1
        self._interval, self._next = 1, 0

    @property
    def enabled(self) -> bool:
        return self.every != 0

    def capture(self, rows, completions, rewards, names, weights, num_tokens=None) -> None:
        """Keep the latest generation's rollouts of this process.

        Args:
            rows: the dataset rows, one per completion (a prompt's completions next to each other).
            completions: TRL's completions (text or messages), one per row.
            rewards: one list per completion, a value per reward function (NaN where it did not apply).
            names: the reward functions' names.
            weights: their weights (the total reward is the weighted sum).
            num_tokens: completion lengths in tokens, one per row, or None.
        """
        out = []
        for k, (row, completion, values) in enumerate(zip(rows, completions, rewards)):
            scored = {name: float(v) for name, v in zip(names, values)}
            total = sum(w * v for w, v in zip(weights, values) if not math.isnan(v))
            out.append(Rollout(row, completion_text(completion), scored, float(total),
                               None if num_tokens is None else int(num_tokens[k])))
        self.latest = out

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()
        self._interval = max(1, math.ceil((state.max_steps or 0) / MAX_PICTURES))
        self._next = state.global_step + 1

    def on_step_end(self, args, state, control, **kwargs):
        self._send_finished(wait=False)
        if state.is_world_process_zero and self.enabled and self.latest and self._due(state.global_step, control):
            self._submit(self.latest, state.global_step)
            self.latest = None

    def wait(self) -> None:
        """Wait for the pictures being drawn and send them to the trackers."""
        self._send_finished(wait=True)

    def on_train_end(self, args, state, control, **kwargs):
        self.wait()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if state.is_world_process_zero and (self.sent or self.skipped):
            elapsed = time.monotonic() - (self.started or time.monotonic())
            logger.info("rollout pictures: %d drawn in %s (%.1f s of CPU, %.2f%% of %.0f s of training), %d skipped "
                        "to stay within %.0f%%", len(self.sent), os.path.join(self.output_dir, FOLDER),
                        self.cpu_seconds, 100 * self.cpu_seconds / max(elapsed, 1e-9), elapsed, self.skipped,
                        100 * self.budget)

    def _due(self, step: int, control) -> bool:
        if step == self._last_checked:
            return False
        self._last_checked = step
        if self.every:
            return step % self.every == 0
        if not control.should_log or step < self._next:
            return False
        busy = any(not f.done() for f in self.pending)
        elapsed = time.monotonic() - (self.started or time.monotonic())
        over_budget = self.sent and self.cpu_seconds > self.budget * elapsed
        if busy or over_budget:
            self.skipped += 1
            return False
        self._next = step + self._interval
        return True

    def _submit(self, rollouts: list[Rollout], step: int) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vlmr1-rollouts")
        self.pending.append(self._pool.submit(self._draw, rollouts, step))

    def _draw(self, rollouts: list[Rollout], step: int) -> Picture | None:
        start = time.thread_time()
        try:
            image = draw_rollouts(rollouts, self.num_prompts, self.task)
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            path = picture_path(self.output_dir, step)
            atomic_write(path, buf.getvalue())
        except Exception as e:  # a picture must never stop training
            logger.warning("could not draw the rollouts of step %d: %s", step, e)
            return None
        return Picture(path, image, step, time.thread_time() - start)

    def _send_finished(self, wait: bool) -> None:
        """Send the pictures drawn so far to the trackers (from the main thread: trackio keeps its run per thread)."""
        still = []
        for future in self.pending:
            if not wait and not future.done():
                still.append(future)
                continue
            picture = future.result()
            if picture is None:
                continue
            self.cpu_seconds += picture.cpu_seconds
            log_picture(self.trainer_callbacks, "rollouts", picture.path, picture.image, picture.step,
                        caption=f"step {picture.step}: prompts x completions (green truth, red answer)")
            picture.image = None  # the file keeps it
            self.sent.append(picture)
        self.pending = still
