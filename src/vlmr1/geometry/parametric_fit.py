"""Parametric Chebyshev fit (private to ``contour_fit``): x(t), y(t) refined for IoU.

``fast``: the outline is resampled at 128 points evenly spaced by arc length, from its topmost
vertex clockwise, and projected onto N Chebyshev terms by least squares (t = -1 .. 1).

``refined`` then takes steps along the IoU shape gradient: moving the boundary outward at a
point changes IoU in proportion to ``m (1 + IoU) - IoU`` (m = mask coverage there), so each curve
sample gets that as its desired normal move, projected onto the coefficients by damped weighted
least squares (damped toward the least-squares fit, which keeps the parameterisation near arc
length); the move is scaled by a trust region (grown on success, halved on failure) judged on the
IoU of the polygon with the coverage raster: cells whose centre it contains (even-odd, as
pycocotools rasterises) count with their coverage of the whole mask, which is how the answer is
scored. Only the part inside the image counts (answers are rasterised clipped), so where the image
border cuts the object the outline may run outside it.

Each step also pulls the curve's two ends, P(-1) and P(1), toward the outline's topmost point.
That keeps the start-at-the-top convention tight (median start offset ~1% of the object's size,
against 9% for plain least squares, whose ends need not meet) and also raises IoU: without it the
ends, where Chebyshev terms are largest, dominate each step's size.

All masks of a batch take their steps together (``fit_frames``): a step is a few dozen numpy calls
on (masks, samples) arrays whatever the batch size, where one mask at a time paid that per-call
overhead for every mask. The normal equations come from Chebyshev product sums (T_a T_b =
(T_{a+b} + T_{|a-b|}) / 2: two matrix products give all masks' Gram matrices) and the trust-region
test rasterises all trial polygons at once (``_batch.FrameBatch.iou``). A mask that has taken its
steps or failed its tries drops out of the batch. Its answer does not depend on its batch-mates
(BLAS may round the last bits differently; the written, rounded answers are equal).

On the 759 real COCO masks this takes mean IoU from 0.79 to 0.88 (0.8804; 0.8792 with the 10
steps of the one-mask-at-a-time version). Gauss-Newton steps on the
distance to the outline (nearest-vertex point-to-tangent) before the IoU steps were tried and
dropped: alone they plateau near 0.85 (they reward hugging the outline, not area) and as a
first stage they lowered the final IoU.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.polynomial import chebyshev as cheb

from ._batch import FrameBatch
from ._frame import PAD, Frame
from .contours import ParametricContour

WORK_SIDE = 64  # longer side of the working raster, in cells
SAMPLES = 128  # points along the curve: least squares, IoU gradients and the trial polygons scored
IOU_STEPS = 12  # successful IoU shape-gradient steps at most (10 before batching made them cheap)
STEP_START, STEP_GROW, STEP_MAX, STEP_TRIES = 2.0, 1.5, 4.0, 3  # largest move of an IoU step, cells
END_PIN = 0.02  # weight (x total arc length) pulling P(-1) and P(1) to the topmost outline point
DAMPING = 1e-3  # pull toward the arc-length fit; keeps the parameterisation from drifting
BATCH = 256  # masks refined together (per-call overhead shrinks with it; memory grows)


@lru_cache(maxsize=32)
def _basis(num: int, terms: int) -> tuple[np.ndarray, ...]:
    """At ``num`` t in [-1, 1]: Chebyshev values V (num, N), values then derivatives d/dt stacked
    (2 num, N), the LS pseudo-inverse (N, num), and what makes V^T diag(w) V cheap for many weight
    vectors w: values up to degree 2N - 2 (num, 2N - 1) and index tables (N, N) of a + b and |a - b|,
    as T_a T_b = (T_{a+b} + T_{|a-b|}) / 2."""
    t = np.linspace(-1.0, 1.0, num)
    v = cheb.chebvander(t, terms - 1)
    d = np.stack([cheb.chebval(t, cheb.chebder(np.eye(terms)[k])) for k in range(terms)], axis=1)
    a, b = np.meshgrid(np.arange(terms), np.arange(terms), indexing="ij")
    return v, np.vstack([v, d]), np.linalg.pinv(v), cheb.chebvander(t, 2 * terms - 2), a + b, np.abs(a - b)


def _resample(frames: list[Frame], num: int) -> np.ndarray:
    """Each frame's outline resampled at ``num`` points evenly spaced by arc length from its first
    vertex back to it (as ``np.interp`` along each outline would). Returns (B, 2, num)."""
    n = np.array([len(f.line) for f in frames])
    size = int(n.max()) + 1
    pts = np.empty((len(frames), size, 2))
    for k, f in enumerate(frames):
        pts[k, : n[k]] = f.line
        pts[k, n[k] :] = f.line[0]  # closes the outline; the padding adds no length
    d = np.diff(pts, axis=1)
    s = np.zeros((len(frames), size))
    np.cumsum(np.hypot(d[..., 0], d[..., 1]), axis=1, out=s[:, 1:])
    q = np.linspace(0.0, 1.0, num) * s[:, -1:]
    # segment of each query: one search over all outlines, each shifted past the previous one
    shift = 2.0 * np.arange(len(frames))[:, None]
    span = np.maximum(s[:, -1:], 1e-300)
    seg = np.searchsorted((s / span + shift).ravel(), (q / span + shift).ravel(), side="right") - 1
    seg = np.minimum(np.maximum(seg.reshape(q.shape) - np.arange(len(frames))[:, None] * size, 0), size - 2)
    s0 = np.take_along_axis(s, seg, axis=1)
    ds = np.take_along_axis(s, seg + 1, axis=1) - s0
    t = np.where(ds > 0, (q - s0) / np.where(ds > 0, ds, 1.0), 0.0)[..., None]
    p0 = np.take_along_axis(pts, seg[..., None], axis=1)
    p1 = np.take_along_axis(pts, seg[..., None] + 1, axis=1)
    return (p0 + t * (p1 - p0)).transpose(0, 2, 1)


def _points(c: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Curve values (b, 2, K) of coefficients c (b, 2, N) at a basis (K, N).

    Products here are stacked per mask (numpy loops over small per-mask matrix products): one
    (2b, N) x (N, K) product is big enough for OpenBLAS to split over threads, which on busy cores
    cost 20x more than it saved, and its rounding would depend on the batch.
    """
    return np.matmul(c, basis.T)


