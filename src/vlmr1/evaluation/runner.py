"""Evaluation: generate greedily on every row, score each completion with the task's hooks, aggregate per file.

From Python (e.g. before and after training, on the model in memory)::

    metrics, predictions = evaluate(model, processor, dataset, get_task("rec"), batch_size=8, max_new_tokens=256)

``dataset`` holds the rows of :func:`vlmr1.data.loading.build_dataset`. Under ``torchrun`` (``torch.distributed``
initialised) each rank evaluates rows ``rank, rank + world_size, ...``; rank 0 gathers every prediction and returns
the results, the other ranks return ``({}, [])``. :func:`run_eval` is the whole ``vlmr1 eval`` command.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch.distributed as dist
from tqdm.auto import tqdm

from vlmr1.data.loading import CheckedData, LoadedData, build_dataset, load_checked_data, split_paths
from vlmr1.data.schema import DataError
from vlmr1.evaluation.config import EvalArguments
from vlmr1.evaluation.generation import TransformersGenerator, VLLMGenerator
from vlmr1.evaluation.report import split_source, write_outputs, write_partial_outputs
from vlmr1.tasks import Task

logger = logging.getLogger(__name__)

Generator = Callable[[Sequence[Mapping[str, Any]]], list[str]]


def first_per_file(data: LoadedData, n: int) -> LoadedData:
    """Keep the first ``n`` samples of each data file (rows stay in file order)."""
    seen: dict[str, int] = {}
    keep = []
    for i, source in enumerate(data.rows["source"]):
        path = split_source(source)[0]
        seen[path] = seen.get(path, 0) + 1
        if seen[path] <= n:
            keep.append(i)
    return LoadedData({k: [v[i] for i in keep] for k, v in data.rows.items()}, data.extra_keys)


def check_eval_data(args: EvalArguments) -> CheckedData:
    """Read and check every data file as training does (errors name file:line and the fix); loads no model."""
    paths = [os.path.normpath(p) for p in split_paths(args.data_file_paths)]
    twice = sorted({p for p in paths if paths.count(p) > 1})
    if twice:  # metrics and predictions are keyed by file
        raise DataError(twice[0], None, "given twice in --data_file_paths", "list each data file once")
    checked = load_checked_data(args.data_file_paths, args.image_folders, args.reward_method, args.task_type,
                                args.check_images)
    if args.num_samples:
        checked.data = first_per_file(checked.data, args.num_samples)
    logger.info("evaluating %d samples from %d file(s)", len(checked.data), len(checked.sources))
    return checked


def score_sample(task: Task, index: int, row: Mapping[str, Any], text: str) -> dict[str, Any]:
    """One prediction record: the completion and the task's per-sample metrics.

    A metric hook that raises must not end a long eval: the sample is logged, marked with ``metric_error``, and
    scored as an unparsable answer (the hook's metrics for an empty completion), i.e. as wrong.

    Returns:
        ``{"index", "id", "source", "solution", "prediction", "metrics"}`` (+ ``"metric_error"`` on failure;
        ``metrics`` is None when even the empty-answer scoring raised).
    """
    record = {"index": index, "id": row["id"], "source": row["source"], "solution": row["solution"],
              "prediction": text}
    try:
        record["metrics"] = dict(task.sample_metrics(text, row))
    except Exception as e:  # noqa: BLE001 - any bug in a metric hook is recorded, not fatal
        logger.warning("%s: task %r failed to score the prediction (%s: %s); counted as unparsable",
                       row["source"], task.name, type(e).__name__, e)
        record["metric_error"] = f"{type(e).__name__}: {e}"
        try:
            record["metrics"] = dict(task.sample_metrics("", row))
        except Exception:  # noqa: BLE001
            record["metrics"] = None
    return record


def image_failure(rows: Any, index: int, error: DataError) -> dict[str, Any]:
    """The record of a row whose image failed to load mid-run: no prediction, metrics None (scored as wrong)."""
    logger.warning("%s; skipped and scored as wrong", error)
    raw = rows.with_format(None)[index] if hasattr(rows, "with_format") else {}
    source = raw.get("source") or (f"{error.where}:{error.line}" if error.line else str(error.where))
    return {"index": index, "id": raw.get("id"), "source": source, "solution": raw.get("solution"),
            "prediction": "", "metrics": None, "image_error": error.problem}


def score_predictions(task: Task, rows: Sequence[Mapping[str, Any]], texts: Sequence[str]) -> list[dict[str, Any]]:
    """Score given completion texts against rows (no model): the records :func:`aggregate_by_file` takes."""
    if len(rows) != len(texts):
        raise ValueError(f"{len(rows)} rows but {len(texts)} predictions")
    return [score_sample(task, i, rows[i], text) for i, text in enumerate(texts)]


def _fill_failed(samples: list[dict | None]) -> list[dict]:
    """Give samples whose metrics could not be computed at all the zero (wrong) value of every numeric metric,
    so aggregations that expect the same keys on every sample still run."""
    template = next((s for s in samples if s is not None), {})
    wrong = {k: 0.0 if isinstance(v, int | float) else None for k, v in template.items()}
    return [s if s is not None else dict(wrong) for s in samples]


def aggregate_by_file(task: Task, predictions: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per data file: ``task.aggregate_metrics`` over its samples' metrics, plus ``num_samples``.

    Args:
        task: supplies ``aggregate_metrics``.
        predictions: records from :func:`score_sample` (their ``source`` names the file).

    Returns:
        ``{file: metrics}`` in the order the files first appear; ``num_metric_errors`` is added where a metric hook
        raised, ``num_image_errors`` where images failed to load, ``aggregate_error`` where the aggregation itself
        did.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for p in predictions:
        groups.setdefault(split_source(p["source"])[0], []).append(p)
    out: dict[str, dict[str, Any]] = {}
    for file, preds in groups.items():
        try:
            metrics = dict(task.aggregate_metrics(_fill_failed([p["metrics"] for p in preds])))
        except Exception as e:  # noqa: BLE001 - keep the predictions and the other files' metrics
            logger.exception("%s: aggregating task %r metrics failed", file, task.name)
            metrics = {"aggregate_error": f"{type(e).__name__}: {e}"}
        metrics["num_samples"] = len(preds)
        for key, name in (("metric_error", "num_metric_errors"), ("image_error", "num_image_errors")):
            errors = sum(key in p for p in preds)
            if errors:
                metrics[name] = errors
        out[file] = metrics
    return out


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 without torch.distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_to_main(local: list[Any]) -> list[Any]:
    """All ranks' lists concatenated on rank 0 (``gather_object``); other ranks get ``[]``."""
    rank, world = rank_and_world()
    if world == 1:
        return local
    gathered: list[list[Any]] | None = [None] * world if rank == 0 else None
    dist.gather_object(local, gathered, dst=0)
    return [item for part in gathered for item in part] if rank == 0 else []


def evaluate(model: Any, processor: Any, rows: Sequence[Mapping[str, Any]], task: Task, batch_size: int = 8,
             max_new_tokens: int = 256, *, generator: Generator | None = None, progress: bool = True,
             collected: list | None = None) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Greedy-generate on every row, score with the task's hooks, aggregate per data file.

    Args:
        model: the model to evaluate (ignored when ``generator`` is given; may then be None). Put in eval mode for
            the call and restored after, so it can be evaluated in the middle of training.
        processor: its processor.
        rows: dataset rows (a ``build_dataset`` dataset or a list of its rows).
        task: supplies ``sample_metrics`` and ``aggregate_metrics``.
        batch_size: rows per generate call on each process.
        max_new_tokens: longest completion.
        generator: ``rows -> texts`` to use instead of transformers (e.g. a :class:`VLLMGenerator`).
        progress: show a tqdm bar over batches (on rank 0).
        collected: a list that receives this process's records as they are made, so a caller can save them when
            the run stops half-way (:func:`run_eval` writes them as partial predictions).

    Returns:
        ``(per_file_metrics, predictions)``: ``{file: metrics}`` (see :func:`aggregate_by_file`) and one record per
        row in row order (see :func:`score_sample`). Ranks other than 0 return ``({}, [])``.

    Under torch.distributed every rank must call it (rank 0 waits for the others' predictions). A row whose image
    fails to load is logged with its file:line and scored as a wrong answer (``image_error`` in its record,
    ``num_image_errors`` in its file's metrics).
    """
    if model is None and generator is None:
        raise ValueError("evaluate() needs a model, or a generator such as VLLMGenerator")
    rank, world = rank_and_world()
    generator = generator or TransformersGenerator(model, processor, max_new_tokens)
    indices = list(range(rank, len(rows), world))  # strided shards: disjoint, and balanced to one row
    was_training = bool(getattr(model, "training", False))
    if model is not None:
        model.eval()
    local: list[dict[str, Any]] = collected if collected is not None else []
    try:
        starts = range(0, len(indices), batch_size)
        for start in tqdm(starts, desc=f"eval {task.name}", unit="batch", disable=not progress or rank != 0):
            batch_indices, batch = [], []
            for i in indices[start:start + batch_size]:
                try:
                    batch.append(rows[i])
                    batch_indices.append(i)
                except DataError as e:  # an image that no longer loads: that sample is scored wrong, the run goes on
                    local.append(image_failure(rows, i, e))
            texts = generator(batch) if batch else []
            local.extend(score_sample(task, i, row, text)
                         for i, row, text in zip(batch_indices, batch, texts, strict=True))
    finally:
        if was_training:
            model.train()
    predictions = sorted(gather_to_main(list(local)), key=lambda p: p["index"])
    if rank != 0:
        return {}, []
    return aggregate_by_file(task, predictions), predictions


def run_eval(args: EvalArguments) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The ``vlmr1 eval`` command: check data, load processor and model, evaluate, write the outputs (rank 0).

    Under ``torchrun`` the process group is set up here (accelerate's ``PartialState``) and each rank loads the
    model onto its own device.

    Returns:
        As :func:`evaluate` (on rank 0; other ranks get ``({}, [])``).
    """
    from accelerate import PartialState

    from vlmr1.models.loading import load_model, load_processor

    checked = check_eval_data(args)  # bad data must stop the run before minutes of model loading
    family, processor = load_processor(args.model, args.model_revision, args.min_pixels, args.max_pixels,
                                       args.max_anyres_num)
    rows = build_dataset(checked.data, checked.task.format_question, family.coordinate_frame(processor))
    # Sets up torch.distributed under torchrun and picks this rank's device; rank and world size are then read
    # from torch.distributed itself (PartialState reports a CPU-only torchrun as one process).
    device = PartialState().device
    rank, world = rank_and_world()
    model, generator = None, None
    if args.use_vllm:
        max_images = max((len(paths) for paths in checked.data.rows["images"]), default=0)
        generator = VLLMGenerator(
            args.model, processor, args.max_new_tokens, dtype=args.dtype, max_images_per_prompt=max_images,
            min_pixels=args.min_pixels, max_pixels=args.max_pixels, data_parallel=world > 1,
            gpu_memory_utilization=args.vllm_gpu_memory_utilization, max_model_len=args.vllm_max_model_len,
            revision=args.model_revision)
    else:
        model = load_model(family, args.model, args.dtype, args.attn_implementation, args.model_revision).to(device)
    settings = {
        "data_file_paths": [s.path for s in checked.sources],
        "image_folders": [s.image_folder for s in checked.sources],
        "reward_method": args.reward_method, "num_samples": args.num_samples, "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens, "decoding": "greedy",
        "backend": "vllm" if args.use_vllm else "transformers", "dtype": args.dtype,
        **family.image_settings(processor),  # min/max_pixels, or InternVL's max_tiles and tile_size
        "world_size": world,
    }
    done: list[dict[str, Any]] = []
    try:
        metrics, predictions = evaluate(model, processor, rows, checked.task, args.batch_size, args.max_new_tokens,
                                        generator=generator, collected=done)
    except BaseException as e:  # out of memory, Ctrl-C, a crash: keep what was generated
        if done:
            paths = write_partial_outputs(args.output_dir, aggregate_by_file(checked.task, done), done, error=e,
                                          rank=rank, world=world, sources=checked.sources, model=args.model,
                                          task=checked.task.name, settings=settings)
            logger.warning("stopped after %d of %d sample(s) on this process; wrote %s", len(done),
                           len(range(rank, len(rows), world)), ", ".join(paths.values()))
        raise
    if rank == 0:
        paths = write_outputs(args.output_dir, metrics, predictions, sources=checked.sources, model=args.model,
                              task=checked.task.name, settings=settings)
        logger.info("wrote %s", ", ".join(paths.values()))
    return metrics, predictions
