"""The experiment tracker: trackio (local, no account) unless ``--report_to`` says otherwise, and pictures sent to it.

``--report_to`` left unset means trackio when it is installed, else nothing; ``--report_to wandb|tensorboard|none``
work as in transformers. Trackio keeps its runs in a local database (``$TRACKIO_DIR``, default
``~/.cache/huggingface/trackio``) and serves its dashboard locally: ``trackio show --project vlmr1``. It talks to a
Hugging Face Space only when asked to (``--trackio_space_id`` or ``TRACKIO_SPACE_ID``).
"""

from __future__ import annotations

import importlib.util
import logging
import os

from transformers.integrations import TensorBoardCallback, TrackioCallback, WandbCallback
from transformers.integrations.integration_utils import rewrite_logs

logger = logging.getLogger(__name__)

# The trainer's end-of-run summary values, which transformers' trackio callback leaves out of the curves too.
RUN_SUMMARY_KEYS = frozenset({"train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss",
                              "total_flos"})


def default_report_to() -> str:
    """What an unset ``--report_to`` means: ``"trackio"`` when it is installed, else ``"none"``."""
    return "trackio" if importlib.util.find_spec("trackio") is not None else "none"


class TrackioAtTrainingStep(TrackioCallback):
    """transformers' trackio callback, with each row logged at the trainer's step.

    transformers lets trackio number rows by log call, so the dashboard's step is not the training step (it drifts
    with every evaluation and with ``--logging_steps`` > 1) and a rollout picture logged for step N would sit at
    another step than N's metrics. Same values, same run set-up; only the step differs.
    """

    def on_log(self, args, state, control, model=None, logs=None, **kwargs):
        if not self._initialized:
            self.setup(args, state, model)
        if state.is_world_process_zero:
            values = rewrite_logs({k: v for k, v in (logs or {}).items() if k not in RUN_SUMMARY_KEYS})
            self._trackio.log({**values, "train/global_step": state.global_step}, step=state.global_step)


def align_trackio_steps(trainer) -> None:
    """Swap transformers' trackio callback of ``trainer`` (if any) for :class:`TrackioAtTrainingStep`."""
    for callback in list(trainer.callback_handler.callbacks):
        if type(callback) is TrackioCallback:
            trainer.callback_handler.remove_callback(callback)
            trainer.add_callback(TrackioAtTrainingStep())


def dashboard_hint(args) -> str | None:
    """One line saying where the run's curves are live, or None without a tracker."""
    report_to = args.report_to or []
    if "trackio" in report_to:
        return f'dashboard: trackio show --project "{args.project}"'
    if "tensorboard" in report_to:
        return f"dashboard: tensorboard --logdir {os.getenv('TENSORBOARD_LOGGING_DIR') or args.output_dir}"
    if "wandb" in report_to:
        return "dashboard: your wandb project page"
    return None


def log_picture(callbacks, name: str, path: str, image, step: int, caption: str = "") -> list[str]:
    """Send one picture to every tracker among ``callbacks`` that takes images, at training step ``step``.

    Args:
        callbacks: the trainer's callbacks (the trackers are transformers' reporting callbacks).
        name: the picture's key on the dashboard.
        path: the PNG on disk (trackio and wandb copy the file).
        image: the same picture as a PIL image (TensorBoard takes pixels).
        step: the training step it shows.
        caption: shown under it where the tracker has captions.

    Returns:
        The trackers it went to. A tracker that fails is logged and skipped: a picture never stops training.
    """
    sent = []
    for callback in callbacks:
        try:
            if isinstance(callback, TrackioCallback) and getattr(callback, "_initialized", False):
                import trackio

                trackio.log({name: trackio.Image(path, caption=caption or None)}, step=step)
                sent.append("trackio")
            elif isinstance(callback, WandbCallback) and getattr(callback, "_initialized", False):
                import wandb

                if wandb.run is not None:
                    wandb.log({name: wandb.Image(path, caption=caption or None), "train/global_step": step})
                    sent.append("wandb")
            elif isinstance(callback, TensorBoardCallback) and getattr(callback, "tb_writer", None) is not None:
                import numpy as np

                callback.tb_writer.add_image(name, np.asarray(image.convert("RGB")), step, dataformats="HWC")
                sent.append("tensorboard")
        except Exception as e:  # a tracker's hiccup must not stop training for a picture
            logger.warning("could not send %s of step %d to %s: %s", name, step, type(callback).__name__, e)
    return sent
