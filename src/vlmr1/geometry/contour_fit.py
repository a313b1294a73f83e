"""Fit Chebyshev contours to masks, and the per-instance encoder the COCO converter calls.

``fit="fast"`` is plain least squares: the outer contour of the largest part is resampled by
arc length from its topmost point (parametric) or read as the outermost ray crossing around the
part's centroid (radial), and projected onto N Chebyshev terms.

``fit="refined"`` (default) starts there and then optimises the same numbers for IoU:

* parametric: a few Gauss-Newton steps pulling the decoded curve onto the true outline
  (point-to-tangent distances to the nearest contour vertex, a KD-tree query), then a few
  steps along the IoU shape gradient (each boundary point moves out where the mask is, in where
  it is not) with a backtracking line search on the rasterised IoU.
* radial: see ``radial_fit.py`` (centre search + IoU ascent on a polar area histogram).

Both run on a block-averaged crop whose longer side is at most ``WORK_SIDE`` cells (``_frame.py``),
so the cost per mask is nearly independent of its size. Multi-part masks: the largest part is
fitted, IoU is always measured against the whole mask.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.polynomial import chebyshev as cheb
from pycocotools import mask as mask_utils
from scipy.spatial import cKDTree

from . import radial_fit
from ._frame import Frame, bilinear, frame_from_rle, make_frame, resample_closed
from .contours import DEFAULT_TERMS, MAX_TERMS, ParametricContour, RadialContour
from .masks import _as_rle, polygon_to_rle

__all__ = ["fit_parametric", "fit_radial", "fit_contour", "encode_mask_rle", "REPRESENTATIONS", "FITS"]

REPRESENTATIONS = ("parametric", "radial")
FITS = ("refined", "fast")

WORK_SIDE = 64  # longer side of the working raster, in cells
SAMPLES = 128  # points along the curve used by the fits
GN_STEPS = 8  # Gauss-Newton steps onto the outline
IOU_STEPS = 8  # IoU shape-gradient steps
IOU_SAMPLES = 128  # polygon points rasterised to evaluate IoU during the line search
STEP_START, STEP_GROW, STEP_MAX, STEP_TRIES = 2.0, 1.5, 4.0, 3  # largest move of an IoU step, cells
DAMPING = 1e-3  # pull toward the arc-length fit; keeps the parameterisation from drifting


@lru_cache(maxsize=32)
def _basis(num: int, terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chebyshev values, derivatives (d/dt) and LS pseudo-inverse at ``num`` t in [-1, 1]."""
    t = np.linspace(-1.0, 1.0, num)
    v = cheb.chebvander(t, terms - 1)
    d = np.stack([cheb.chebval(t, cheb.chebder(np.eye(terms)[k])) for k in range(terms)], axis=1)
    return v, d, np.linalg.pinv(v)


def _check(terms: int, fit: str) -> int:
    terms = int(terms)
    if not 2 <= terms <= MAX_TERMS:
        raise ValueError(f"terms must be in 2..{MAX_TERMS}, got {terms}")
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    return terms


def _vertex_normals(line: np.ndarray) -> np.ndarray:
    """Outward unit normals (n, 2) at the vertices of a closed clockwise line (n, 2)."""
    d = np.roll(line, -1, axis=0) - np.roll(line, 1, axis=0)
    n = np.stack([d[:, 1], -d[:, 0]], axis=1)  # (dy, -dx) points out for clockwise-on-screen
    return n / np.maximum(np.hypot(n[:, 0], n[:, 1]), 1e-12)[:, None]


def _normal_system(c, v, dv):
    """Curve points P (K, 2), outward unit normals (K, 2), ds (K,) and the normal Jacobian (K, 2N)."""
    p = v @ c
    dp = dv @ c
    speed = np.maximum(np.hypot(dp[:, 0], dp[:, 1]), 1e-12)
    nrm = np.stack([dp[:, 1], -dp[:, 0]], axis=1) / speed[:, None]
    jac = np.concatenate([nrm[:, :1] * v, nrm[:, 1:] * v], axis=1)
    ds = speed * (2.0 / (len(v) - 1))
    return p, nrm, ds, jac


def _solve(jac, w, rhs, c, c0, damping):
    """Weighted, damped LS step for coefficients c (N, 2): min sum w (J d - rhs)^2 + damping*|c+d-c0|^2."""
    n = c.shape[0]
    jw = jac * w[:, None]
    lam = damping * w.sum()
    a = jac.T @ jw + lam * np.eye(2 * n)
    g = jw.T @ rhs - lam * (c - c0).T.ravel()
    return np.linalg.solve(a, g).reshape(2, n).T


def _soft_iou(c, frame: Frame, v_eval) -> float:
    """IoU of the decoded polygon with the mask, on the working raster (coverage-weighted)."""
    h, w = frame.part.shape
    # cell centres sit at integer coordinates, pycocotools' pixel centres at +0.5; the clamp only
    # bites on a diverged curve and keeps pycocotools' work bounded
    p = np.clip(v_eval @ c + 0.5, -max(h, w), 2 * max(h, w))
    inside = mask_utils.decode(mask_utils.frPyObjects([p.ravel().tolist()], h, w)[0])
    area = float(np.count_nonzero(inside))
    inter = float(np.dot(frame.part_f, inside.ravel(order="F")))
    union = area + frame.total - inter
    return inter / union if union > 0 else 0.0


