"""Binary masks, COCO RLE and polygons: conversion, rasterisation, IoU and outer contours.

Pixel convention (the COCO one, used everywhere in ``vlmr1.geometry``): pixel ``(row i, col j)``
covers the square ``[j, j+1) x [i, i+1)`` in image coordinates, x to the right and y *down*, so
its centre is ``(j + 0.5, i + 0.5)``. A polygon covers a pixel when the pixel centre is inside it
(this is what ``pycocotools`` does), and contours are traced through the 0.5 level of the pixel
values placed at the pixel centres, so a contour of a rasterised shape rasterises back to it.

"Clockwise" always means clockwise as seen on screen (y down); in these axes a clockwise polygon
has a *positive* shoelace area ``0.5 * sum(x_i * y_{i+1} - x_{i+1} * y_i)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import contourpy
import numpy as np
from pycocotools import mask as mask_utils
from scipy import ndimage

__all__ = [
    "rle_to_mask",
    "mask_to_rle",
    "rle_area",
    "rle_iou",
    "polygon_to_rle",
    "polygon_to_mask",
    "mask_iou",
    "largest_component",
    "outer_contour",
    "signed_area",
]

# Coordinates beyond this many image sizes are pulled in before clipping, so the clipper never
# does arithmetic on values like 1e308 (which overflow to inf). Such polygons are garbage anyway.
_FAR = 64.0


def _compressed_counts(counts: bytes) -> np.ndarray:
    """Decode COCO's compressed counts string (6-bit groups from chr 48, 5 value bits + a continuation bit, the
    last group sign-extended, counts from the fourth on stored as deltas to the count two before).

    Vectorised (a per-byte Python loop cost ~0.1-0.5 ms per real mask, as much as the rest of a fast fit).

    Returns:
        (n,) int64 counts.
    Raises:
        ValueError: a character outside the alphabet, a truncated last count, a count outside [0, 2**32) or one
            longer than 12 groups (60 bits, where pycocotools' own shifts overflow).
    """
    v, _ = _numbers(counts)
    out = v.copy()
    out[1::2] = np.cumsum(v[1::2])  # out[i] = v[i] + out[i - 2] from i = 3 on
    out[2::2] = np.cumsum(v[2::2])
    return _in_range(out)


def _compressed_counts_many(strings: list[bytes]) -> list[np.ndarray]:
    """:func:`_compressed_counts` of many strings in one pass over their concatenation.

    Raises:
        ValueError: as :func:`_compressed_counts`, if any string is bad (which one is not said).
    """
    stops = np.cumsum([len(s) for s in strings], dtype=np.intp)
    v, ends = _numbers(b"".join(strings), stops)
    owner = np.searchsorted(stops, ends, side="right")  # the string each number belongs to
    per = np.bincount(owner, minlength=len(strings))
    first = np.cumsum(per) - per
    index = np.arange(len(v)) - first[owner]
    out = v.copy()
    for chain in ((index % 2 == 1), (index % 2 == 0) & (index >= 2)):  # as in _compressed_counts, per string
        at = np.flatnonzero(chain)
        run = np.cumsum(v[at])
        out[at] = run - (run - v[at])[np.searchsorted(owner[at], owner[at])]
    return np.split(_in_range(out), first[1:])


def _numbers(joined: bytes, stops: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The signed numbers (int64) of compressed counts strings joined end to end (``stops``: where each ends;
    None: one string), before the delta step, and the byte index where each number ends."""
    b = np.frombuffer(joined, dtype=np.uint8)
    n = len(b)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.intp)
    if b.min() < 48 or b.max() >= 112:
        bad = int(np.argmax((b < 48) | (b >= 112)))
        raise ValueError(f"RLE counts hold {chr(joined[bad])!r}, not a COCO compressed-RLE character")
    c = b - np.uint8(48)
    last = (c & 0x20) == 0  # the last group of a number has no continuation bit
    if not (last[-1] if stops is None else last[stops[np.diff(stops, prepend=0) > 0] - 1].all()):
        raise ValueError("RLE counts end in the middle of a number")
    ends = np.flatnonzero(last)
    if len(ends) == n:  # every number is one group
        return (c & 0x1F).astype(np.int64) - ((c & 0x10).astype(np.int64) << 1), ends
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    size = ends - starts + 1
    if size.max() > 12:  # keeps the int64 shifts below exact
        raise ValueError("RLE count is out of range")
    pos = np.arange(n) - np.repeat(starts, size)
    v = np.add.reduceat((c & 0x1F).astype(np.int64) << (5 * pos), starts)
    v -= (c[ends] & 0x10).astype(np.int64) << (5 * size - 4)  # sign extension of the last group
    return v, ends


