"""Fit Chebyshev contours to masks, and the encoders the COCO converter calls.

``fit="fast"`` is plain least squares: the outer contour of the largest part is resampled by
arc length from its topmost point (parametric) or read as the outermost ray crossing around the
part's centroid (radial), and projected onto N Chebyshev terms.

``fit="refined"`` (default) starts there and then optimises the same numbers for IoU:

* parametric (``parametric_fit.py``): trust-region steps along the IoU shape gradient, all masks
  of a batch together;
* radial (``radial_fit.py``): a search for the centre, then IoU ascent on a polar area histogram.

Mean IoU of the rounded answer on the 759 real COCO masks, 8 terms: parametric 0.79 fast /
0.88 refined, radial 0.70 fast / 0.76 refined (``benchmarks/bench_contour_fit.py``).

Both run on a block-averaged crop whose longer side is at most 64 cells (``_frame.py``, built
straight from the RLE runs for a whole batch), so the cost per mask barely depends on its size.
``encode_mask_rles`` (what the converter calls, a chunk at a time) is several times faster per mask
than ``encode_mask_rle`` one mask at a time, and gives the same answers. Multi-part masks: the
largest part's outline is fitted (parts closer than about one cell merge), IoU is always measured
against the whole mask.
"""

from __future__ import annotations

import numpy as np

from . import parametric_fit, radial_fit
from ._frame import frames_from_counts, make_frame
from .contours import DEFAULT_TERMS, MAX_TERMS, ParametricContour, RadialContour
from .masks import _checked_rles, _same_size_iou, polygon_to_rle

__all__ = ["fit_parametric", "fit_radial", "fit_contour", "encode_mask_rle", "encode_mask_rles", "REPRESENTATIONS",
           "FITS"]

REPRESENTATIONS = ("parametric", "radial")
FITS = ("refined", "fast")


def _check(terms: int, fit: str) -> int:
    terms = int(terms)
    if not 2 <= terms <= MAX_TERMS:
        raise ValueError(f"terms must be in 2..{MAX_TERMS}, got {terms}")
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    return terms


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
    return parametric_fit.fit_frame(make_frame(np.asarray(mask), parametric_fit.WORK_SIDE), terms, fit)


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


def fit_contour(
    mask: np.ndarray, representation: str = "parametric", terms: int = DEFAULT_TERMS, fit: str = "refined"
) -> ParametricContour | RadialContour:
    """Fit either representation ("parametric" or "radial"); see :func:`fit_parametric`."""
    if representation == "parametric":
        return fit_parametric(mask, terms, fit)
    if representation == "radial":
        return fit_radial(mask, terms, fit)
    raise ValueError(f"representation must be one of {REPRESENTATIONS}, got {representation!r}")


def encode_mask_rle(
    rle: dict,
    representation: str = "parametric",
    terms: int = DEFAULT_TERMS,
    fit: str = "refined",
    decimals: int = 1,
    num_points: int = 256,
) -> tuple[dict, float]:
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
    out = encode_mask_rles([rle], representation, terms, fit, decimals, num_points)[0]
    if isinstance(out, ValueError):
        raise out
    return out


def encode_mask_rles(
    rles: list[dict],
    representation: str = "parametric",
    terms: int = DEFAULT_TERMS,
    fit: str = "refined",
    decimals: int = 1,
    num_points: int = 256,
) -> list[tuple[dict, float] | ValueError]:
    """:func:`encode_mask_rle` for many masks at once (the parametric fit runs them as one batch,
    several times faster per mask than one at a time).

    Returns:
        Per mask, in order: (answer, IoU), or the ValueError that mask raised (empty, unreadable).
    Raises:
        ValueError: bad arguments.
    """
    terms = _check(terms, fit)
    if representation not in REPRESENTATIONS:
        raise ValueError(f"representation must be one of {REPRESENTATIONS}, got {representation!r}")
    module = parametric_fit if representation == "parametric" else radial_fit
    out: list = [None] * len(rles)
    for start in range(0, len(rles), module.BATCH):
        checked = []
        for k, r in enumerate(_checked_rles(rles[start : start + module.BATCH]), start):
            if isinstance(r, ValueError):
                out[k] = r
            else:
                checked.append((k, *r))
        ok = []
        for (k, r, _), frame in zip(checked, frames_from_counts([(c, *r["size"]) for _, r, c in checked],
                                                                  module.WORK_SIDE)):
            if isinstance(frame, ValueError):
                out[k] = frame
            else:
                ok.append((k, r, frame))
        for (k, r, _), contour in zip(ok, module.fit_frames([frame for _, _, frame in ok], terms, fit)):
            answer = contour.to_json_dict(decimals)
            # score exactly what a reader of the JSON gets (floats survive json.dumps/loads unchanged)
            scored = type(contour)(*answer.values())
            pred = polygon_to_rle(scored.to_polygon(num_points), *r["size"])
            out[k] = answer, _same_size_iou(pred, r)
    return out
