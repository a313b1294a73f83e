"""Parametric Chebyshev fit (private to ``contour_fit``): x(t), y(t) refined for IoU.

``fast``: the outline is resampled at 128 points evenly spaced by arc length, from its topmost
vertex clockwise, and projected onto N Chebyshev terms by least squares (t = -1 .. 1).

``refined`` then

1. takes a few Gauss-Newton steps that pull the decoded curve onto the outline: each curve
   sample's residual is its signed distance to the tangent line at the nearest outline vertex
   (a KD-tree query), with a weak pull back to the least-squares coefficients so that the
   parameterisation, which the distance ignores, stays close to arc length;
2. takes a few steps along the IoU shape gradient: moving the boundary outward at a point
   changes IoU in proportion to ``m (1 + IoU) - IoU`` (m = mask coverage there), so each curve
   sample gets that as its desired normal move, projected onto the coefficients by the same
   damped least squares; the move is scaled by a trust region (grown on success, halved on
   failure) judged on the IoU of the rasterised polygon against the coverage raster.

The distance steps alone plateau near 0.85 mean IoU on real COCO masks (they reward hugging
the outline, not area); the IoU steps add about 0.015.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.polynomial import chebyshev as cheb
from pycocotools import mask as mask_utils
from scipy.spatial import cKDTree

from ._frame import Frame, bilinear, resample_closed
from .contours import ParametricContour

WORK_SIDE = 64  # longer side of the working raster, in cells
SAMPLES = 128  # points along the curve used by the fits
GN_STEPS = 8  # Gauss-Newton steps onto the outline
IOU_STEPS = 8  # IoU shape-gradient steps
IOU_SAMPLES = 128  # polygon points rasterised to evaluate IoU in the trust-region test
STEP_START, STEP_GROW, STEP_MAX, STEP_TRIES = 2.0, 1.5, 4.0, 3  # largest move of an IoU step, cells
IMAGE_AWARE = True
BORDER_FREE = True
DAMPING = 1e-3  # pull toward the arc-length fit; keeps the parameterisation from drifting


@lru_cache(maxsize=32)
def _basis(num: int, terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chebyshev values, derivatives (d/dt) and LS pseudo-inverse at ``num`` t in [-1, 1]."""
    t = np.linspace(-1.0, 1.0, num)
    v = cheb.chebvander(t, terms - 1)
    d = np.stack([cheb.chebval(t, cheb.chebder(np.eye(terms)[k])) for k in range(terms)], axis=1)
    return v, d, np.linalg.pinv(v)


def _vertex_normals(line: np.ndarray) -> np.ndarray:
    """Outward unit normals (n, 2) at the vertices of a closed clockwise line (n, 2)."""
    d = np.roll(line, -1, axis=0) - np.roll(line, 1, axis=0)
    n = np.stack([d[:, 1], -d[:, 0]], axis=1)  # (dy, -dx) points out for clockwise-on-screen
    return n / np.maximum(np.hypot(n[:, 0], n[:, 1]), 1e-12)[:, None]