def _directions(c, c0, top, best, batch, sel) -> np.ndarray:
    """IoU shape-gradient step (b, 2, N) for coefficients c (b, 2, N), its largest move 1 cell.

    Each curve sample asks for the outward normal move ``m (1 + IoU) - IoU * valid`` (d IoU /
    d move up to a positive factor; outside the image the polygon is clipped away, so moving there
    changes nothing); damped weighted least squares (weights: arc length) turns the asks into
    coefficient changes, with rows pulling both ends toward the outline's topmost point.
    """
    b_, _, n = c.shape
    v, vd, _, v2, ia, ib = _basis(SAMPLES, n)
    both = _points(c, vd)  # (b, 2, 2K): the curve, then its derivative
    p, dp = both[:, :, :SAMPLES], both[:, :, SAMPLES:]
    speed = np.maximum(np.hypot(dp[:, 0], dp[:, 1]), 1e-12)
    nx, ny = dp[:, 1] / speed, -dp[:, 0] / speed  # outward for clockwise on screen
    ds = speed * (2.0 / (SAMPLES - 1))
    m = batch.sample(p[:, 0], p[:, 1], sel)
    force = ds * (m.real * (1.0 + best[:, None]) - best[:, None] * m.imag)
    # the normal-move Jacobian's Gram matrix, blocks [[xx, xy], [xy^T, yy]] of V^T diag(w) V
    sums = np.matmul(np.stack([ds * nx * nx, ds * nx * ny, ds * ny * ny], axis=1), v2)  # (b, 3, 2N - 1)
    gram = 0.5 * (sums[..., ia] + sums[..., ib])  # (b, 3, N, N)
    xx, xy, yy = gram[:, 0], gram[:, 1], gram[:, 2]
    length = ds.sum(axis=1)
    ends = v[[0, -1]]  # (2, N)
    diag = DAMPING * length[:, None, None] * np.eye(n) + (END_PIN * length)[:, None, None] * (ends.T @ ends)
    a = np.empty((b_, 2 * n, 2 * n))
    a[:, :n, :n], a[:, :n, n:], a[:, n:, :n], a[:, n:, n:] = xx + diag, xy, xy.transpose(0, 2, 1), yy + diag
    g = np.matmul(np.stack([force * nx, force * ny], axis=1), v).reshape(b_, 2 * n)
    g -= (DAMPING * length)[:, None] * (c - c0).reshape(b_, 2 * n)
    miss = top[:, :, None] - c @ ends.T  # (b, 2 coords, 2 ends)
    g += (END_PIN * length)[:, None] * (miss @ ends).reshape(b_, 2 * n)
    d = _solve(a, g).reshape(b_, 2, n)
    move = np.abs(_points(d, v)).max(axis=(1, 2))
    return d / np.maximum(move, 1e-9)[:, None, None]


