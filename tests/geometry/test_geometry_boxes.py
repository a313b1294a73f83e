"""Box IoU and helpers, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from vlmr1.geometry import (
    box_area,
    box_iou,
    box_iou_pairwise,
    clip_boxes,
    mask_to_bbox,
    scale_boxes,
    xywh_to_xyxy,
    xyxy_to_xywh,
)


def test_box_iou_hand_computed():
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [2, 2, 4, 4]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 4)
    expected = np.array(
        [
            [1.0, 50 / 150, 0.0, 4 / 100],
            [25 / 175, 50 / 150, 0.0, 0.0],
        ]
    )
    np.testing.assert_allclose(iou, expected)
    np.testing.assert_allclose(box_iou_pairwise(a, b[:2]), [1.0, 50 / 150])


def test_box_iou_degenerate_and_nonfinite():
    a = np.array([[0, 0, 0, 0], [5, 5, 1, 1], [0, 0, np.nan, 4], [0, 0, np.inf, 4]])
    b = np.array([[0, 0, 10, 10]])
    iou = box_iou(a, b)
    np.testing.assert_array_equal(iou, np.zeros((4, 1)))
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 1)
    with pytest.raises(ValueError):
        box_iou([[1, 2, 3]], b)


def test_touching_boxes_have_zero_iou():
    assert box_iou_pairwise([0, 0, 5, 5], [5, 0, 10, 5]) == 0.0


def test_area_clip_scale_formats():
    np.testing.assert_allclose(box_area([[0, 0, 4, 3], [5, 5, 1, 1]]), [12, 0])
    np.testing.assert_allclose(clip_boxes([[-5, 2, 50, 70]], height=60, width=40), [[0, 2, 40, 60]])
    np.testing.assert_allclose(scale_boxes([[10, 20, 30, 40]], 0.5, 2.0), [[5, 40, 15, 80]])
    np.testing.assert_allclose(xywh_to_xyxy([[10, 20, 5, 6]]), [[10, 20, 15, 26]])
    np.testing.assert_allclose(xyxy_to_xywh([[10, 20, 15, 26]]), [[10, 20, 5, 6]])


def test_mask_to_bbox():
    m = np.zeros((10, 12), bool)
    m[3:7, 2:9] = True
    np.testing.assert_array_equal(mask_to_bbox(m), [2, 3, 9, 7])
    np.testing.assert_array_equal(mask_to_bbox(m, "xywh"), [2, 3, 7, 4])
    np.testing.assert_array_equal(mask_to_bbox(np.zeros((4, 4))), [0, 0, 0, 0])
    single = np.zeros((3, 3), bool)
    single[0, 0] = True
    np.testing.assert_array_equal(mask_to_bbox(single), [0, 0, 1, 1])
    with pytest.raises(ValueError):
        mask_to_bbox(m, "cxcywh")
