"""Atomic file writes: a reader sees the old file or the whole new one, never a part, and the new one survives a
crash. Every file vlmr1 writes goes through :func:`atomic_open` (streamed) or :func:`atomic_write`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a directory so a rename inside it survives a crash (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_open(path: str | os.PathLike, durable: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through: a temp file in the same folder (created if missing), renamed over
    ``path`` when the block ends without error (and removed when it raises).

    Args:
        path: the file to write; an existing one is replaced.
        durable: fsync the file before the rename and the folder after it. Only extraction of image archives turns
            it off (an fsync per image costs minutes on COCO; a torn file there fails the size check of a rerun).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike, data: bytes | str | Iterable[str]) -> None:
    """Write bytes, UTF-8 text, or an iterable of lines (each written with a trailing newline, streamed) to ``path``
    atomically and durably (:func:`atomic_open`)."""
    with atomic_open(path) as f:
        if isinstance(data, bytes):
            f.write(data)
        elif isinstance(data, str):
            f.write(data.encode("utf-8"))
        else:
            for line in data:
                f.write(line.encode("utf-8") + b"\n")


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSON Lines (UTF-8, not ASCII-escaped) atomically; returns the number of lines."""
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    atomic_write(path, lines)
    return len(lines)