def _in_range(counts: np.ndarray) -> np.ndarray:
    if len(counts) and (counts.min() < 0 or counts.max() >= 1 << 32):
        raise ValueError("RLE count is out of range")
    return counts


def _checked_rles(rles: list) -> list[tuple[dict, np.ndarray] | ValueError]:
    """:func:`_checked_rle` of many RLEs, the compressed ones decoded together; each bad one gets its own error."""
    out: list = [None] * len(rles)
    batch = []  # (index, h, w, counts bytes)
    for k, rle in enumerate(rles):
        try:
            if isinstance(rle, Mapping) and isinstance(rle.get("counts"), (str, bytes)) and "size" in rle:
                h, w = (int(v) for v in rle["size"])
                counts = rle["counts"]
                batch.append((k, h, w, counts.encode("ascii") if isinstance(counts, str) else counts))
                continue
        except (TypeError, ValueError, OverflowError):  # bad size or non-ASCII counts: the single check says why
            pass
        out[k] = _checked_or_error(rle)
    try:
        decoded = _compressed_counts_many([counts for *_, counts in batch])
    except ValueError:  # some string is bad: find out which, one by one
        decoded = [None] * len(batch)
    for (k, h, w, counts), values in zip(batch, decoded):
        if values is not None and h >= 0 and w >= 0 and int(values.sum()) == h * w:
            out[k] = {"size": [h, w], "counts": counts}, values
        else:
            out[k] = _checked_or_error(rles[k])
    return out


def _checked_or_error(rle) -> tuple[dict, np.ndarray] | ValueError:
    try:
        return _checked_rle(rle)
    except ValueError as e:
        return e


def _as_rle(rle: Mapping) -> dict:
    """A pycocotools-ready compressed RLE (counts as bytes) from a COCO RLE dict, checked for consistency.

    Accepts compressed counts (str or bytes) and uncompressed counts (list of ints). The counts must add up to
    H * W: pycocotools trusts them, and corrupt ones make its C code hang or write past the (H, W) buffer.

    Raises:
        ValueError: not a mapping with 'size' and 'counts', or counts that do not describe an (H, W) mask.
    """
    return _checked_rle(rle)[0]


def _checked_rle(rle: Mapping) -> tuple[dict, np.ndarray]:
    """:func:`_as_rle` and the decoded run lengths (n,) int64 it checked (column-major, zeros first)."""
    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise ValueError("an RLE must be a mapping with 'size' and 'counts'")
    try:
        h, w = (int(v) for v in rle["size"])
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"RLE size must be [H, W], got {rle['size']!r:.60}") from None
    counts = rle["counts"]
    if h < 0 or w < 0:
        raise ValueError(f"RLE size must not be negative, got {[h, w]}")
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("RLE counts must be an ASCII string") from None
    if isinstance(counts, list):
        values = counts
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise ValueError("uncompressed RLE counts must be non-negative integers")
    elif isinstance(counts, bytes):
        values = _compressed_counts(counts)
    else:
        raise ValueError(f"RLE counts must be a string or a list of integers, got {type(counts).__name__}")
    total = int(values.sum()) if isinstance(values, np.ndarray) else sum(values)
    if total != h * w:
        raise ValueError(f"RLE counts add up to {total} pixels, not H * W = {h * w}")
    if isinstance(counts, list):  # each count is <= H * W now
        return mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w), np.asarray(values, dtype=np.int64)
    return {"size": [h, w], "counts": counts}, values


