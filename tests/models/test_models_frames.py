"""Coordinate frames: resized-pixel frame matches the processor exactly; hand-computed mappings."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from transformers import AutoProcessor

from vlmr1.models import CoordinateFrame, get_family, resized_input_size


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


def test_resized_pixels_box_to_original_hand_computed():
    frame = CoordinateFrame("resized_pixels", patch_size=14, merge_size=2, min_pixels=3136, max_pixels=50176)
    # 640x480 -> 252x168, so sx = 640/252, sy = 480/168.
    sx, sy = frame.scale_to_original((640, 480))
    assert sx == pytest.approx(640 / 252) and sy == pytest.approx(480 / 168)
    assert frame.to_original([126, 84, 252, 168], (640, 480)) == pytest.approx([320, 240, 640, 480])
    nested = frame.to_original([[63, 42], [0, 0]], (640, 480))
    assert isinstance(nested, list)
    np.testing.assert_allclose(nested, [[160, 120], [0, 0]])
    back = frame.from_original([320, 240, 640, 480], (640, 480))
    assert back == pytest.approx([126, 84, 252, 168])


def test_norm1000_box_to_original_hand_computed():
    frame = get_family("qwen2_vl").coordinate_frame()
    assert frame.input_size((640, 480)) == (1000, 1000)
    assert frame.to_original([250, 500, 750, 1000], (640, 480)) == pytest.approx([160, 240, 480, 480])
    assert frame.to_original((500, 500), (1920, 1080)) == pytest.approx([960, 540])
    arr = frame.to_original(np.array([[100.0, 200.0]]), (640, 480))
    assert isinstance(arr, np.ndarray)
    np.testing.assert_allclose(arr, [[64, 96]])
    assert get_family("qwen3_vl").coordinate_frame().to_original([1000, 1000], (37, 91)) == pytest.approx([37, 91])


def test_frame_overrides_and_odd_values():
    frame = get_family("qwen2_5_vl").coordinate_frame(max_pixels=28 * 28 * 16)
    assert frame.input_size((640, 480)) == resized_input_size(
        (640, 480), patch_size=14, merge_size=2, min_pixels=56 * 56, max_pixels=28 * 28 * 16
    )
    with pytest.raises(ValueError):
        frame.to_original([1, 2, 3], (640, 480))
