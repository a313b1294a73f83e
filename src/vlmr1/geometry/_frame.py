"""Reduced-resolution working frame shared by the contour fitters (private).

A mask is cropped to its box and block-averaged so its longer side is at most ``max_side``
cells: each cell holds the fraction of its f x f pixels that are inside, which keeps sub-pixel
boundary information while making every later step cost O(max_side^2) whatever the image size
(IoU is scale-invariant to first order, so fitting at this scale loses little). Cell index
coordinates ``(u, v)`` (a cell's value sits at its centre, at integer u, v) map to image pixels by
``(x, y) = origin + f * (u, v)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils
from scipy import ndimage

from .masks import largest_outer_line

PAD = 2  # empty cells around the crop so contours close and samples never leave the array
_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass
class Frame:
    """Working raster of one mask.

    Attributes:
        low: (h, w) float coverage of the whole mask (all parts), padded.
        total: float coverage summed over the whole mask, in cells.
        f: int block size, image pixels per cell.
        origin: (2,) image x, y of cell (0, 0).
        line: (n, 2) outer contour at level 0.5 enclosing the largest area (the largest part's
            outline), in cell coordinates, clockwise on screen, from its topmost vertex (ties:
            leftmost), first vertex not repeated.
        bounds: (4,) the image rectangle u0, v0, u1, v1 in cell coordinates. Answers are
            rasterised clipped to the image, so an outline may run outside it for free where the
            object is cut by the image border; the fitters score only what is inside.
    """

    low: np.ndarray
    total: float
    f: int
    origin: np.ndarray
    line: np.ndarray
    bounds: np.ndarray
    _part: np.ndarray | None = None
    _part_f: np.ndarray | None = None
    _valid: np.ndarray | None = None
    _valid_f: np.ndarray | None = None

    @property
    def part(self) -> np.ndarray:
        """(h, w) coverage of the largest part only (the 8-connected piece holding ``line``)."""
        if self._part is None:
            labels, n = ndimage.label(self.low > 0, structure=_EIGHT)
            if n <= 1:
                self._part = self.low
            else:
                u, v = self.line[0]  # the topmost vertex lies on an edge of the part's cells
                i0, i1 = int(np.floor(v)), int(np.ceil(v))
                j0, j1 = int(np.floor(u)), int(np.ceil(u))
                cells = labels[i0 : i1 + 1, j0 : j1 + 1]
                k = int(cells.max())  # the covered cell next to the vertex
                self._part = np.where(labels == k, self.low, 0.0)
        return self._part

    @property
    def part_f(self) -> np.ndarray:
        """``part`` flattened in column-major order (pycocotools' pixel order), cached."""
        if self._part_f is None:
            self._part_f = self.part.ravel(order="F")
        return self._part_f

    @property
    def valid(self) -> np.ndarray:
        """(h, w) fraction of each cell that lies inside the image."""
        if self._valid is None:
            h, w = self.low.shape
            u0, v0, u1, v1 = self.bounds
            cols = np.clip(np.minimum(np.arange(w) + 0.5, u1) - np.maximum(np.arange(w) - 0.5, u0), 0.0, 1.0)
            rows = np.clip(np.minimum(np.arange(h) + 0.5, v1) - np.maximum(np.arange(h) - 0.5, v0), 0.0, 1.0)
            self._valid = rows[:, None] * cols[None, :]
        return self._valid

    @property
    def valid_f(self) -> np.ndarray:
        """``valid`` flattened in column-major order, cached."""
        if self._valid_f is None:
            self._valid_f = self.valid.ravel(order="F")
        return self._valid_f

    def centroid(self) -> np.ndarray:
        """Area centroid (2,) of the region inside ``line``, cell coordinates."""
        x, y = self.line[:, 0], self.line[:, 1]
        xn, yn = np.roll(x, -1), np.roll(y, -1)
        cross = x * yn - xn * y
        a = cross.sum()
        if abs(a) < 1e-12:
            return self.line.mean(axis=0)
        return np.array([np.dot(x + xn, cross), np.dot(y + yn, cross)]) / (3.0 * a)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Cell coordinates (..., 2) -> image pixel coordinates (..., 2)."""
        return self.origin + self.f * points


def _block_mean(crop: np.ndarray, f: int) -> np.ndarray:
    """Mean over f x f blocks of a uint8 (h, w) array, zero-padded up to multiples of f."""
    if f == 1:
        return crop.astype(np.float64)
    # pycocotools decodes column-major; summing along the contiguous axis first is ~2x faster
    t = crop.T if crop.flags.f_contiguous else crop
    a, b = t.shape
    a2, b2 = -(-a // f) * f, -(-b // f) * f
    buf = np.zeros((a2, b2), dtype=np.uint8)
    buf[:a, :b] = t
    s = buf.reshape(a2 // f, f, b2).sum(axis=1, dtype=np.uint16)
    s = s.reshape(a2 // f, b2 // f, f).sum(axis=2, dtype=np.uint16)
    out = s * (1.0 / (f * f))
    return out.T if crop.flags.f_contiguous else out


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if len(cols) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def make_frame(mask: np.ndarray, max_side: int, bbox=None) -> Frame:
    """Build the working frame of a (H, W) mask.

    Args:
        mask: (H, W) bool/uint8; C or Fortran order (pycocotools gives Fortran).
        max_side: the longer side of the crop is reduced to at most this many cells.
        bbox: optional known COCO box (x, y, w, h) of the mask's pixels (saves a scan).
    Raises:
        ValueError: if the mask is empty.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    m = mask if mask.dtype == np.uint8 else (mask != 0).view(np.uint8)
    if bbox is None:
        bbox = _bbox(m)
    if bbox is None or bbox[2] <= 0 or bbox[3] <= 0:
        raise ValueError("cannot fit a contour to an empty mask")
    x0, y0, w, h = (int(v) for v in bbox)
    crop = m[y0 : y0 + h, x0 : x0 + w]
    f = max(1, -(-max(h, w) // int(max_side)))
    while True:
        low = np.pad(_block_mean(crop, f), PAD)
        frame = _frame(low, f, x0, y0, m.shape)
        if frame is not None:
            return frame
        if f == 1:
            raise ValueError("cannot fit a contour to an empty mask")
        f = max(1, f // 2)  # parts thinner than half a cell have no 0.5 level: use finer cells


def frame_from_rle(rle: dict, max_side: int) -> Frame:
    """Decode a pycocotools RLE (counts as bytes) and build its frame."""
    x, y, w, h = mask_utils.toBbox(rle)
    return make_frame(mask_utils.decode(rle), max_side, (int(x), int(y), int(w), int(h)))


def _frame(low: np.ndarray, f: int, x0: int, y0: int, image_shape) -> Frame | None:
    line = largest_outer_line(low)
    if line is None or len(line) < 3:
        return None
    origin = np.array([x0 + (0.5 - PAD) * f, y0 + (0.5 - PAD) * f])
    height, width = image_shape
    bounds = np.array([-origin[0], -origin[1], width - origin[0], height - origin[1]]) / f
    return Frame(low=low, total=float(low.sum()), f=f, origin=origin, line=line, bounds=bounds)


def bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample (h, w) ``img`` at cell coordinates x, y (K,), clamped to the array. Returns (K,)."""
    h, w = img.shape
    x = np.clip(x, 0.0, w - 1.000001)
    y = np.clip(y, 0.0, h - 1.000001)
    j, i = x.astype(np.intp), y.astype(np.intp)
    fx, fy = x - j, y - i
    flat = img.ravel()
    k = i * w + j
    a = flat[k] + (flat[k + 1] - flat[k]) * fx
    b = flat[k + w] + (flat[k + w + 1] - flat[k + w]) * fx
    return a + (b - a) * fy


def resample_closed(line: np.ndarray, num: int) -> np.ndarray:
    """``num`` points evenly spaced by arc length along a closed line (n, 2), from its first vertex
    back to it (first and last sample coincide). Returns (num, 2)."""
    closed = np.vstack([line, line[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    q = np.linspace(0.0, s[-1], num)
    return np.stack([np.interp(q, s, closed[:, 0]), np.interp(q, s, closed[:, 1])], axis=1)
