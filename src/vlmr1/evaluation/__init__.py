"""Evaluation of a checkpoint or an in-memory model on jsonl data (``vlmr1 eval``, :func:`evaluate`): batched
generation, the task's metric hooks per sample and per file, and the reports. It loads models through
``vlmr1.models.loading`` and never imports ``vlmr1.training``."""

from vlmr1.evaluation.config import EvalArguments, parse_eval_args
from vlmr1.evaluation.generation import TransformersGenerator, VLLMGenerator
from vlmr1.evaluation.report import prediction_records, write_outputs
from vlmr1.evaluation.runner import (
    aggregate_by_file,
    check_eval_data,
    evaluate,
    run_eval,
    score_predictions,
)

__all__ = [
    "EvalArguments",
    "TransformersGenerator",
    "VLLMGenerator",
    "aggregate_by_file",
    "check_eval_data",
    "evaluate",
    "parse_eval_args",
    "prediction_records",
    "run_eval",
    "score_predictions",
    "write_outputs",
]