def _solve(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Batched solve; a degenerate system (a collapsed curve) gives a zero step, so it stops moving."""
    try:
        d = np.linalg.solve(a, g[..., None])[..., 0]
    except np.linalg.LinAlgError:
        d = np.zeros_like(g)
        for k in range(len(a)):
            try:
                d[k] = np.linalg.solve(a[k], g[k])
            except np.linalg.LinAlgError:
                pass
    return np.where(np.isfinite(d).all(axis=1, keepdims=True), d, 0.0)


def _refine(c: np.ndarray, frames: list[Frame]) -> np.ndarray:
    """IoU trust-region ascent from the least-squares fits c (B, 2, N), cells; all masks together.

    Per mask: a step goes along the current direction, scaled so its largest move is ``step``
    cells; if the trial's IoU is higher the curve moves there, the step grows and a new
    direction is computed, otherwise the step halves and the same direction is tried again. A
    mask stops after IOU_STEPS moves or STEP_TRIES failures in a row.
    """
    b_ = len(c)
    batch = FrameBatch(frames)
    v = _basis(SAMPLES, c.shape[2])[0]
    top = np.stack([f.line[0] for f in frames])  # (B, 2)
    c0 = c.copy()

    def iou(coef, sel):
        p = _points(coef, v)
        return batch.iou(p[:, 0], p[:, 1], sel)

    best = iou(c, np.arange(b_))
    step = np.full(b_, STEP_START)
    moves, fails = np.zeros(b_, dtype=np.intp), np.zeros(b_, dtype=np.intp)
    d = np.zeros_like(c)
    stale = np.ones(b_, dtype=bool)  # the curve moved: its direction must be recomputed
    while True:
        sel = np.flatnonzero((moves < IOU_STEPS) & (fails < STEP_TRIES))
        if len(sel) == 0:
            return c
        new = sel[stale[sel]]
        if len(new):
            d[new] = _directions(c[new], c0[new], top[new], best[new], batch, new)
            stale[new] = False
        trial = c[sel] + d[sel] * step[sel, None, None]
        val = iou(trial, sel)
        up = val > best[sel]
        won, lost = sel[up], sel[~up]
        c[won] = trial[up]
        best[won] = val[up]
        step[won] = np.minimum(step[won] * STEP_GROW, STEP_MAX)
        moves[won] += 1
        fails[won] = 0
        stale[won] = True
        step[lost] *= 0.5
        fails[lost] += 1


def fit_frames(frames: list[Frame], terms: int, fit: str) -> list[ParametricContour]:
    """Fit each frame (batched) and return the contours in image pixels."""
    out: list = [None] * len(frames)
    pinv = _basis(SAMPLES, terms)[2]
    # a batch's rasters are stacked as wide as its widest: the rare frames wider than the working
    # side (thin parts that needed finer cells) are batched apart, so they cannot widen everyone's
    wide = np.array([f.low.shape[1] > WORK_SIDE + 2 * PAD for f in frames], dtype=bool)
    for group in (np.flatnonzero(~wide), np.flatnonzero(wide)):
        for idx in np.split(group, np.arange(BATCH, len(group), BATCH)):
            if len(idx) == 0:
                continue
            part = [frames[k] for k in idx]
            c = np.matmul(_resample(part, SAMPLES), pinv.T)  # (b, 2, N)
            if fit == "refined":
                c = _refine(c, part)
            for k, ck, f in zip(idx, c, part):
                ck = ck * f.f
                ck[:, 0] += f.origin
                out[k] = ParametricContour(ck[0], ck[1])
    return out


def fit_frame(frame: Frame, terms: int, fit: str) -> ParametricContour:
    """Fit in the working frame and return the contour in image pixels."""
    return fit_frames([frame], terms, fit)[0]
