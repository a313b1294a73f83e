"""Many working frames at once (private to the fitters): bilinear sampling and polygon IoU.

A fit takes the same small steps for every mask, so doing them for a whole batch of masks per numpy
call removes the per-call overhead that dominated one-mask-at-a-time fitting. The frames' rasters
are concatenated flat (each keeps its own size); point arrays hold K points of each of the
b masks picked by ``sel`` (indices into the batch, ascending), laid out (b, K).

Rasters are complex, real part the largest part's coverage and imaginary part the image-validity
fraction (``Frame.part`` / ``Frame.valid``), so one gather reads both.
"""

from __future__ import annotations

import numpy as np

from ._frame import Frame


def _offsets(sizes: np.ndarray) -> np.ndarray:
    out = np.zeros(len(sizes), dtype=np.intp)
    np.cumsum(sizes[:-1], out=out[1:])
    return out


class FrameBatch:
    """The rasters of a list of frames, for vectorised sampling and IoU."""

    def __init__(self, frames: list[Frame]):
        self.h = np.array([f.low.shape[0] for f in frames], dtype=np.intp)
        self.w = np.array([f.low.shape[1] for f in frames], dtype=np.intp)
        self.total = np.array([f.total for f in frames])
        self.off = _offsets(self.h * self.w)
        self.poff = _offsets(self.h * (self.w + 1))
        self.field = np.concatenate([(f.low + 1j * f.valid).ravel() for f in frames])
        # row prefix sums with a leading 0: pre[i, j] = sum of the row's first j cells
        pre = []
        for f in frames:
            p = np.zeros((f.low.shape[0], f.low.shape[1] + 1), dtype=complex)
            np.cumsum(f.low + 1j * f.valid, axis=1, out=p[:, 1:])
            pre.append(p.ravel())
        self.prefix = np.concatenate(pre)

    def sample(self, x: np.ndarray, y: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """Bilinear values (b, K) complex at cell coordinates x, y (b, K), clamped to each raster."""
        h, w = self.h[sel, None], self.w[sel, None]
        x = np.minimum(np.maximum(x, 0.0), w - 1.000001)
        y = np.minimum(np.maximum(y, 0.0), h - 1.000001)
        j, i = x.astype(np.intp), y.astype(np.intp)
        fx, fy = x - j, y - i
        k = self.off[sel, None] + i * w + j
        v = self.field
        a = v[k] + (v[k + 1] - v[k]) * fx
        b = v[k + w] + (v[k + w + 1] - v[k + w]) * fx
        return a + (b - a) * fy

    def iou(self, x: np.ndarray, y: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """IoU (b,) of closed polygons (vertices x, y (b, K), cell coordinates) with the masks.

        A cell counts as inside when its centre is (even-odd rule, as pycocotools rasterises); its
        coverage then counts toward the intersection and its validity toward the polygon's area
        (only the part inside the image counts, as answers are rasterised clipped). The union adds
        the whole mask's coverage. Rows are scanned through the crossings of each polygon edge
        with the cell-centre lines, sorted, and summed with the row prefix sums, so the cost grows
        with the outline, not the raster.
        """
        b_, k_ = x.shape
        h, w1 = self.h[sel, None], self.w[sel] + 1
        lim = 4.0 * (h + w1[:, None])  # keeps runaway curves finite; they score ~0 anyway
        x = np.where(np.isfinite(x), np.clip(x, -lim, lim), 0.0)
        y = np.where(np.isfinite(y), np.clip(y, -lim, lim), 0.0)
        xn = np.concatenate([x[:, 1:], x[:, :1]], axis=1)
        yn = np.concatenate([y[:, 1:], y[:, :1]], axis=1)
        lo, hi = np.minimum(y, yn), np.maximum(y, yn)
        i0 = np.minimum(np.maximum(np.ceil(lo), 0), h).astype(np.intp)  # rows r with lo <= r < hi
        n = (np.minimum(np.maximum(np.ceil(hi), 0), h).astype(np.intp) - i0).ravel()
        edge = np.repeat(np.arange(n.size), n)
        first = np.cumsum(n) - n
        row = i0.ravel()[edge] + (np.arange(edge.size) - first[edge])
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = ((xn - x) / (yn - y)).ravel()
        xc = x.ravel()[edge] + (row - y.ravel()[edge]) * slope[edge]
        mask = edge // k_
        wm = w1[mask] - 1
        # cell j is right of the crossing when j > x: prefix index floor(x) + 1, clamped to the row
        col = np.minimum(np.maximum(np.floor(xc) + 1, 0), wm).astype(np.intp)
        base = self.poff[sel]
        key = np.sort(base[mask] + row * w1[mask] + col)
        owner = np.searchsorted(base, key, side="right") - 1
        # each row of each polygon has an even number of crossings, so global parity is row parity
        vals = self.prefix[key]
        vals[0::2] *= -1.0
        inter = np.bincount(owner, vals.real, b_)
        area = np.bincount(owner, vals.imag, b_)
        union = area + self.total[sel] - inter
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
