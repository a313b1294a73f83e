"""Images: decoding to the RGB the model sees, and the check train, eval and ``vlmr1 data check`` run before a model
loads.

The check decodes every image completely (a header read passes a truncated file, which then fails mid-run), in
threads (Pillow's decoders release the GIL), and remembers each good file by (size, mtime) in
``$VLMR1_CACHE_DIR/image_checks.json`` (default ``~/.cache/vlmr1``): a rerun over the same files only stats them.
The cache lives with the user, not the data, because image folders are often shared and read-only, and one entry
then serves every dataset that uses the file. Only good files are remembered; a changed file is decoded again. Under
torchrun the processes split the decoding between them.

Conversion to RGB (:func:`to_rgb`) keeps what the image shows: 16-bit and 32-bit grey images are scaled to 8 bits
(Pillow's own conversion clips them, so a 16-bit PNG turns almost white), and transparent pixels (RGBA, LA, PA,
palette or grey images with a transparent colour) are blended onto white, as transformers' image processors do.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from vlmr1.fileio import atomic_write

CACHE_VERSION = 1
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_WITH_ALPHA = ("RGBA", "RGBa", "LA", "La", "PA")
_cache_lock = threading.Lock()


def _to_uint8(values: np.ndarray, sixteen_bit: bool) -> np.ndarray:
    """Grey values of a 16/32-bit integer or float image as 0-255."""
    v = values.astype(np.float64)
    if sixteen_bit:
        v = v / 257.0  # 65535 -> 255
    elif values.dtype.kind == "f":
        v = v * 255.0 if v.size and np.nanmin(v) >= 0 and np.nanmax(v) <= 1 else v
    elif v.size and v.max() > 255:  # 32-bit integers holding 16-bit data (older Pillow reads 16-bit PNGs so)
        v = v / 257.0
    return np.clip(np.nan_to_num(np.rint(v)), 0, 255).astype(np.uint8)


def to_rgb(img: Image.Image) -> Image.Image:
    """The image as 8-bit RGB, keeping what it shows (see the module docstring); an RGB image is returned as is.

    Raises:
        ValueError: a mode Pillow cannot convert to RGB.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        grey = _to_uint8(np.asarray(img), sixteen_bit=mode in _SIXTEEN_BIT)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode in _WITH_ALPHA or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def load_rgb(path: str) -> Image.Image:
    """Decode ``path`` completely as 8-bit RGB (:func:`to_rgb`)."""
    with Image.open(path) as img:
        img.load()
        return to_rgb(img)


def decode_problem(path: str) -> tuple[str, str] | None:
    """``(kind, message)`` when ``path`` is missing (``missing_image``) or does not decode completely to RGB
    (``corrupt_image``), else None.

    JPEGs decode at 1/8 scale (``draft``): the whole compressed stream is still read and decoded, so truncated or
    corrupt data fails the same way, at about half the cost.
    """
    if not os.path.isfile(path):
        return "missing_image", f"{path}: image file not found"
    try:
        with Image.open(path) as img:
            if img.format == "JPEG":
                img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
            to_rgb(img)
    except Image.DecompressionBombError as e:
        return "corrupt_image", f"{path}: too large to decode ({type(e).__name__}: {e})"
    except Exception as e:  # noqa: BLE001 - any decoder failure is the finding itself
        return "corrupt_image", f"{path}: does not decode ({type(e).__name__}: {e})"
    return None


def cache_path() -> Path:
    """Where good images are remembered: ``$VLMR1_CACHE_DIR`` (else ``$XDG_CACHE_HOME/vlmr1``, ``~/.cache/vlmr1``)."""
    root = os.environ.get("VLMR1_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vlmr1")
    return Path(root) / "image_checks.json"


def _read_cache(path: Path) -> dict[str, list[int]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("files"), dict):
        return {}
    return data["files"]


def _write_cache(path: Path, new: dict[str, list[int]]) -> None:
    with _cache_lock:  # re-read first: another process (a torchrun rank) may have added files meanwhile
        files = _read_cache(path)
        files.update(new)
        try:
            atomic_write(path, json.dumps({"version": CACHE_VERSION, "files": files}, separators=(",", ":")))
        except OSError:  # a read-only home: the check still ran, it is just not remembered
            pass


def _identity(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _process_group() -> tuple[int, int] | None:
    """(rank, world size) when this process is one of several under torch.distributed (``vlmr1 train`` under
    torchrun has set the group up by the time it checks data), else None."""
    if "torch" not in sys.modules:  # `vlmr1 data check` never imports torch for this
        return None
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist.get_rank(), dist.get_world_size()
    return None


def image_problems(paths: Iterable[str], workers: int | None = None,
                   use_cache: bool = True) -> dict[str, tuple[str, str]]:
    """Decode every image not already known to be good, in ``workers`` threads.

    Under torch.distributed every process decodes its own share and all of them get every result (each must stop
    on the same bad image), so N processes on a node do the work once, not N times.

    Args:
        paths: image files (duplicates are checked once).
        workers: threads (default: Python's ``ThreadPoolExecutor`` default, ``min(32, cpus + 4)``).
        use_cache: skip files remembered as good with the same size and mtime, and remember the new good ones.

    Returns:
        ``{path: (kind, message)}`` for every missing or undecodable image.
    """
    unique = list(dict.fromkeys(paths))
    group = _process_group()
    mine = unique[group[0]::group[1]] if group else unique  # the whole list is sharded: caches may differ by node
    cache_file = cache_path()
    known = _read_cache(cache_file) if use_cache else {}

    def check(path: str) -> tuple[str, tuple[str, str] | None, list[int] | None]:
        key = os.path.abspath(path)
        identity = _identity(path)
        if identity is not None and known.get(key) == identity:
            return key, None, None
        return key, decode_problem(path), identity

    problems: dict[str, tuple[str, str]] = {}
    good: dict[str, list[int]] = {}
    with ThreadPoolExecutor(workers) as pool:
        for path, (key, problem, identity) in zip(mine, pool.map(check, mine)):
            if problem is not None:
                problems[path] = problem
            elif identity is not None:
                good[key] = identity
    if group:
        import torch.distributed as dist

        shares: list = [None] * group[1]
        dist.all_gather_object(shares, (problems, good))
        problems = {path: problem for share, _ in shares for path, problem in share.items()}
        good = {key: identity for _, share in shares for key, identity in share.items()}
    if use_cache and good and os.environ.get("LOCAL_RANK", "0") == "0":  # one writer per node
        _write_cache(cache_file, good)
    return problems