def rle_to_mask(rle: Mapping) -> np.ndarray:
    """Decode a COCO RLE.

    Args:
        rle: ``{"size": [H, W], "counts": str | bytes | list[int]}``.
    Returns:
        bool array (H, W).
    """
    return mask_utils.decode(_as_rle(rle)).astype(bool)


def mask_to_rle(mask: np.ndarray) -> dict:
    """Encode a mask as compressed COCO RLE.

    Args:
        mask: array (H, W), nonzero = inside.
    Returns:
        ``{"size": [H, W], "counts": str}`` (str so it is JSON-serialisable).
    """
    m = np.asfortranarray(np.asarray(mask) != 0, dtype=np.uint8)
    rle = mask_utils.encode(m)
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_area(rle: Mapping) -> int:
    """Number of pixels inside an RLE mask."""
    return int(mask_utils.area(_as_rle(rle)))


def rle_iou(a: Mapping, b: Mapping) -> float:
    """IoU of two RLE masks of the same size (0.0 when both are empty)."""
    return float(mask_utils.iou([_as_rle(a)], [_as_rle(b)], [0])[0, 0])


def _same_size_iou(a: dict, b: dict) -> float:
    """:func:`rle_iou` of two checked pycocotools RLEs known to have the same size, the same number (integer
    intersection over integer union) at a third of pycocotools' ``iou`` call overhead."""
    inter, area_a, area_b = (int(v) for v in mask_utils.area([mask_utils.merge([a, b], intersect=True), a, b]))
    return inter / (area_a + area_b - inter) if inter else 0.0


def _clean_polygon(points, height: int, width: int) -> np.ndarray | None:
    """Polygon vertices (K, 2) clipped to the image rectangle, or None if nothing is left.

    Never raises on bad numbers: non-finite or non-numeric input gives None.
    """
    try:
        p = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 3:
        return None
    (lo_x, lo_y), (hi_x, hi_y) = p.min(axis=0).tolist(), p.max(axis=0).tolist()
    if not all(map(math.isfinite, (lo_x, lo_y, hi_x, hi_y))):  # NaN and inf reach the min or max
        return None
    if lo_x >= 0 and lo_y >= 0 and hi_x <= width and hi_y <= height:
        return p
    if hi_x <= 0 or hi_y <= 0 or lo_x >= width or lo_y >= height:
        return None
    from matplotlib.path import Path  # lazy: only needed for polygons that leave the image
    from matplotlib.transforms import Bbox

    far = _FAR * max(height, width, 1)
    p = np.clip(p, -far, far)
    clipped = Path(np.vstack([p, p[:1]]), closed=True).clip_to_bbox(Bbox([[0, 0], [width, height]]))
    v = np.asarray(clipped.vertices, dtype=np.float64)
    if len(v) < 4 or not np.isfinite(v).all():
        return None
    return v[:-1]  # drop the repeated closing vertex


def _check_size(height, width) -> tuple[int, int]:
    h, w = int(height), int(width)
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {(height, width)}")
    return h, w


def polygon_to_rle(points, height: int, width: int) -> dict:
    """Rasterise a polygon to a pycocotools RLE (counts as bytes), clipped to the image.

    Args:
        points: (K, 2) x, y vertices in pixel coordinates; any junk gives an empty mask.
        height, width: image size.
    Returns:
        ``{"size": [H, W], "counts": bytes}``; never larger than the image.
    """
    h, w = _check_size(height, width)
    p = _clean_polygon(points, h, w)
    if p is None:
        return mask_utils.encode(np.zeros((h, w), dtype=np.uint8, order="F"))
    # pycocotools treats a 4-number list as a box, so pass >= 3 vertices only (checked above).
    return mask_utils.frPyObjects([p.ravel()], h, w)[0]  # an array, not a list: pycocotools copies it faster