def _refine_parametric(c: np.ndarray, frame: Frame) -> np.ndarray:
    """Gauss-Newton onto the outline, then IoU shape-gradient ascent. c: (N, 2) in cells."""
    terms = c.shape[0]
    v, dv, _ = _basis(SAMPLES, terms)
    c0 = c.copy()
    line = frame.line
    normals = _vertex_normals(line)
    tree = cKDTree(line)
    for _ in range(GN_STEPS):
        p, _, ds, _ = _normal_system(c, v, dv)
        _, idx = tree.query(p)
        n_hit = normals[idx]
        r = np.einsum("ij,ij->i", p - line[idx], n_hit)  # signed distance to the tangent line
        jac = np.concatenate([n_hit[:, :1] * v, n_hit[:, 1:] * v], axis=1)
        c = c + _solve(jac, ds, -r, c, c0, DAMPING)

    v_eval = _basis(IOU_SAMPLES, terms)[0]
    best = _soft_iou(c, frame, v_eval)
    step = STEP_START
    for _ in range(IOU_STEPS):
        p, _, ds, jac = _normal_system(c, v, dv)
        # d IoU / d(outward move) is proportional to m (1 + IoU) - IoU at each boundary point
        force = bilinear(frame.part, p[:, 0], p[:, 1]) * (1.0 + best) - best
        d = _solve(jac, ds, force, c, c, DAMPING)
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


def _fit_parametric_frame(frame: Frame, terms: int, fit: str) -> ParametricContour:
    v, _, pinv = _basis(SAMPLES, terms)
    c = pinv @ resample_closed(frame.line, SAMPLES)  # (N, 2) in cells
    if fit == "refined":
        c = _refine_parametric(c, frame)
    c = c * frame.f
    c[0] += frame.origin
    return ParametricContour(c[:, 0], c[:, 1])


def fit_parametric(mask: np.ndarray, terms: int = DEFAULT_TERMS, fit: str = "refined") -> ParametricContour:
    """Fit x(t), y(t) to the outer contour of the mask's largest part.

    Args:
        mask: (H, W) bool/uint8.
        terms: N Chebyshev terms per coordinate.
        fit: "refined" (IoU-optimised, default) or "fast" (least squares).
    Returns:
        ParametricContour with (N,) x and y coefficients in image pixels.
    Raises:
        ValueError: empty mask or bad arguments.
    """
    terms = _check(terms, fit)
    return _fit_parametric_frame(make_frame(np.asarray(mask), WORK_SIDE), terms, fit)


def fit_radial(mask: np.ndarray, terms: int = DEFAULT_TERMS, fit: str = "refined") -> RadialContour:
    """Fit a centre and r(theta) to the mask's largest part (outermost crossing for "fast").

    Args:
        mask: (H, W) bool/uint8.
        terms: N Chebyshev terms of r.
        fit: "refined" (centre search + IoU-optimised, default) or "fast" (centroid + LS).
    Returns:
        RadialContour with (2,) centre and (N,) coeffs in image pixels.
    Raises:
        ValueError: empty mask or bad arguments.
    """
    terms = _check(terms, fit)
    return radial_fit.fit_frame(make_frame(np.asarray(mask), radial_fit.WORK_SIDE), terms, fit)


def fit_contour(mask: np.ndarray, representation: str = "parametric", terms: int = DEFAULT_TERMS,
                fit: str = "refined") -> ParametricContour | RadialContour:
    """Fit either representation ("parametric" or "radial"); see :func:`fit_parametric`."""
    if representation == "parametric":
        return fit_parametric(mask, terms, fit)
    if representation == "radial":
        return fit_radial(mask, terms, fit)
    raise ValueError(f"representation must be one of {REPRESENTATIONS}, got {representation!r}")


def encode_mask_rle(rle: dict, representation: str = "parametric", terms: int = DEFAULT_TERMS,
                    fit: str = "refined", decimals: int = 1, num_points: int = 256) -> tuple[dict, float]:
    """Convert one COCO RLE mask to the answer JSON and score it (process-pool friendly).

    Args:
        rle: ``{"size": [H, W], "counts": str | bytes | list}``.
        representation, terms, fit: as in :func:`fit_contour`.
        decimals: rounding of the answer numbers.
        num_points: polygon points used to rasterise the answer for scoring.
    Returns:
        (answer dict as in ``to_json_dict``, IoU of the *rounded* answer with the whole mask).
    Raises:
        ValueError: empty mask or bad arguments.
    """
    terms = _check(terms, fit)
    if representation not in REPRESENTATIONS:
        raise ValueError(f"representation must be one of {REPRESENTATIONS}, got {representation!r}")
    r = _as_rle(rle)
    h, w = r["size"]
    if representation == "parametric":
        frame, _ = frame_from_rle(r, WORK_SIDE)
        contour = _fit_parametric_frame(frame, terms, fit)
    else:
        frame, _ = frame_from_rle(r, radial_fit.WORK_SIDE)
        contour = radial_fit.fit_frame(frame, terms, fit)
    answer = contour.to_json_dict(decimals)
    scored = type(contour).from_json_dict(answer, terms)
    pred = polygon_to_rle(scored.to_polygon(num_points), h, w)
    return answer, float(mask_utils.iou([pred], [r], [0])[0, 0])
