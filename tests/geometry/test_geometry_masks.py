"""Masks, RLE, polygons and contours: conventions and round trips."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from vlmr1.geometry import (
    largest_component,
    mask_iou,
    mask_to_rle,
    outer_contour,
    polygon_to_mask,
    polygon_to_rle,
    rle_area,
    rle_iou,
    rle_to_mask,
    signed_area,
)


def test_rle_round_trip_and_json():
    rng = np.random.default_rng(0)
    m = rng.random((37, 53)) > 0.6
    rle = mask_to_rle(m)
    assert isinstance(rle["counts"], str) and rle["size"] == [37, 53]
    json.dumps(rle)
    back = rle_to_mask(rle)
    assert back.dtype == bool and back.shape == (37, 53)
    np.testing.assert_array_equal(back, m)
    assert rle_area(rle) == m.sum()
    # bytes counts and uncompressed (list) counts decode too
    np.testing.assert_array_equal(rle_to_mask({"size": rle["size"], "counts": rle["counts"].encode()}), m)
    col_major = m.T.ravel()
    runs, cur, n = [], False, 0
    for v in col_major:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    np.testing.assert_array_equal(rle_to_mask({"size": [37, 53], "counts": runs}), m)


def test_rle_iou_matches_mask_iou():
    a = np.zeros((20, 30), bool)
    b = np.zeros((20, 30), bool)
    a[2:10, 3:15] = True  # 96 px
    b[5:12, 10:20] = True  # 70 px, overlap rows 5..9 x cols 10..14 = 25 px
    assert mask_iou(a, b) == pytest.approx(25 / (96 + 70 - 25))
    assert rle_iou(mask_to_rle(a), mask_to_rle(b)) == pytest.approx(25 / (96 + 70 - 25))
    assert mask_iou(np.zeros((3, 3)), np.zeros((3, 3))) == 0.0


def test_polygon_pixel_centre_convention():
    # a square with corners on pixel edges covers exactly the pixels inside it
    m = polygon_to_mask([[2, 3], [12, 3], [12, 8], [2, 8]], 20, 20)
    assert m.sum() == 50
    assert m[3:8, 2:12].all()
    # moving an edge across a pixel centre (x = 12.5) adds a column, not before
    assert polygon_to_mask([[2, 3], [12.4, 3], [12.4, 8], [2, 8]], 20, 20).sum() == 50
    assert polygon_to_mask([[2, 3], [12.6, 3], [12.6, 8], [2, 8]], 20, 20).sum() == 55


@pytest.mark.parametrize(
    "points",
    [
        [[np.nan, 1], [3, 4], [5, 1]],
        [[np.inf, 1], [3, 4], [5, 1]],
        [[1, 1], [3, 4]],  # two points: pycocotools would read 4 numbers as a box
        [],
        "junk",
        [["a", "b"], [1, 2], [3, 4]],
        [[1, 2, 3], [4, 5, 6], [7, 8, 9]],
        None,
        [[200, 200], [300, 200], [300, 300]],  # entirely outside
    ],
)
def test_polygon_garbage_gives_empty_mask(points):
    m = polygon_to_mask(points, 16, 24)
    assert m.shape == (16, 24) and not m.any()


def test_polygon_huge_coordinates_are_clipped_fast():
    # without clipping pycocotools would walk an edge ~1e15 px long
    pts = [[-1e15, -1e15], [1e15, -1e15], [1e15, 1e15], [-1e15, 1e15]]
    t = time.perf_counter()
    m = polygon_to_mask(pts, 30, 40)
    assert time.perf_counter() - t < 0.5
    assert m.shape == (30, 40) and m.all()
    # 1e308 overflows in naive arithmetic; still fine
    m = polygon_to_mask([[-1e308, 5], [1e308, 5], [1e308, 1e308]], 30, 40)
    assert m.shape == (30, 40)
    # partly outside: clipped, not distorted
    m = polygon_to_mask([[-10, 2], [20, 2], [20, 12], [-10, 12]], 30, 40)
    assert m.sum() == 20 * 10 and m[2:12, 0:20].all()
    rle = polygon_to_rle([[-10, 2], [20, 2], [20, 12], [-10, 12]], 30, 40)
    assert list(rle["size"]) == [30, 40]


def test_polygon_bad_size_raises():
    with pytest.raises(ValueError):
        polygon_to_mask([[0, 0], [1, 0], [1, 1]], 0, 10)


def test_largest_component():
    m = np.zeros((20, 20), bool)
    m[1:4, 1:4] = True  # 9 px
    m[8:15, 8:15] = True  # 49 px
    m[15, 15] = True  # diagonal neighbour: 8-connected to the big square
    out = largest_component(m)
    assert out.sum() == 50 and not out[1:4, 1:4].any()
    assert not largest_component(np.zeros((4, 4))).any()


def test_outer_contour_conventions_and_round_trip():
    m = np.zeros((30, 40), bool)
    m[5:20, 8:30] = True
    m[12:25, 10:16] = True  # a leg: non-convex
    m[2:4, 35:38] = True  # small second part, ignored
    c = outer_contour(m)
    assert c.ndim == 2 and c.shape[1] == 2
    assert signed_area(c) > 0  # clockwise on screen (y down)
    assert c[0, 1] == c[:, 1].min() == 5.0  # starts at the top edge (y of the pixel edge)
    assert c[0, 0] == c[c[:, 1] == c[0, 1], 0].min()  # leftmost of the topmost
    assert c[1, 0] > c[0, 0]  # and moves right along the top: clockwise
    part = largest_component(m)
    assert mask_iou(polygon_to_mask(c, 30, 40), part) == 1.0
    assert outer_contour(np.zeros((5, 5))).shape == (0, 2)


def test_outer_contour_single_pixel():
    m = np.zeros((5, 5), bool)
    m[2, 3] = True
    c = outer_contour(m)
    assert signed_area(c) > 0
    np.testing.assert_array_equal(polygon_to_mask(c, 5, 5), m)


@pytest.mark.parametrize(
    "rle",
    [
        {"size": [10, 10], "counts": "garbage"},  # characters outside the alphabet
        {"size": [10, 10], "counts": "\u00e9\u00e9"},  # not ASCII
        {"size": [10, 10], "counts": "o"},  # ends inside a number: pycocotools would read past the string
        {"size": [10, 10], "counts": ""},  # adds up to 0 pixels
        {"size": [10, 10], "counts": [50, 60]},  # adds up to 110: pycocotools would write past the buffer
        {"size": [10, 10], "counts": [-5, 105]},
        {"size": [-1, 5], "counts": ""},
        {"size": "big", "counts": ""},
        {"counts": "x"},
        "not an rle",
    ],
)
def test_corrupt_rle_is_rejected_before_pycocotools(rle):
    with pytest.raises(ValueError):
        rle_to_mask(rle)


def test_compressed_counts_match_pycocotools():
    from pycocotools import mask as mask_utils

    from vlmr1.geometry.masks import _compressed_counts

    rng = np.random.default_rng(3)
    for _ in range(20):
        m = rng.random((int(rng.integers(1, 300)), int(rng.integers(1, 300)))) > rng.random()
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        counts = _compressed_counts(rle["counts"])
        assert counts.sum() == m.size and counts[1::2].sum() == m.sum()
