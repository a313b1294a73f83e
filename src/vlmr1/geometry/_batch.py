"""Many working frames at once (private to the fitters): bilinear sampling and polygon IoU.

A fit takes the same small steps for every mask, so doing them for a whole batch of masks per numpy
call removes the per-call overhead that dominated one-mask-at-a-time fitting. The frames' rasters
are stacked as tiles of one array (each tile keeps its own size, the stack is as wide as the widest);
point arrays hold K points of each of the b masks picked by ``sel`` (indices into the batch,
ascending), laid out (b, K).

The stack is complex: real part the mask coverage (``Frame.low``, all parts: the answer is scored
against the whole mask), imaginary part the fraction of the cell inside the image, so one gather
reads both.
"""

from __future__ import annotations

import numpy as np

from ._frame import Frame, inside_fraction


class FrameBatch:
    """The rasters of a list of frames, for vectorised sampling and IoU."""

    def __init__(self, frames: list[Frame]):
        self.h = np.array([f.low.shape[0] for f in frames], dtype=np.intp)
        self.w = np.array([f.low.shape[1] for f in frames], dtype=np.intp)
        self.total = np.array([f.total for f in frames])
        top = np.cumsum(self.h) - self.h
        rows, self.width = int(self.h.sum()), int(self.w.max())
        low = np.zeros((rows, self.width))
        for t, f in zip(top, frames):
            low[t : t + f.low.shape[0], : f.low.shape[1]] = f.low
        # validity as Frame.valid computes it, for all tiles at once
        bounds = np.stack([f.bounds for f in frames])
        tile = np.repeat(np.arange(len(frames)), self.h)
        fy = inside_fraction(np.arange(rows) - top[tile], bounds[tile, 1], bounds[tile, 3])
        fx = inside_fraction(np.arange(self.width), bounds[:, :1], bounds[:, 2:3])
        self.field = low + 1j * (fy[:, None] * fx[tile])
        # row prefix sums with a leading 0: prefix[r, j] = sum of the row's first j cells
        self.prefix = np.zeros((rows, self.width + 1), dtype=complex)
        np.cumsum(self.field, axis=1, out=self.prefix[:, 1:])
        self.field, self.prefix = self.field.ravel(), self.prefix.ravel()
        self.off, self.poff = top * self.width, top * (self.width + 1)

    def sample(self, x: np.ndarray, y: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """Bilinear values (b, K) complex at cell coordinates x, y (b, K), clamped to each raster."""
        x = np.minimum(np.maximum(x, 0.0), self.w[sel, None] - 1.000001)
        y = np.minimum(np.maximum(y, 0.0), self.h[sel, None] - 1.000001)
        j, i = x.astype(np.intp), y.astype(np.intp)
        fx, fy = x - j, y - i
        gx, gy = 1.0 - fx, 1.0 - fy
        k = self.off[sel, None] + i * self.width + j
        v = self.field
        above = v.take(k) * gx + v.take(k + 1) * fx
        k += self.width
        return above * gy + (v.take(k) * gx + v.take(k + 1) * fx) * fy

    def iou(self, x: np.ndarray, y: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """IoU (b,) of closed polygons (vertices x, y (b, K), cell coordinates, finite) with the masks.

        A cell counts as inside when its centre is (even-odd rule, as pycocotools rasterises); its
        coverage then counts toward the intersection and its validity toward the polygon's area
        (only the part inside the image counts, as answers are rasterised clipped). The union adds
        the whole mask's coverage. Rows are scanned through the crossings of each polygon edge
        with the cell-centre lines, sorted, and summed with the row prefix sums, so the cost grows
        with the outline, not the raster.
        """
        b_, k_ = x.shape
        h, w = self.h[sel, None], self.w[sel]
        lim = 4.0 * (h + w[:, None])  # keeps runaway curves' arithmetic small; they score ~0 anyway
        x, y = np.minimum(np.maximum(x, -lim), lim), np.minimum(np.maximum(y, -lim), lim)
        xn = np.concatenate([x[:, 1:], x[:, :1]], axis=1)
        yn = np.concatenate([y[:, 1:], y[:, :1]], axis=1)
        i0 = np.minimum(np.maximum(np.ceil(np.minimum(y, yn)), 0), h).astype(np.intp)  # rows lo <= r < hi
        n = (np.minimum(np.maximum(np.ceil(np.maximum(y, yn)), 0), h).astype(np.intp) - i0).ravel()
        edge = np.repeat(np.arange(n.size), n)
        row = np.arange(edge.size) - np.repeat(np.cumsum(n) - n - i0.ravel(), n)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = ((xn - x) / (yn - y)).ravel()
        xc = x.ravel().take(edge) + (row - y.ravel().take(edge)) * slope.take(edge)
        mask = edge // k_
        # cell j is right of the crossing when j > x: prefix index floor(x) + 1, clamped to the row
        col = np.minimum(np.maximum(np.floor(xc) + 1, 0), w.take(mask)).astype(np.intp)
        base = self.poff[sel]
        key = np.sort(base.take(mask) + row * (self.width + 1) + col)
        owner = np.searchsorted(base, key, side="right") - 1
        # each row of each polygon has an even number of crossings, so global parity is row parity
        vals = self.prefix.take(key)
        vals[0::2] *= -1.0
        inter = np.bincount(owner, vals.real, b_)
        union = np.bincount(owner, vals.imag, b_) + self.total[sel] - inter
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
