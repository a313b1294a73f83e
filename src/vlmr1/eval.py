"""Evaluation entry point: ``vlmr1 eval ...`` or ``torchrun --nproc_per_node N -m vlmr1.eval ...``.

Checks all data before any model loads, generates greedily (transformers, or vLLM with ``--use_vllm``), scores every
completion with the task's metric hooks and writes ``metrics.json``, ``predictions.jsonl`` and ``report.md`` into
``--output_dir``. Under torchrun each process evaluates its own shard and rank 0 writes the files.

Example::

    vlmr1 eval --model runs/rec --data_file_paths refcoco_val.jsonl:refcocog_val.jsonl --image_folders coco:coco \\
        --task_type rec --batch_size 16 --output_dir runs/rec/eval
"""

from __future__ import annotations

import json
import logging
import sys

from vlmr1.evaluation import parse_eval_args, run_eval


def main(argv: list[str] | None = None) -> dict:
    """Parse the flags, run the evaluation and print each file's metrics (rank 0).

    Args:
        argv: flags without the ``eval`` subcommand; None reads ``sys.argv[1:]``.

    Returns:
        ``{data file: metrics}`` (empty on ranks other than 0).
    """
    args = parse_eval_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        metrics, _ = run_eval(args)
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():  # set up by run_eval under torchrun
            dist.destroy_process_group()
    for file, values in metrics.items():
        print(f"{file}: {json.dumps(values, default=str)}")
    return metrics


if __name__ == "__main__":  # torchrun -m ...: known problems end as they do under `vlmr1` (vlmr1.errors)
    from vlmr1.errors import run_command

    run_command(main, sys.argv[1:])
