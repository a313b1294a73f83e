"""Coordinate frames: resized-pixel frame matches the processor exactly; hand-computed mappings."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from transformers import AutoProcessor

from vlmr1.models import AnswerScale, CoordinateFrame, get_family, resized_input_size
from vlmr1.models.frames import image_size


def test_qwen25vl_input_size_equals_processor_grid(tiny_qwen25vl_dir):
    processor = AutoProcessor.from_pretrained(tiny_qwen25vl_dir)
    frame = get_family("qwen2_5_vl").coordinate_frame(processor)
    assert (frame.min_pixels, frame.max_pixels, frame.patch_size) == (28 * 28 * 4, 28 * 28 * 64, 14)
    for w, h in [(640, 480), (100, 300), (33, 1000), (2000, 20)]:
        grid = processor.image_processor(images=[Image.new("RGB", (w, h))], return_tensors="pt")["image_grid_thw"][0]
        assert frame.input_size((w, h)) == (int(grid[2]) * 14, int(grid[1]) * 14), (w, h)
    # Hand check of smart_resize for 640x480 with max 50176 px: beta = sqrt(307200/50176) ~ 2.474,
    # h = floor(480/2.474/28)*28 = 168, w = floor(640/2.474/28)*28 = 252.
    assert frame.input_size((640, 480)) == (252, 168)


def test_qwen3vl_frame_uses_16px_patches(tiny_qwen3vl_dir):
    processor = AutoProcessor.from_pretrained(tiny_qwen3vl_dir)
    frame = get_family("qwen3_vl").coordinate_frame(processor)
    assert frame.kind == "norm1000" and frame.patch_size == 16
    grid = processor.image_processor(images=[Image.new("RGB", (640, 480))], return_tensors="pt")["image_grid_thw"][0]
    assert resized_input_size(
        (640, 480), patch_size=16, merge_size=2, min_pixels=frame.min_pixels, max_pixels=frame.max_pixels
    ) == (int(grid[2]) * 16, int(grid[1]) * 16)


def test_resized_pixels_answer_to_original_hand_computed():
    frame = CoordinateFrame("resized_pixels", patch_size=14, merge_size=2, min_pixels=3136, max_pixels=50176)
    # 640x480 -> 252x168, so sx = 640/252, sy = 480/168: the data layer stores the frame, the scale reads the row.
    row = {"original_sizes": [[640, 480]], "frame_sizes": [list(frame.input_size((640, 480)))]}
    scale = AnswerScale.of_row(row)
    assert (scale.sx, scale.sy) == pytest.approx((640 / 252, 480 / 168)) and scale.extent == (252, 168)
    assert scale.box([126, 84, 252, 168]) == pytest.approx([320, 240, 640, 480])
    np.testing.assert_allclose(scale.points(np.array([[63, 42], [0, 0]])), [[160, 120], [0, 0]])


def test_norm1000_answer_to_original_hand_computed():
    frame = get_family("qwen2_vl").coordinate_frame()
    assert frame.input_size((640, 480)) == (1000, 1000)
    scale = AnswerScale.of_row({"original_sizes": [[640, 480]], "frame_sizes": [[1000, 1000]]})
    assert scale.box([250, 500, 750, 1000]) == pytest.approx([160, 240, 480, 480])
    np.testing.assert_allclose(scale.points([[100.0, 200.0]]), [[64, 96]])
    qwen3 = get_family("qwen3_vl").coordinate_frame()
    corner = AnswerScale.of_row({"original_sizes": [[37, 91]], "frame_sizes": [list(qwen3.input_size((37, 91)))]})
    assert corner.box([0, 0, 1000, 1000]) == pytest.approx([0, 0, 37, 91])


def test_no_frame_means_original_pixels_and_masks_at_another_size():
    assert AnswerScale.of_row({"original_sizes": [[640, 480]]}).box([1, 2, 3, 4]) == [1, 2, 3, 4]
    assert AnswerScale.of_row({}).extent is None
    # a mask stored at half the image size: the answer lands on the mask's pixels
    half = AnswerScale.of_row({"original_sizes": [[640, 480]], "frame_sizes": [[1000, 1000]]}).onto(320, 240)
    assert half.box([1000, 1000, 1000, 1000]) == pytest.approx([320, 240, 320, 240])


@pytest.mark.parametrize("sizes", [[[0, 5]], [[float("inf"), 5]], [["a", 1]], [[1, 2, 3]], [[10**400, 5]]])
def test_unusable_sizes_are_a_value_error(sizes):
    with pytest.raises(ValueError):
        image_size(sizes)


def test_frame_overrides():
    frame = get_family("qwen2_5_vl").coordinate_frame(max_pixels=28 * 28 * 16)
    assert frame.input_size((640, 480)) == resized_input_size(
        (640, 480), patch_size=14, merge_size=2, min_pixels=56 * 56, max_pixels=28 * 28 * 16
    )
