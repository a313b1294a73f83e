"""GRPO training entry point: ``vlmr1 train ...`` or ``torchrun ... -m vlmr1.train ...``.

Reads the flags (or ``--config recipe.yaml``), sets up the processes (the one step that does), checks all data before
any model loads, builds the model through its family adapter, and runs TRL's GRPO loop. A run whose ``output_dir`` already holds a checkpoint resumes from it.
At the end it writes ``OUTPUT_DIR/report.html`` (``vlmr1 report``).

Example::

    torchrun --nproc_per_node 8 -m vlmr1.train --model_name_or_path Qwen/Qwen2.5-VL-3B-Instruct \\
        --data_file_paths a.jsonl:b.jsonl --image_folders imgs_a:imgs_b --task_type rec --output_dir runs/rec
"""

from __future__ import annotations

import logging
import os
import re
import sys

from vlmr1.training.config import build_configs, read_flags, set_up_processes
from vlmr1.training.setup import build_trainer, check_data
from vlmr1.training.tracking import dashboard_hint
from vlmr1.training.vlm_r1_flags import log_notes

logger = logging.getLogger("vlmr1.train")
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def last_complete_checkpoint(output_dir: str, needs_optimizer: bool = True) -> str | None:
    """The newest ``checkpoint-N`` folder of ``output_dir`` that is complete, or None.

    transformers writes a checkpoint in place with ``trainer_state.json`` last, so a run killed mid-save leaves a newer
    folder without it; resuming from that one fails to load, or (weights there, no state) silently restarts at step 0.
    A folder with its state file can still hold a truncated weights or optimizer file (a full disk, a cut copy):
    every file resuming reads is checked (:func:`vlmr1.training.checkpoints.checkpoint_problem`), and a broken folder
    is skipped with a warning, falling back to the previous complete one.

    Args:
        output_dir: the run's ``--output_dir``.
        needs_optimizer: also require optimizer, scheduler and RNG states (False for ``--save_only_model`` runs).

    Returns:
        The checkpoint path, or None when there is no complete checkpoint.
    """
    from vlmr1.training.checkpoints import checkpoint_problem

    found = [(int(m.group(1)), name) for name in os.listdir(output_dir)
             if (m := _CHECKPOINT_RE.match(name)) and os.path.isdir(os.path.join(output_dir, name))]
    for _, name in sorted(found, reverse=True):
        path = os.path.join(output_dir, name)
        problem = checkpoint_problem(path, needs_optimizer)
        if problem is None:
            return path
        logger.warning("skipping %s: %s; trying the previous checkpoint", path, problem)
    return None


def write_report(output_dir: str) -> None:
    """``OUTPUT_DIR/report.html`` (``vlmr1 report``); a failure is logged, the trained model is what counts."""
    from vlmr1.viz.report import write_run_report

    try:
        logger.info("report: %s", write_run_report(output_dir))
    except Exception as e:
        logger.warning("could not write the report (%s); `vlmr1 report %s` retries", e, output_dir)


def main(argv: list[str] | None = None) -> None:
    """Read the flags, set up the processes, check the data, build the trainer, train (resuming if possible), save."""
    flags = read_flags(argv)
    set_up_processes(flags)
    script_args, training_args, model_args = build_configs(flags)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log_notes(flags)

    # Data first: a bad line must stop the run before minutes of model loading.
    checked = check_data(script_args)
    trainer = build_trainer(script_args, training_args, model_args, checked)

    checkpoint = training_args.resume_from_checkpoint
    if checkpoint is None and training_args.output_dir:
        checkpoint = (last_complete_checkpoint(training_args.output_dir, not training_args.save_only_model)
                      if os.path.isdir(training_args.output_dir) else None)
        if checkpoint:
            logger.info("resuming from %s", checkpoint)
    if trainer.accelerator.is_main_process:
        logger.info("watch: %s; rollout pictures in %s; at the end, %s",
                    dashboard_hint(training_args) or "no tracker (--report_to none)",
                    os.path.join(training_args.output_dir, "rollouts"),
                    os.path.join(training_args.output_dir, "report.html"))
    trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(training_args.output_dir)
    trainer.save_state()
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(training_args.output_dir)
        write_report(training_args.output_dir)
    # every rank leaves together and the process group is torn down before exit (a rank exiting with it alive
    # was seen to abort under DeepSpeed on CPU)
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()


if __name__ == "__main__":  # torchrun -m ...: known problems end as they do under `vlmr1` (vlmr1.errors)
    from vlmr1.errors import run_command

    run_command(main, sys.argv[1:])
