"""Axis-aligned boxes: element-wise IoU, validity, and COCO format conversion.

Boxes are ``xyxy`` = ``[x1, y1, x2, y2]`` in pixel coordinates (see ``masks.py`` for the pixel
convention: a box ``[0, 0, W, H]`` covers the whole image) unless a name says ``xywh`` (COCO's
``[x, y, width, height]``). Degenerate boxes (x2 < x1) have zero area. Everything is vectorised.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["box_area", "box_iou_pairwise", "is_valid_box", "mask_to_bbox", "xywh_to_xyxy", "xyxy_to_xywh"]


def _boxes(b) -> np.ndarray:
    a = np.asarray(b, dtype=np.float64)
    if a.shape[-1] != 4:
        raise ValueError(f"boxes must have a last dimension of 4, got shape {a.shape}")
    return a


def box_area(boxes) -> np.ndarray:
    """Areas of xyxy boxes.

    Args:
        boxes: (..., 4).
    Returns:
        (...) float; zero for degenerate boxes.
    """
    b = _boxes(boxes)
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    union = box_area(a) + box_area(b) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return np.nan_to_num(iou, nan=0.0, posinf=0.0, neginf=0.0)


def box_iou_pairwise(a, b) -> np.ndarray:
    """Element-wise IoU: ``a[i]`` with ``b[i]``.

    Args:
        a, b: (N, 4) xyxy (or broadcastable shapes (..., 4)).
    Returns:
        (N,) float in [0, 1].
    """
    return _iou(_boxes(a), _boxes(b))


def is_valid_box(box, extent: tuple[float, float] | None = None, margin: float = 1.0) -> bool:
    """True for a finite box with ``x2 > x1`` and ``y2 > y1`` lying within ``margin`` frame extents of the frame.

    Args:
        box: ``[x1, y1, x2, y2]`` (or None).
        extent: ``(w, h)`` of the frame the box is in; None skips the "huge" check.
        margin: how far outside the frame a coordinate may lie, in frame extents.
    """
    if box is None or len(box) != 4 or not all(math.isfinite(v) for v in box):
        return False
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        return False
    if extent is not None:
        w, h = extent
        if x1 < -margin * w or x2 > (1 + margin) * w or y1 < -margin * h or y2 > (1 + margin) * h:
            return False
    return True


def xywh_to_xyxy(boxes) -> np.ndarray:
    """COCO ``[x, y, w, h]`` (..., 4) -> ``[x1, y1, x2, y2]`` (..., 4)."""
    b = _boxes(boxes).copy()
    b[..., 2:] += b[..., :2]
    return b


def xyxy_to_xywh(boxes) -> np.ndarray:
    """``[x1, y1, x2, y2]`` (..., 4) -> COCO ``[x, y, w, h]`` (..., 4)."""
    b = _boxes(boxes).copy()
    b[..., 2:] -= b[..., :2]
    return b


def mask_to_bbox(mask: np.ndarray, fmt: str = "xyxy") -> np.ndarray:
    """Tight box around the nonzero pixels of a mask.

    Args:
        mask: (H, W).
        fmt: "xyxy" or "xywh" (COCO). Pixel j spans [j, j+1), so one pixel at (0, 0) gives
            xyxy [0, 0, 1, 1].
    Returns:
        (4,) float; all zeros for an empty mask.
    """
    m = np.asarray(mask) != 0
    cols, rows = np.flatnonzero(m.any(axis=0)), np.flatnonzero(m.any(axis=1))
    if len(cols) == 0:
        return np.zeros(4)
    box = np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float64)
    if fmt == "xywh":
        return xyxy_to_xywh(box)
    if fmt != "xyxy":
        raise ValueError(f"fmt must be 'xyxy' or 'xywh', got {fmt!r}")
    return box
