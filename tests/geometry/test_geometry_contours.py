"""Chebyshev contours: conventions, mirror images, terms, affine maps and untrusted input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _geometry_helpers import blob

from vlmr1.geometry import (
    ParametricContour,
    RadialContour,
    contour_from_json,
    encode_mask_rle,
    fit_contour,
    fit_parametric,
    fit_radial,
    mask_iou,
    mask_to_rle,
    polygon_to_mask,
    signed_area,
)

REPS = ("parametric", "radial")
FITS = ("refined", "fast")


def _triangle(h=80, w=100):
    # apex at (60, 10): a unique topmost point, right of centre
    return polygon_to_mask([[60, 10], [90, 70], [12, 55]], h, w)


@pytest.mark.parametrize("fit", FITS)
def test_parametric_clockwise_from_topmost(fit):
    m = _triangle()
    c = fit_parametric(m, fit=fit)
    p = c.to_polygon(512)
    assert signed_area(p) > 0  # clockwise on screen, y down
    start = p[0]
    assert np.hypot(start[0] - 60, start[1] - 10) < 4.0  # starts at the apex (topmost point)
    assert start[1] - p[:, 1].min() < 2.0
    # right after the start it heads down-right along the edge to (90, 70): clockwise on screen
    assert p[20, 0] > start[0] and p[20, 1] > start[1]
    # and it comes back from the lower-left edge at t = 1
    assert p[-20, 0] < start[0]


@pytest.mark.parametrize("fit", FITS)
def test_radial_orientation(fit, asym_mask):
    c = fit_radial(asym_mask, fit=fit)
    p = c.to_polygon(256)
    assert signed_area(p) > 0
    # theta = -pi first: the first point is left of the centre, then it goes up (y decreases)
    assert p[0, 0] < c.centre[0] and p[32, 1] < c.centre[1]


@pytest.mark.parametrize("rep", REPS)
@pytest.mark.parametrize("fit", FITS)
@pytest.mark.parametrize("flip", ["lr", "ud"])
def test_mirror_images_decode_differently(rep, fit, flip, asym_mask):
    m = asym_mask
    mirrored = m[:, ::-1] if flip == "lr" else m[::-1, :]
    h, w = m.shape
    a = fit_contour(m, rep, fit=fit).to_mask(h, w)
    b = fit_contour(mirrored, rep, fit=fit).to_mask(h, w)
    floor = 0.9 if fit == "refined" else 0.85
    assert mask_iou(a, m) > floor and mask_iou(b, mirrored) > floor
    assert mask_iou(a, b) < 0.85  # a fit that folds a shape onto its mirror would give ~1
    back = b[:, ::-1] if flip == "lr" else b[::-1, :]
    assert mask_iou(a, back) > 0.85  # the mirrored fit is the mirror of the fit


@pytest.mark.parametrize("rep", REPS)
@pytest.mark.parametrize("terms", [4, 8, 12])
def test_terms(rep, terms, asym_mask):
    h, w = asym_mask.shape
    c = fit_contour(asym_mask, rep, terms=terms)
    assert c.terms == terms
    d = c.to_json_dict()
    json.dumps(d)
    cls = type(c)
    again = cls.from_json_dict(d, terms=terms)
    assert mask_iou(again.to_mask(h, w), asym_mask) > (0.8 if terms == 4 else 0.9)
    with pytest.raises(ValueError):
        cls.from_json_dict(d, terms=terms + 1)


def test_more_terms_fit_better():
    m = blob(phase=2.0)
    h, w = m.shape
    ious = [mask_iou(fit_parametric(m, terms=n).to_mask(h, w), m) for n in (4, 8, 12)]
    assert ious[0] < ious[2] and ious[1] <= ious[2] + 0.01


def test_json_format():
    m = _triangle()
    p = fit_parametric(m).to_json_dict(decimals=1)
    assert set(p) == {"x", "y"} and len(p["x"]) == len(p["y"]) == 8
    assert all(isinstance(v, float) and round(v, 1) == v for v in p["x"] + p["y"])
    r = fit_radial(m).to_json_dict(decimals=2)
    assert set(r) == {"centre", "coeffs"} and len(r["centre"]) == 2 and len(r["coeffs"]) == 8


def test_affine_parametric_exact():
    c = ParametricContour([50, 20, 3, -1, 0.5, 0, 0.2, 0.1], [40, 2, -15, 1, 0, 0.3, 0, -0.1])
    d = c.affine(2.0, 0.5, 7.0, -3.0)
    np.testing.assert_allclose(d.to_polygon(64), c.to_polygon(64) * [2.0, 0.5] + [7.0, -3.0])
    back = d.affine(0.5, 2.0, -3.5, 6.0)
    np.testing.assert_allclose(back.x, c.x)
    np.testing.assert_allclose(back.y, c.y)
    with pytest.raises(ValueError):
        c.affine(-1.0, 1.0)


def test_affine_radial(asym_mask):
    c = fit_radial(asym_mask)
    uni = c.affine(1.5, 1.5, 4.0, -2.0)  # uniform scale: exact
    np.testing.assert_allclose(uni.to_polygon(128), c.to_polygon(128) * 1.5 + [4.0, -2.0], atol=1e-9)
    # non-uniform: least-squares projection of the exact stretched radius function, approximate;
    # the error grows with the anisotropy (a typical VLM resize changes the aspect ratio by ~2%)
    hh, ww = asym_mask.shape
    for sx, sy, floor in [(1.006, 0.984, 0.985), (1.1, 1.0, 0.97), (1.6, 0.7, 0.75)]:
        st = c.affine(sx, sy)
        h, w = int(hh * sy) + 2, int(ww * sx) + 2
        direct = polygon_to_mask(c.to_polygon(512) * [sx, sy], h, w)
        assert mask_iou(st.to_mask(h, w), direct) > floor
        back = st.affine(1 / sx, 1 / sy)
        assert mask_iou(back.to_mask(hh, ww), c.to_mask(hh, ww)) > floor


def test_affine_matches_resized_mask():
    m = blob(180, 220, centre=(104.0, 82.0))
    small = m[::2, ::2]  # pixel (i, j) of small ~ pixels (2i, 2j) of m: frame scale 0.5
    c = fit_parametric(m)
    mapped = c.affine(0.5, 0.5)
    assert mask_iou(mapped.to_mask(*small.shape), small) > 0.9


GARBAGE_PARAMETRIC = [
    {"x": [1.0] * 8, "y": [float("nan")] + [1.0] * 7},
    {"x": [float("inf")] + [1.0] * 7, "y": [1.0] * 8},
    {"x": [1e308] + [1.0] * 7, "y": [1.0] * 8},
    {"x": [10**400] + [1.0] * 7, "y": [1.0] * 8},
    {"x": [1.0] * 7, "y": [1.0] * 8},
    {"x": [1.0] * 8, "y": [1.0] * 9},
    {"x": ["1.0"] * 8, "y": [1.0] * 8},
    {"x": "1,2,3,4,5,6,7,8", "y": [1.0] * 8},
    {"x": [[1.0]] * 8, "y": [1.0] * 8},
    {"x": [{"v": 1}] * 8, "y": [1.0] * 8},
    {"x": [True] * 8, "y": [1.0] * 8},
    {"x": [None] * 8, "y": [1.0] * 8},
    {"x": [1.0] * 8},
    {"centre": [1, 2], "coeffs": [1.0] * 8},
    [[1.0] * 8, [1.0] * 8],
    "x=1",
    None,
    {"x": [], "y": []},
]

GARBAGE_RADIAL = [
    {"centre": [1.0], "coeffs": [1.0] * 8},
    {"centre": [1.0, 2.0, 3.0], "coeffs": [1.0] * 8},
    {"centre": [float("nan"), 2.0], "coeffs": [1.0] * 8},
    {"centre": [1.0, 2.0], "coeffs": [1e308] * 8},
    {"centre": [1.0, 2.0], "coeffs": [float("-inf")] * 8},
    {"centre": [1.0, 2.0], "coeffs": [1.0] * 3},
    {"centre": "middle", "coeffs": [1.0] * 8},
    {"centre": [1.0, 2.0], "coeffs": [[1.0, 2.0]] * 8},
    {"centre": [1.0, 2.0]},
    {"x": [1.0] * 8, "y": [1.0] * 8},
    42,
]


@pytest.mark.parametrize("d", GARBAGE_PARAMETRIC)
def test_parametric_from_json_rejects_garbage(d):
    with pytest.raises(ValueError):
        ParametricContour.from_json_dict(d, terms=8)


@pytest.mark.parametrize("d", GARBAGE_RADIAL)
def test_radial_from_json_rejects_garbage(d):
    with pytest.raises(ValueError):
        RadialContour.from_json_dict(d, terms=8)


def test_contour_from_json_dispatch():
    assert isinstance(contour_from_json({"x": [1.0] * 8, "y": [2.0] * 8}), ParametricContour)
    assert isinstance(contour_from_json({"centre": [1, 2], "coeffs": [3.0] * 8}, "radial"), RadialContour)
    with pytest.raises(ValueError):
        contour_from_json({"x": [1.0] * 8, "y": [2.0] * 8}, "radial")
    with pytest.raises(ValueError):
        contour_from_json({"x": [1.0] * 8, "y": [2.0] * 8}, "polar")


def test_from_json_accepts_ints_and_any_length_without_terms():
    c = ParametricContour.from_json_dict({"x": [5, 1, 0], "y": [6, 0, 1]})
    assert c.terms == 3
    r = RadialContour.from_json_dict({"centre": [3, 4], "coeffs": [2]})
    assert r.terms == 1


@pytest.mark.parametrize(
    "contour",
    [
        ParametricContour([1e308] * 8, [1e308] * 8),
        ParametricContour([float("nan")] * 8, [1.0] * 8),
        ParametricContour([-1e300, 1e300, 0, 0, 0, 0, 0, 0], [1e300, 0, -1e300, 0, 0, 0, 0, 0]),
        ParametricContour([1e12, 1e12, 0, 0, 0, 0, 0, 0], [5, 1e12, 0, 0, 0, 0, 0, 0]),
        RadialContour([1e308, -1e308], [1e308] * 8),
        RadialContour([20.0, 20.0], [float("inf")] * 8),
        RadialContour([20.0, 20.0], [1e9] + [0.0] * 7),
        RadialContour([20.0, 20.0], [-5.0] * 8),
    ],
)
def test_rasterising_garbage_never_raises_nor_grows(contour):
    with np.errstate(all="raise"):  # any floating-point warning would surface as an error here
        m = contour.to_mask(48, 64)
    assert m.shape == (48, 64) and m.dtype == bool


def test_radial_negative_radii_decode_as_zero():
    c = RadialContour([10.0, 10.0], [-3.0, 5.0])  # r = -3 + 5 theta/pi: negative for theta < 0.6 rad
    p = c.to_polygon(64)
    assert np.all(np.hypot(*(p - c.centre).T) <= 2.0 + 1e-9)


def test_encode_mask_rle_and_multipart():
    m = blob()
    small = np.zeros_like(m)
    small[80:88, 2:10] = True  # a second, smaller part
    whole = m | small
    rle = mask_to_rle(whole)
    for rep in REPS:
        for fit in FITS:
            answer, iou = encode_mask_rle(rle, rep, 8, fit)
            json.dumps(answer)
            c = (ParametricContour if rep == "parametric" else RadialContour).from_json_dict(answer, 8)
            decoded = c.to_mask(*whole.shape)
            assert iou == pytest.approx(mask_iou(decoded, whole), abs=1e-9)  # scored on the rounded answer
            assert mask_iou(decoded, m) > iou  # the big part was fitted, the whole mask scored
            assert not decoded[80:88, 2:10].any()
    with pytest.raises(ValueError):
        encode_mask_rle(mask_to_rle(np.zeros((5, 5))), "parametric")
    with pytest.raises(ValueError):
        encode_mask_rle(rle, "polar")
    with pytest.raises(ValueError):
        encode_mask_rle(rle, "radial", fit="slow")


def test_fit_rejects_bad_input(asym_mask):
    with pytest.raises(ValueError):
        fit_parametric(asym_mask[..., None])
    with pytest.raises(ValueError):
        fit_radial(np.zeros((10, 10), bool))
    with pytest.raises(ValueError):
        fit_contour(asym_mask, "polar")
    with pytest.raises(ValueError):
        fit_parametric(asym_mask, terms=1)


def test_full_frame_and_holed_masks():
    full = np.ones((40, 60), bool)
    ring = blob()
    ring[30:50, 40:60] = False  # a hole: only the outer outline is represented
    for rep in REPS:
        assert mask_iou(fit_contour(full, rep).to_mask(40, 60), full) > 0.97
        c = fit_contour(ring, rep)
        assert mask_iou(c.to_mask(*ring.shape), ring) > 0.75


def test_tiny_and_thin_masks():
    dot = np.zeros((20, 20), bool)
    dot[5, 7] = True
    line = np.zeros((300, 400), bool)
    line[100, 20:380] = True  # 1 px thick, far thinner than a working cell
    for m in (dot, line):
        for rep in REPS:
            c = fit_contour(m, rep)
            assert np.isfinite(c.to_polygon()).all()
    assert mask_iou(fit_parametric(line).to_mask(300, 400), line) > 0.3
