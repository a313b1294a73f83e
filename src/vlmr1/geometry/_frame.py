"""Reduced-resolution working frame shared by the contour fitters (private).

A mask is cropped to its box and block-averaged so its longer side is at most ``max_side``
cells: each cell holds the fraction of its f x f pixels that are inside, which keeps sub-pixel
boundary information while making every later step cost O(max_side^2) whatever the image size
(IoU is scale-invariant to first order, so fitting at this scale loses little). Cell index
coordinates ``(u, v)`` (a cell's value sits at its centre, at integer u, v) map to image pixels by
``(x, y) = origin + f * (u, v)``.

Frames are built straight from COCO run lengths, many masks at once (``frames_from_counts``):
the (H, W) masks are never decoded, the block coverage of all masks comes from a few histograms
over their runs, and one contour tracing covers all of them, stacked as tiles of one raster
(each tile's zero border keeps the tiles' outlines apart). Per mask that is a few numpy calls
instead of a decode, a crop, a block mean and a tracer set-up, which cost more than the fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import contourpy
import numpy as np
from pycocotools import mask as mask_utils
from scipy import ndimage

from .masks import _compressed_counts

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
    _valid: np.ndarray | None = None

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
    def valid(self) -> np.ndarray:
        """(h, w) fraction of each cell that lies inside the image."""
        if self._valid is None:
            h, w = self.low.shape
            u0, v0, u1, v1 = self.bounds
            self._valid = inside_fraction(np.arange(h), v0, v1)[:, None] * inside_fraction(np.arange(w), u0, u1)
        return self._valid

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


def inside_fraction(k: np.ndarray, lo, hi) -> np.ndarray:
    """Fraction of each unit cell [k - 0.5, k + 0.5) inside [lo, hi) (broadcasts)."""
    return np.clip(np.minimum(k + 0.5, hi) - np.maximum(k - 0.5, lo), 0.0, 1.0)


def mask_counts(mask: np.ndarray) -> np.ndarray:
    """COCO run lengths (column-major, zeros first) of an (H, W) mask."""
    m = np.asfortranarray(np.asarray(mask) != 0, dtype=np.uint8)
    return _compressed_counts(mask_utils.encode(m)["counts"])


def make_frame(mask: np.ndarray, max_side: int) -> Frame:
    """Build the working frame of a (H, W) mask (any dtype, nonzero = inside).

    Raises:
        ValueError: if the mask is not 2-D or is empty.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    out = frames_from_counts([(mask_counts(mask), *mask.shape)], max_side)[0]
    if isinstance(out, ValueError):
        raise out
    return out


