"""Read the seed's jsonl files into a TRL-ready ``datasets.Dataset`` whose images load lazily.

``--data_file_paths a.jsonl:b.jsonl --image_folders dir1:dir2`` pair up one folder per file; an image's path is
``os.path.join(folder, image)``. Every line is checked before any model loads (see :mod:`vlmr1.data.schema`), and
every image is decoded once, in parallel, and remembered as good by size and mtime (:mod:`vlmr1.data.images`), so a
rerun only stats them. For training the images are decoded again only when the trainer asks for a row.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from datasets import Dataset
from PIL import Image

from vlmr1.data.images import image_problems, load_rgb
from vlmr1.data.schema import DataError, Sample, parse_line, to_chat_messages

MAX_REPORTED_ERRORS = 20


@dataclass
class SourceFile:
    """One jsonl file with its image folder and optional default accuracy method."""

    path: str
    image_folder: str
    reward_method: str | None = None


def split_paths(value: str | Sequence[str] | None) -> list[str]:
    """Split the seed's ``:``-separated list (``a.jsonl:b.jsonl``); a list is returned as is."""
    if value is None:
        return []
    if isinstance(value, str):
        return [p for p in value.split(":") if p]
    return list(value)


def pair_sources(data_file_paths, image_folders, reward_method=None) -> list[SourceFile]:
    """Pair ``--data_file_paths`` with ``--image_folders`` (and ``--reward_method``), checking the counts.

    Args:
        data_file_paths: ``"a.jsonl:b.jsonl"`` or a list.
        image_folders: ``"dir1:dir2"`` or a list, same count (one folder is reused for every file).
        reward_method: None, one method for all files, or ``"m1:m2"`` with one per file.

    Returns:
        One :class:`SourceFile` per data file.
    """
    files, folders = split_paths(data_file_paths), split_paths(image_folders)
    methods = split_paths(reward_method)
    if not files:
        raise DataError("--data_file_paths", None, "no data file given", "pass --data_file_paths a.jsonl[:b.jsonl]")
    if len(folders) == 1 and len(files) > 1:
        folders = folders * len(files)
    if not folders:
        folders = [""] * len(files)
    if len(folders) != len(files):
        raise DataError("--image_folders", None,
                        f"{len(files)} data files but {len(folders)} image folders",
                        "give one image folder per data file, ':'-separated and in the same order")
    if len(methods) == 1:
        methods = methods * len(files)
    if methods and len(methods) != len(files):
        raise DataError("--reward_method", None, f"{len(files)} data files but {len(methods)} reward methods",
                        "give one method for all files, or one per file, ':'-separated")
    return [SourceFile(f, d, methods[i] if methods else None) for i, (f, d) in enumerate(zip(files, folders))]