def _curve(c, v, dv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Curve samples P (K, 2), their arc-length weights ds (K,) and outward unit normals (K, 2)."""
    dp = dv @ c
    speed = np.maximum(np.hypot(dp[:, 0], dp[:, 1]), 1e-12)
    nrm = np.stack([dp[:, 1], -dp[:, 0]], axis=1) / speed[:, None]  # outward for clockwise on screen
    return v @ c, speed * (2.0 / (len(v) - 1)), nrm


def _normal_jacobian(nrm, v) -> np.ndarray:
    """d(normal move of each sample) / d(coefficients): (K, 2N) for coefficients ordered x then y."""
    return np.concatenate([nrm[:, :1] * v, nrm[:, 1:] * v], axis=1)


def _solve(jac, w, rhs, c, c0, damping) -> np.ndarray:
    """Damped weighted LS step d (N, 2): min sum w (J d - rhs)^2 + damping * sum w * |c + d - c0|^2.

    Returns zeros when the system is degenerate (a collapsed curve), so the caller just stops moving.
    """
    n = c.shape[0]
    jw = jac * w[:, None]
    lam = damping * w.sum()
    a = jac.T @ jw + lam * np.eye(2 * n)
    g = jw.T @ rhs - lam * (c - c0).T.ravel()
    try:
        d = np.linalg.solve(a, g).reshape(2, n).T
    except np.linalg.LinAlgError:
        return np.zeros_like(c)
    return d if np.isfinite(d).all() else np.zeros_like(c)


def _soft_iou(c, frame: Frame, v_eval) -> float:
    """IoU of the decoded polygon with the mask, on the working raster (coverage-weighted)."""
    h, w = frame.part.shape
    # cell centres sit at integer coordinates, pycocotools' pixel centres at +0.5; the clamp only
    # bites on a diverged curve and keeps pycocotools' work bounded
    p = np.clip(v_eval @ c + 0.5, -max(h, w), 2 * max(h, w))
    inside = mask_utils.decode(mask_utils.frPyObjects([p.ravel().tolist()], h, w)[0])
    area = float(np.dot(frame.valid_f, inside.ravel(order="F"))) if IMAGE_AWARE else float(np.count_nonzero(inside))
    inter = float(np.dot(frame.part_f, inside.ravel(order="F")))
    union = area + frame.total - inter
    return inter / union if union > 0 else 0.0


def _refine(c: np.ndarray, frame: Frame) -> np.ndarray:
    """Gauss-Newton onto the outline, then IoU shape-gradient ascent. c: (N, 2) in cells."""
    terms = c.shape[0]
    v, dv, _ = _basis(SAMPLES, terms)
    c0 = c.copy()
    line = frame.line
    normals = _vertex_normals(line)
    tree = cKDTree(line)
    # outline vertices on the image border are where the object is cut, not a true edge: no pull
    u0, v0, u1, v1 = frame.bounds
    free = (np.minimum(np.abs(line[:, 0] - u0), np.abs(line[:, 0] - u1)) < 0.25) | (
        np.minimum(np.abs(line[:, 1] - v0), np.abs(line[:, 1] - v1)) < 0.25
    )
    pull = np.where(free, 0.0 if IMAGE_AWARE and BORDER_FREE else 1.0, 1.0)
    for _ in range(GN_STEPS):
        p, ds, _ = _curve(c, v, dv)
        _, idx = tree.query(p)
        n_hit = normals[idx]
        r = np.einsum("ij,ij->i", p - line[idx], n_hit)  # signed distance to the outline's tangent
        c = c + _solve(_normal_jacobian(n_hit, v), ds * pull[idx], -r, c, c0, DAMPING)

    v_eval = _basis(IOU_SAMPLES, terms)[0]
    best = _soft_iou(c, frame, v_eval)
    step = STEP_START
    for _ in range(IOU_STEPS):
        p, ds, nrm = _curve(c, v, dv)
        # d IoU / d(outward move) is proportional to m (1 + IoU) - IoU at each boundary point
        force = bilinear(frame.part, p[:, 0], p[:, 1]) * (1.0 + best) - best * (bilinear(frame.valid, p[:, 0], p[:, 1]) if IMAGE_AWARE else 1.0)
        d = _solve(_normal_jacobian(nrm, v), ds, force, c, c, DAMPING)
        scale = 1.0 / max(float(np.abs(v @ d).max()), 1e-9)
        for _ in range(STEP_TRIES):  # trust region on the largest move: grow on success, halve on failure
            trial = c + d * (step * scale)
            val = _soft_iou(trial, frame, v_eval)
            if val > best:
                c, best = trial, val
                step = min(step * STEP_GROW, STEP_MAX)
                break
            step *= 0.5
        else:
            break
    return c


def fit_frame(frame: Frame, terms: int, fit: str) -> ParametricContour:
    """Fit in the working frame and return the contour in image pixels."""
    _, _, pinv = _basis(SAMPLES, terms)
    c = pinv @ resample_closed(frame.line, SAMPLES)  # (N, 2) in cells
    if fit == "refined":
        c = _refine(c, frame)
    c = c * frame.f
    c[0] += frame.origin
    return ParametricContour(c[:, 0], c[:, 1])
