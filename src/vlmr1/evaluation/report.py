"""The three files an evaluation writes, each atomically (:func:`vlmr1.fileio.atomic_write`).

``metrics.json``::

    {"model": ..., "task": ..., "metrics": {"<data file>": {"<metric>": value, ..., "num_samples": n}},
     "settings": {...}, "vlmr1_version": ..., "created": "<UTC ISO time>"}

``predictions.jsonl``, one line per evaluated sample, in data order: every field of the original jsonl line (``id``,
``image`` as written in the file, ``conversations``, ``accu_reward_method``, extra fields such as ``bbox`` or
``mask``) plus ``prediction`` (the completion text), ``source`` (``file:line``), ``image_folder`` (the image path is
``os.path.join(image_folder, image)``), ``task_type``, ``metrics`` (the task's per-sample dict) and, only where the
task's metric hook raised, ``metric_error`` (``image_error`` where the image no longer loaded mid-run).
``vlmr1 draw --predictions`` reads it.

``report.md``: a metric table per file, a few example predictions per file, and the settings.

An evaluation stopped half-way (out of memory, Ctrl-C) writes what it generated as ``predictions.partial.jsonl`` and
``metrics.partial.json`` (``.rank<N>`` before ``.jsonl``/``.json`` on processes other than 0 under torchrun), with the
error that stopped it; complete results are never replaced by partial ones.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from vlmr1.data.loading import SourceFile
from vlmr1.fileio import atomic_write

logger = logging.getLogger(__name__)

NUM_EXAMPLES = 3
MAX_EXAMPLE_CHARS = 400


def _jsonable(value: Any) -> Any:
    """``json`` fallback for numpy scalars/arrays and tensors in metric dicts."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def split_source(source: str) -> tuple[str, int]:
    """``"data/a.jsonl:12"`` -> ``("data/a.jsonl", 12)`` (the last ``:`` separates the line)."""
    path, _, line = source.rpartition(":")
    return path, int(line)