def _utf8(text: str, path: str, line_no: int) -> str:
    """The line unchanged, or a DataError when the file's bytes there are not UTF-8 (read with surrogateescape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DataError(path, line_no, f"not valid UTF-8 (a bad byte at column {e.start + 1})",
                        "save the file as UTF-8", kind="bad_json") from None
    return text


def read_samples(source: SourceFile, errors: list[DataError] | None = None) -> list[tuple[int, Sample]]:
    """Parse every line of one jsonl file.

    Args:
        source: the file.
        errors: when given, every bad line's DataError is appended here and the good lines are returned
            (``vlmr1 data check`` lists them all); when None, the first bad lines are raised together.

    Returns:
        ``(line_number, sample)`` pairs; blank lines are skipped.

    Raises:
        DataError: for a missing file, a ``.json`` array file, a file without lines, or (``errors`` None) the first
            bad lines (up to 20, all listed).
    """
    path = source.path
    if not os.path.isfile(path):
        raise DataError(path, None, "data file not found", "check --data_file_paths (':'-separated)")
    bad: list[DataError] = []
    samples: list[tuple[int, Sample]] = []
    # utf-8-sig: a BOM written by Windows tools is not part of line 1; surrogateescape: a bad byte fails one line.
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as f:
        for line_no, text in enumerate(f, start=1):
            if not text.strip():
                continue
            if line_no == 1 and text.lstrip().startswith("["):
                raise DataError(path, 1, "this is a JSON array (.json), not JSON Lines (.jsonl)",
                                "convert it: python -c \"import json,sys; [print(json.dumps(r)) for r in "
                                f"json.load(open('{path}'))]\" > {os.path.splitext(path)[0]}.jsonl")
            try:
                samples.append((line_no, parse_line(_utf8(text, path, line_no), path, line_no)))
            except DataError as e:
                bad.append(e)
                if errors is None and len(bad) >= MAX_REPORTED_ERRORS:
                    break
    if errors is not None:
        errors.extend(bad)
    elif bad:
        raise DataError(path, None, f"{len(bad)} bad line(s):\n" + "\n".join(map(str, bad)))
    if not samples and not bad:
        raise DataError(path, None, "the file has no samples", "add one JSON object per line")
    return samples


@functools.lru_cache(maxsize=64)
def load_image(path: str) -> Image.Image:
    """Decode one image as RGB (:func:`vlmr1.data.images.load_rgb`). Cached: GRPO reads each prompt's row once per
    generation in a row."""
    return load_rgb(path)


def image_error(source: str, path: str, error: BaseException) -> DataError:
    """The error for an image that fails to load while a run uses it (``source`` is the row's ``file:line``)."""
    file, _, line = source.rpartition(":")
    return DataError(file or source, int(line) if line.isdigit() else None,
                     f"image {path} does not load ({type(error).__name__}: {error})",
                     "replace or remove the image (`vlmr1 data check` decodes every image), then rerun the same "
                     "command: training resumes from its last checkpoint", kind="corrupt_image")


@dataclass
class LoadedData:
    """The training rows (before the lazy image transform) and the union of extra field names."""

    rows: dict[str, list[Any]]
    extra_keys: list[str]

    def __len__(self) -> int:
        return len(self.rows["id"])


def load_sources(sources: Sequence[SourceFile], task_type: str = "default",
                 validate_method: Callable[[str], None] | None = None, check_images: bool = True,
                 num_threads: int | None = None) -> LoadedData:
    """Read and check every file, and decode every image once (unless ``check_images`` is False).

    Args:
        sources: from :func:`pair_sources`.
        task_type: stored on every row (reward functions see it as ``task_type``).
        validate_method: raises ValueError for an unknown accuracy method; errors are re-raised with file:line.
        check_images: decode every referenced image once (good ones are remembered, see :mod:`vlmr1.data.images`).
        num_threads: decoding threads (default: one per core, plus 4).

    Returns:
        :class:`LoadedData` with column lists ready for ``Dataset.from_dict``.
    """
    cols: dict[str, list[Any]] = {k: [] for k in
                                  ("id", "source", "images", "messages", "solution", "accu_reward_method", "extra")}
    extra_keys: dict[str, None] = {}
    image_checks: list[tuple[str, int, str]] = []
    for source in sources:
        for line_no, sample in read_samples(source):
            method = sample.accu_reward_method or source.reward_method
            if method and validate_method is not None:
                try:
                    validate_method(method)
                except ValueError as e:
                    raise DataError(source.path, line_no, str(e), "use a method listed above") from None
            paths = [os.path.join(source.image_folder, p) for p in sample.images]
            image_checks.extend((source.path, line_no, p) for p in paths)
            cols["id"].append(str(sample.id))
            cols["source"].append(f"{source.path}:{line_no}")
            cols["images"].append(paths)
            cols["messages"].append(json.dumps(sample.messages))
            cols["solution"].append(sample.solution)
            cols["accu_reward_method"].append(method or "default")
            cols["extra"].append(json.dumps(sample.extra))
            extra_keys.update(dict.fromkeys(sample.extra))
    if check_images and image_checks:
        problems = image_problems([path for _, _, path in image_checks], num_threads)
        bad = [(f, n, problems[p]) for f, n, p in image_checks if p in problems]
        if bad:
            (first_file, first_line, (kind, first_msg)), others = bad[0], bad[1:MAX_REPORTED_ERRORS]
            more = len(bad) - 1 - len(others)
            raise DataError(first_file, first_line, "\n".join(
                [first_msg, *(f"{f}:{n}: {k}: {msg}" for f, n, (k, msg) in others)]
                + ([f"... and {more} more"] if more else [])),
                "the image path is os.path.join(<image folder>, <image>): check --image_folders, and replace "
                "images that do not decode (`vlmr1 data check` lists every one)", kind=kind)
    cols["task_type"] = [task_type] * len(cols["id"])
    reserved = set(cols) | {"prompt", "original_sizes", "frame_sizes"}
    clash = [k for k in extra_keys if k in reserved]
    if clash:
        raise DataError(sources[0].path, None, f"extra field name(s) {clash} clash with vlmr1's own columns",
                        "rename those fields in the jsonl")
    return LoadedData(cols, list(extra_keys))


@dataclass
class CheckedData:
    """A run's data, read and checked before any model file is opened."""

    task: Any  # vlmr1.tasks.Task
    sources: list[SourceFile]
    data: LoadedData


def load_checked_data(data_file_paths, image_folders, reward_method=None, task_type: str = "default",
                      check_images: bool = True) -> CheckedData:
    """Read and check every line of every data file for a task (errors name file:line and the fix); loads no model.

    Training and evaluation both start here; ``vlmr1 data check`` (:mod:`vlmr1.data.check`) lists every problem
    instead of stopping at the first ones.
    """
    from vlmr1.rewards import validate_accuracy_method
    from vlmr1.tasks import get_task

    try:
        task = get_task(task_type)
    except ValueError as e:
        raise DataError("--task_type", None, str(e), "`vlmr1 rewards` and the README's task table list the tasks",
                        kind="bad_argument") from e
    sources = pair_sources(data_file_paths, image_folders, reward_method)
    data = load_sources(sources, task_type=task.name, validate_method=validate_accuracy_method,
                        check_images=check_images)
    return CheckedData(task, sources, data)


def make_row_transform(extra_keys: Sequence[str], format_question: Callable[[str], str] | None = None,
                       frame: Any = None):
    """Build the lazy transform that turns stored rows into what ``GRPOTrainer`` and the rewards receive.

    Each output row has ``prompt`` (chat messages with image blocks at each ``<image>``), ``images`` (decoded PIL
    images), ``original_sizes`` (``[width, height]`` per image), ``frame_sizes`` (``[width, height]`` of the frame
    the model answers coordinates in, per image: the resized input for Qwen2.5-VL, ``[1000, 1000]`` for a 0-1000
    grid; the original size when no frame is given), ``solution``, ``accu_reward_method``, ``task_type``, ``id``,
    ``source`` and every extra field of the dataset (None where a line lacks it, so batches stay aligned).

    Args:
        extra_keys: union of the extra field names over the dataset.
        format_question: the task's template, applied to the last user turn.
        frame: a :class:`vlmr1.models.CoordinateFrame` (anything with ``input_size((w, h))``), or None.
    """

    def transform(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"prompt": [], "images": [], "original_sizes": [], "frame_sizes": []}
        out.update({k: [] for k in extra_keys})
        for messages_json, paths, extra_json in zip(batch["messages"], batch["images"], batch["extra"]):
            messages = json.loads(messages_json)
            if format_question is not None:
                last_user = max(i for i, (role, _) in enumerate(messages) if role == "user")
                messages[last_user][1] = format_question(messages[last_user][1])
            images = []
            for path in paths:
                try:
                    images.append(load_image(path))
                except Exception as e:  # noqa: BLE001 - named with its file:line instead of a bare decoder error
                    raise image_error(batch["source"][len(out["prompt"])], path, e) from e
            out["prompt"].append(to_chat_messages([tuple(m) for m in messages]))
            out["images"].append(images)
            out["original_sizes"].append([list(img.size) for img in images])
            out["frame_sizes"].append([list(frame.input_size(img.size)) if frame else list(img.size)
                                       for img in images])
            extra = json.loads(extra_json)
            for k in extra_keys:
                out[k].append(extra.get(k))
        for k in ("id", "source", "solution", "accu_reward_method", "task_type"):
            out[k] = batch[k]
        return out

    return transform


def build_dataset(data: LoadedData, format_question: Callable[[str], str] | None = None, frame: Any = None) -> Dataset:
    """A ``datasets.Dataset`` of the stored rows that decodes images on access (``with_transform``).

    Args: as :func:`make_row_transform`.
    """
    dataset = Dataset.from_dict(data.rows)
    return dataset.with_transform(make_row_transform(data.extra_keys, format_question, frame))


def split_validation(dataset: Dataset, ratio: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Hold out ``ratio`` of the rows (deterministic for a seed); ratio 0 returns ``(dataset, None)``."""
    if not ratio:
        return dataset, None
    if not 0 < ratio < 1:
        raise ValueError(f"--val_split_ratio must be in [0, 1), got {ratio}")
    parts = dataset.train_test_split(test_size=ratio, seed=seed)
    return parts["train"], parts["test"]
