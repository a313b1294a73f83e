"""Box IoU and helpers, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from vlmr1.geometry import box_area, box_iou_pairwise, is_valid_box, mask_to_bbox, xywh_to_xyxy, xyxy_to_xywh


def test_box_iou_hand_computed():
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [0, 0, 10, 10], [0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [2, 2, 4, 4]])
    np.testing.assert_allclose(box_iou_pairwise(a, b), [1.0, 50 / 150, 0.0, 4 / 100])


def test_box_iou_degenerate_and_nonfinite():
    a = np.array([[0, 0, 0, 0], [5, 5, 1, 1], [0, 0, np.nan, 4], [0, 0, np.inf, 4]])
    np.testing.assert_array_equal(box_iou_pairwise(a, [0, 0, 10, 10]), np.zeros(4))
    with pytest.raises(ValueError):
        box_iou_pairwise([[1, 2, 3]], [0, 0, 1, 1])


def test_box_validity_in_a_frame():
    assert is_valid_box([0, 0, 10, 10]) and is_valid_box([-50, 0, 50, 10], (100, 100))
    assert not is_valid_box([10, 0, 5, 10]) and not is_valid_box([0, 0, float("nan"), 1]) and not is_valid_box(None)
    assert not is_valid_box([-150, 0, 50, 50], (100, 100)) and not is_valid_box([0, 0, 50, 201], (100, 100))


def test_touching_boxes_have_zero_iou():
    assert box_iou_pairwise([0, 0, 5, 5], [5, 0, 10, 5]) == 0.0


def test_area_and_formats():
    np.testing.assert_allclose(box_area([[0, 0, 4, 3], [5, 5, 1, 1]]), [12, 0])
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
