"""Parametric Chebyshev fit (private to ``contour_fit``): x(t), y(t) refined for IoU.

``fast``: the outline is resampled at 128 points evenly spaced by arc length, from its topmost
vertex clockwise, and projected onto N Chebyshev terms by least squares (t = -1 .. 1).

``refined`` then takes steps along the IoU shape gradient: moving the boundary outward at a
point changes IoU in proportion to ``m (1 + IoU) - IoU`` (m = mask coverage there), so each curve
sample gets that as its desired normal move, projected onto the coefficients by damped weighted
least squares (damped toward the least-squares fit, which keeps the parameterisation near arc
length); the move is scaled by a trust region (grown on success, halved on failure) judged on the
IoU of the rasterised polygon against the coverage raster. Only the part inside the image counts
(answers are rasterised clipped), so where the image border cuts the object the outline may run
outside it.

Each step also pulls the curve's two ends, P(-1) and P(1), toward the outline's topmost point.
That keeps the start-at-the-top convention tight (median start offset ~1% of the object's size,
against 9% for plain least squares, whose ends need not meet) and also raises IoU: without it the
ends, where Chebyshev terms are largest, dominate each step's size.

On the 759 real COCO masks this takes mean IoU from 0.79 to 0.88. Gauss-Newton steps on the
distance to the outline (nearest-vertex point-to-tangent) before the IoU steps were tried and
dropped: alone they plateau near 0.85 (they reward hugging the outline, not area) and as a
first stage they lowered the final IoU.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.polynomial import chebyshev as cheb
from pycocotools import mask as mask_utils

from ._frame import Frame, bilinear, resample_closed
from .contours import ParametricContour

WORK_SIDE = 64  # longer side of the working raster, in cells
SAMPLES = 128  # points along the curve used by the fits
IOU_STEPS = 10  # IoU shape-gradient steps
IOU_SAMPLES = 128  # polygon points rasterised to evaluate IoU in the trust-region test
STEP_START, STEP_GROW, STEP_MAX, STEP_TRIES = 2.0, 1.5, 4.0, 3  # largest move of an IoU step, cells
END_PIN = 0.02  # weight (x total arc length) pulling P(-1) and P(1) to the topmost outline point
DAMPING = 1e-3  # pull toward the arc-length fit; keeps the parameterisation from drifting


@lru_cache(maxsize=32)
def _basis(num: int, terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chebyshev values, derivatives (d/dt) and LS pseudo-inverse at ``num`` t in [-1, 1]."""
    t = np.linspace(-1.0, 1.0, num)
    v = cheb.chebvander(t, terms - 1)
    d = np.stack([cheb.chebval(t, cheb.chebder(np.eye(terms)[k])) for k in range(terms)], axis=1)
    return v, d, np.linalg.pinv(v)


def _curve(c, v, dv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Curve samples P (K, 2), their arc-length weights ds (K,) and outward unit normals (K, 2)."""
    dp = dv @ c
    speed = np.maximum(np.hypot(dp[:, 0], dp[:, 1]), 1e-12)
    nrm = np.stack([dp[:, 1], -dp[:, 0]], axis=1) / speed[:, None]  # outward for clockwise on screen
    return v @ c, speed * (2.0 / (len(v) - 1)), nrm


def _normal_jacobian(nrm, v) -> np.ndarray:
    """d(normal move of each sample) / d(coefficients): (K, 2N) for coefficients ordered x then y."""
    return np.concatenate([nrm[:, :1] * v, nrm[:, 1:] * v], axis=1)


def _solve(jac, w, rhs, c, c0, damping, pin=None) -> np.ndarray:
    """Damped weighted LS step d (N, 2): min sum w (J d - rhs)^2 + damping * sum w * |c + d - c0|^2,
    plus optional extra rows ``pin = (J_e, w_e, rhs_e)``.

    Returns zeros when the system is degenerate (a collapsed curve), so the caller just stops moving.
    """
    n = c.shape[0]
    lam = damping * w.sum()
    jw = jac * w[:, None]
    a = jac.T @ jw + lam * np.eye(2 * n)
    g = jw.T @ rhs - lam * (c - c0).T.ravel()
    if pin is not None:
        pj, pw, pr = pin
        a += pj.T @ (pj * pw[:, None])
        g += pj.T @ (pw * pr)
    try:
        d = np.linalg.solve(a, g).reshape(2, n).T
    except np.linalg.LinAlgError:
        return np.zeros_like(c)
    return d if np.isfinite(d).all() else np.zeros_like(c)


def _end_pin(c, top, ends, weight):
    """Rows pulling both ends of the curve, P(-1) and P(1), to the outline's topmost point."""
    if weight <= 0:
        return None
    terms = c.shape[0]
    z = np.zeros((2, terms))
    jac = np.concatenate([np.concatenate([ends, z], axis=1), np.concatenate([z, ends], axis=1)])
    rhs = np.concatenate([top[0] - ends @ c[:, 0], top[1] - ends @ c[:, 1]])
    return jac, np.full(4, weight), rhs


def _soft_iou(c, frame: Frame, v_eval) -> float:
    """IoU of the decoded polygon, clipped to the image, with the mask on the working raster."""
    h, w = frame.part.shape
    # cell centres sit at integer coordinates, pycocotools' pixel centres at +0.5; the clamp only
    # bites on a diverged curve and keeps pycocotools' work bounded
    p = np.clip(v_eval @ c + 0.5, -max(h, w), 2 * max(h, w))
    inside = mask_utils.decode(mask_utils.frPyObjects([p.ravel().tolist()], h, w)[0])
    area = float(np.dot(frame.valid_f, inside.ravel(order="F")))  # polygon area inside the image
    inter = float(np.dot(frame.part_f, inside.ravel(order="F")))
    union = area + frame.total - inter
    return inter / union if union > 0 else 0.0


def _refine(c: np.ndarray, frame: Frame) -> np.ndarray:
    """IoU shape-gradient ascent from the least-squares fit c: (N, 2) in cells."""
    terms = c.shape[0]
    v, dv, _ = _basis(SAMPLES, terms)
    v_eval = _basis(IOU_SAMPLES, terms)[0]
    ends, top = v[[0, -1]], frame.line[0]
    c0 = c.copy()
    best = _soft_iou(c, frame, v_eval)
    step = STEP_START
    for _ in range(IOU_STEPS):
        p, ds, nrm = _curve(c, v, dv)
        # d IoU / d(outward move) is proportional to m (1 + IoU) - IoU at each boundary point
        # (outside the image the polygon is clipped away, so moving there changes nothing)
        m = bilinear(frame.part, p[:, 0], p[:, 1])
        force = m * (1.0 + best) - best * bilinear(frame.valid, p[:, 0], p[:, 1])
        pin = _end_pin(c, top, ends, END_PIN * ds.sum())
        d = _solve(_normal_jacobian(nrm, v), ds, force, c, c0, DAMPING, pin)
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