def frames_from_counts(masks: list[tuple[np.ndarray, int, int]], max_side: int) -> list[Frame | ValueError]:
    """Frames of many masks given as checked COCO run lengths (column-major, zeros first).

    Args:
        masks: (counts, H, W) per mask; counts add up to H * W.
        max_side: the longer side of each crop is reduced to at most this many cells.
    Returns:
        Per mask, a Frame, or ValueError("cannot fit a contour to an empty mask").
    """
    out: list = [None] * len(masks)
    if not masks:
        return out
    heights = np.array([h for _, h, _ in masks], dtype=np.int64)
    col, a, b, owner = _pieces([c for c, _, _ in masks], heights)
    n = np.bincount(owner, minlength=len(masks))
    for k in np.flatnonzero(n == 0):
        out[k] = ValueError("cannot fit a contour to an empty mask")
    todo = np.flatnonzero(n > 0)
    first = (np.cumsum(n) - n)[todo]
    # pieces run in column-major order, so each mask's first and last piece hold its columns
    x0, x1 = col[first], col[first + n[todo] - 1]
    y0, y1 = np.minimum.reduceat(a, first), np.maximum.reduceat(b, first)
    f = np.maximum(1, -(-np.maximum(x1 - x0 + 1, y1 - y0) // int(max_side)))
    while len(todo):
        keep = np.isin(owner, todo)
        frames = _tiles(col[keep], a[keep], b[keep], np.searchsorted(todo, owner[keep]), x0, y0, x1 - x0 + 1,
                        y1 - y0, f, [masks[k][1:] for k in todo])
        again = []
        for k, frame in enumerate(frames):
            if frame is not None:
                out[todo[k]] = frame
            elif f[k] == 1:
                out[todo[k]] = ValueError("cannot fit a contour to an empty mask")
            else:
                again.append(k)  # parts thinner than half a cell have no 0.5 level: finer cells
        todo, x0, y0, x1, y1, f = (v[again] for v in (todo, x0, y0, x1, y1, f))
        f = np.maximum(1, f // 2)
    return out


def _pieces(counts: list[np.ndarray], heights: np.ndarray):
    """Runs of ones of all masks cut at column ends: column, rows [a, b) and mask of each piece,
    in mask then column-major order."""
    lens = np.array([len(c) for c in counts])
    cat = np.concatenate(counts).astype(np.int64)
    owner = np.repeat(np.arange(len(counts)), lens)
    starts = np.cumsum(lens) - lens
    run = np.concatenate([[0], np.cumsum(cat)])
    ends = run[1:] - np.repeat(run[starts], lens)  # per-mask running sums (exact integers)
    ones = ((np.arange(len(cat)) - np.repeat(starts, lens)) % 2 == 1) & (cat > 0)
    s, e, owner = ends[ones] - cat[ones], ends[ones], owner[ones]
    h = heights[owner]
    c0, c1 = s // h, (e - 1) // h
    if (c1 > c0).any():  # runs through the bottom of a column: split them per column
        reps = c1 - c0 + 1
        k = np.repeat(np.arange(len(s)), reps)
        col = c0[k] + np.arange(len(k)) - np.repeat(np.cumsum(reps) - reps, reps)
        return col, np.maximum(s[k] - col * h[k], 0), np.minimum(e[k] - col * h[k], h[k]), owner[k]
    return c0, s - c0 * h, e - c0 * h, owner


def _tiles(col, a, b, owner, x0, y0, w, h, f, shapes) -> list[Frame | None]:
    """Frames of boxes (x0, y0, w, h) at block sizes f, from their column pieces; None where no
    outline was found.

    All tiles (each padded by PAD) are stacked in one raster. A block counts f pixels for each
    piece running through it and fewer for one that starts or ends inside it, so with a piece's
    start at row a adding +1 to its block and its end b adding -1, a block holds
    f * (running sum down the stack) - sum of +-(row mod f) of the ends in it, exactly.
    """
    ni, nj = -(-h // f), -(-w // f)
    th, tw = ni + 2 * PAD, nj + 2 * PAD
    top = np.cumsum(th) - th  # first stack row of each tile
    rows, width = int(th.sum()), int(tw.max())
    a, b = a - y0[owner], b - y0[owner]
    fo = f[owner]
    j = (col - x0[owner]) // fo + PAD
    base = top[owner] + PAD
    idx = np.concatenate([(base + a // fo) * width + j, (base + b // fo) * width + j])
    num = np.bincount(idx, np.concatenate([np.ones(len(a)), -np.ones(len(b))]), rows * width)
    rest = np.bincount(idx, np.concatenate([a % fo, -(b % fo)]), rows * width)
    fr = np.repeat(f, th)[:, None]
    cnt = fr * np.cumsum(num.reshape(rows, width), axis=0) - rest.reshape(rows, width)
    low = cnt * (1.0 / (fr * fr))
    totals = np.add.reduceat(cnt.sum(axis=1), top) / (f * f)  # integer counts: exact until the division
    origin = np.stack([x0 + (0.5 - PAD) * f, y0 + (0.5 - PAD) * f], axis=1)
    size = np.array(shapes, dtype=np.float64)  # (H, W)
    bounds = np.concatenate([-origin, size[:, ::-1] - origin], axis=1) / f[:, None]
    return [None if line is None else
            Frame(low=low[t : t + th[k], : tw[k]].copy(), total=float(totals[k]), f=int(f[k]), origin=origin[k],
                  line=line, bounds=bounds[k])
            for k, (t, line) in enumerate(zip(top, _outer_lines(low, top)))]


def _outer_lines(low: np.ndarray, top: np.ndarray) -> list[np.ndarray | None]:
    """Per tile of the stack: the 0.5-level closed line enclosing the largest area, clockwise on
    screen, from its topmost vertex (ties: leftmost), in the tile's cell coordinates; or None."""
    y, x = np.indices(low.shape, dtype=np.float64)
    gen = contourpy.SerialContourGenerator(
        x, y, low, None, corner_mask=False, line_type=contourpy.LineType.ChunkCombinedOffset,
        fill_type=contourpy.FillType.OuterOffset, quad_as_tri=False, z_interp=contourpy.ZInterp.Linear)
    points, offsets = (v[0] for v in gen.lines(0.5))
    out: list = [None] * len(top)
    if points is None:
        return out
    offsets = offsets.astype(np.intp)
    px, py = points[:, 0], points[:, 1]
    cross = px[:-1] * py[1:] - px[1:] * py[:-1]
    cross[offsets[1:-1] - 1] = 0.0  # pairs that straddle two lines
    area = 0.5 * np.add.reduceat(np.append(cross, 0.0), offsets[:-1])
    size = np.diff(offsets) - 1  # closed lines repeat their first vertex
    tile = np.searchsorted(top, py[offsets[:-1]], side="right") - 1
    ok = np.flatnonzero((size >= 3) & (area != 0))
    order = ok[np.lexsort((-np.abs(area[ok]), tile[ok]))]  # per tile, largest area first
    best = order[np.flatnonzero(np.diff(tile[order], prepend=-1))]
    # gather the chosen lines clockwise (contourpy's orientation depends on which side is high)
    n = size[best]
    first = np.cumsum(n) - n
    k = np.arange(n.sum()) - np.repeat(first, n)
    rev = np.repeat(area[best] < 0, n)
    pts = points[np.repeat(offsets[best], n) + np.where(rev, np.repeat(n, n) - 1 - k, k)]
    pts[:, 1] -= np.repeat(top[tile[best]], n)
    # then from the topmost vertex (ties: leftmost)
    line_id = np.repeat(np.arange(len(best)), n)
    start = np.lexsort((pts[:, 0], pts[:, 1], line_id))[first] - first
    pts = pts[np.repeat(first, n) + (k + np.repeat(start, n)) % np.repeat(n, n)]
    for t, part in zip(tile[best], np.split(pts, first[1:])):
        out[t] = part
    return out


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