def read_original_lines(sources: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The original jsonl objects behind ``file:line`` sources, reading each file once.

    Returns:
        ``{source: parsed line}``; a source whose file or line is gone is left out (with a warning).
    """
    wanted: dict[str, set[int]] = {}
    for source in sources:
        path, line = split_source(source)
        wanted.setdefault(path, set()).add(line)
    found: dict[str, dict[str, Any]] = {}
    for path, lines in wanted.items():
        try:
            with open(path, encoding="utf-8-sig") as f:  # a BOM is not part of line 1, as when it was read
                for line_no, text in enumerate(f, start=1):
                    if line_no in lines:
                        found[f"{path}:{line_no}"] = json.loads(text)
        except (OSError, json.JSONDecodeError) as e:
            logger.warning("could not re-read %s for predictions.jsonl (%s); its lines keep only id", path, e)
    return found


def prediction_records(predictions: Sequence[Mapping[str, Any]], sources: Sequence[SourceFile] = (),
                       task: str = "") -> list[dict]:
    """The ``predictions.jsonl`` objects: original line fields + prediction, source, image_folder, task_type, metrics.

    Args:
        predictions: from :func:`vlmr1.evaluation.evaluate` (``id``, ``source``, ``prediction``, ``metrics``).
        sources: the evaluated files with their image folders (from ``pair_sources``); a file not among them gets
            ``image_folder: null``.
        task: the task's name.
    """
    folders = {s.path: s.image_folder for s in sources}
    originals = read_original_lines(p["source"] for p in predictions)
    records = []
    for p in predictions:
        record = dict(originals.get(p["source"], {"id": p["id"]}))
        record.update(prediction=p["prediction"], source=p["source"],
                      image_folder=folders.get(split_source(p["source"])[0]), task_type=task or None,
                      metrics=p["metrics"])
        for key in ("metric_error", "image_error"):
            if key in p:
                record[key] = p[key]
        records.append(record)
    return records


def _format_value(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _clip(text: str) -> str:
    text = str(text).replace("```", "'''")  # keeps the fenced block closed
    text = "".join(c if c.isprintable() or c == "\n" else "\ufffd" for c in text)
    return text if len(text) <= MAX_EXAMPLE_CHARS else text[:MAX_EXAMPLE_CHARS] + " ..."


def render_report(per_file_metrics: Mapping[str, Mapping[str, Any]], records: Sequence[Mapping[str, Any]], *,
                  model: str, task: str, settings: Mapping[str, Any], num_examples: int = NUM_EXAMPLES) -> str:
    """The ``report.md`` text: per file a metric table and the first ``num_examples`` predictions; then settings."""
    total = sum(int(m.get("num_samples", 0)) for m in per_file_metrics.values())
    out = [f"# Evaluation of `{model}`", "",
           f"Task `{task}`: {total} sample(s) from {len(per_file_metrics)} file(s), greedy decoding.", ""]
    for file, metrics in per_file_metrics.items():
        out += [f"## {file}", "", "| metric | value |", "| --- | --- |"]
        out += [f"| {name} | {_format_value(value)} |" for name, value in metrics.items()]
        examples = [r for r in records if split_source(r["source"])[0] == file][:num_examples]
        if examples:
            out += ["", "Examples:", ""]
        for r in examples:
            turns = r.get("conversations") or []
            question = next((t.get("value") for t in reversed(turns[:-1]) if t.get("from") in ("human", "user")), "")
            answer = turns[-1].get("value", "") if turns else ""
            scores = ", ".join(f"{k} {_format_value(v)}" for k, v in (r.get("metrics") or {}).items()
                               if isinstance(v, int | float))
            out += [f"**{r.get('id')}** (`{r['source']}`){': ' + scores if scores else ''}", "",
                    "```text", f"question:   {_clip(question)}", f"answer:     {_clip(answer)}",
                    f"prediction: {_clip(r['prediction'])}", "```", ""]
            if "metric_error" in r:
                out += [f"metric error: `{_clip(r['metric_error'])}`", ""]
        out.append("")
    out += ["## Settings", "", "| setting | value |", "| --- | --- |"]
    out += [f"| {k} | {json.dumps(v, default=_jsonable)} |" for k, v in settings.items()]
    return "\n".join(out) + "\n"


def write_partial_outputs(output_dir: str, per_file_metrics: Mapping[str, Mapping[str, Any]],
                          predictions: Sequence[Mapping[str, Any]], *, error: BaseException, rank: int = 0,
                          world: int = 1, sources: Sequence[SourceFile] = (), model: str = "", task: str = "",
                          settings: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Write the predictions of an evaluation that stopped half-way (this process's only, under torchrun).

    Returns:
        ``{"metrics": path, "predictions": path}``.
    """
    from vlmr1 import __version__

    suffix = f".partial.rank{rank}" if world > 1 else ".partial"
    paths = {"metrics": os.path.join(output_dir, f"metrics{suffix}.json"),
             "predictions": os.path.join(output_dir, f"predictions{suffix}.jsonl")}
    records = prediction_records(sorted(predictions, key=lambda p: p["index"]), sources, task)
    atomic_write(paths["predictions"], (json.dumps(r, ensure_ascii=False, default=_jsonable) for r in records))
    summary = {"model": model, "task": task, "complete": False, "stopped_by": f"{type(error).__name__}: {error}",
               "rank": rank, "world_size": world, "metrics": per_file_metrics, "settings": dict(settings or {}),
               "vlmr1_version": __version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    atomic_write(paths["metrics"], json.dumps(summary, indent=2, ensure_ascii=False, default=_jsonable) + "\n")
    return paths


def write_outputs(output_dir: str, per_file_metrics: Mapping[str, Mapping[str, Any]],
                  predictions: Sequence[Mapping[str, Any]], *, sources: Sequence[SourceFile] = (), model: str = "",
                  task: str = "", settings: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Write ``metrics.json``, ``predictions.jsonl`` and ``report.md`` into ``output_dir``.

    Args:
        output_dir: created if missing; existing files of the same names are replaced.
        per_file_metrics, predictions: from :func:`vlmr1.evaluation.evaluate`.
        sources: the files' image folders (``pair_sources``), recorded in each prediction line.
        model, task, settings: recorded in ``metrics.json`` and the report.

    Returns:
        ``{"metrics": path, "predictions": path, "report": path}``.
    """
    from vlmr1 import __version__

    settings = dict(settings or {})
    paths = {name: os.path.join(output_dir, file) for name, file in
             (("metrics", "metrics.json"), ("predictions", "predictions.jsonl"), ("report", "report.md"))}
    records = prediction_records(predictions, sources, task)
    atomic_write(paths["predictions"], (json.dumps(r, ensure_ascii=False, default=_jsonable) for r in records))
    summary = {"model": model, "task": task, "metrics": per_file_metrics, "settings": settings,
               "vlmr1_version": __version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    atomic_write(paths["metrics"], json.dumps(summary, indent=2, ensure_ascii=False, default=_jsonable) + "\n")
    atomic_write(paths["report"], render_report(per_file_metrics, records, model=model, task=task,
                                                     settings=settings))
    return paths