def polygon_to_mask(points, height: int, width: int) -> np.ndarray:
    """Rasterise a polygon (pixel centres inside), clipped to the image.

    Args:
        points: (K, 2) float x, y in pixels; NaN/inf/garbage or fewer than 3 points -> empty mask.
        height, width: output size.
    Returns:
        bool array (height, width).
    """
    return mask_utils.decode(polygon_to_rle(points, height, width)).astype(bool)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two same-shape masks (0.0 when both are empty).

    Args:
        a, b: arrays (H, W), nonzero = inside.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected part of a mask.

    Args:
        mask: array (H, W), nonzero = inside.
    Returns:
        bool array (H, W); all False if the mask is empty.
    """
    m = np.asarray(mask) != 0
    labels, n = ndimage.label(m, structure=np.ones((3, 3), dtype=bool))
    if n <= 1:
        return m
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def signed_area(points: np.ndarray) -> float:
    """Shoelace area of a closed polygon (K, 2); positive = clockwise on screen (y down)."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


_GRID = np.zeros((2, 0, 0))


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Index coordinates x, y (h, w): views of one grid grown on demand (building one per call
    cost as much as tracing the contour)."""
    global _GRID
    if _GRID.shape[1] < h or _GRID.shape[2] < w:
        _GRID = np.indices((max(h, _GRID.shape[1], 128), max(w, _GRID.shape[2], 128)), dtype=np.float64)[::-1]
    return _GRID[0, :h, :w], _GRID[1, :h, :w]


def largest_outer_line(z: np.ndarray, level: float = 0.5) -> np.ndarray | None:
    """Outer boundary of the largest part of ``z >= level``, in array index coordinates.

    Args:
        z: float array (h, w) whose border is below ``level`` (pad it), values at index points.
    Returns:
        (N, 2) x, y vertices of the closed line enclosing the largest area, clockwise on screen,
        starting at the topmost vertex (ties: leftmost), first vertex not repeated; None if empty.
    """
    x, y = _grid(*z.shape)
    gen = contourpy.SerialContourGenerator(
        x,
        y,
        np.asarray(z, dtype=np.float64),
        None,
        corner_mask=False,
        line_type=contourpy.LineType.Separate,
        fill_type=contourpy.FillType.OuterOffset,
        quad_as_tri=False,
        z_interp=contourpy.ZInterp.Linear,
    )
    best, best_area = None, 0.0
    for line in gen.lines(level):  # closed: the last vertex repeats the first
        if len(line) < 4:
            continue
        a = 0.5 * float(np.dot(line[:-1, 0], line[1:, 1]) - np.dot(line[1:, 0], line[:-1, 1]))
        if abs(a) > abs(best_area):
            best, best_area = line[:-1], a
    if best is None:
        return None
    if best_area < 0:  # contourpy's orientation depends on which side is high; normalise
        best = best[::-1]
    top = int(np.lexsort((best[:, 0], best[:, 1]))[0])
    return np.concatenate([best[top:], best[:top]]) if top else np.ascontiguousarray(best)


def outer_contour(mask: np.ndarray) -> np.ndarray:
    """Outer contour of the largest part of a mask, in pixel coordinates.

    Traced through pixel edges (the 0.5 level between pixel centres), clockwise on screen, from
    the topmost vertex (ties: leftmost); filling it with :func:`polygon_to_mask` gives the part
    back except for half-pixel corner cuts.

    Args:
        mask: array (H, W), nonzero = inside.
    Returns:
        (N, 2) float x, y vertices (first not repeated); shape (0, 2) for an empty mask.
    """
    z = np.pad((np.asarray(mask) != 0).astype(np.float64), 1)
    line = largest_outer_line(z)
    if line is None:
        return np.zeros((0, 2))
    return line - 0.5  # index i of the padded array is pixel i - 1, whose centre is at i - 0.5
