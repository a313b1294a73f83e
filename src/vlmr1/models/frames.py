"""Coordinate frames in which a model family answers boxes and points, and mapping them to original pixels.

Two conventions exist among the supported families:

* ``resized_pixels`` (Qwen2.5-VL): absolute pixel coordinates of the image *as the model saw it*, i.e. after the
  image processor's ``smart_resize``. The resized size is computed by calling transformers' own ``smart_resize``
  (``transformers.models.qwen2_vl.image_processing_qwen2_vl``), the function the image processor itself uses.
* ``norm1000`` (Qwen2-VL, Qwen3-VL): coordinates on a 0-1000 grid relative to the image, whatever its size.

Reward functions map the model's numbers to original-image pixels with ``CoordinateFrame.to_original``; dataset
code maps ground truth into the model frame (for prompts or SFT targets) with ``CoordinateFrame.from_original``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

FrameKind = Literal["resized_pixels", "norm1000"]
NORM_GRID = 1000.0


def resized_input_size(
    original_size: tuple[int, int],
    *,
    patch_size: int,
    merge_size: int,
    min_pixels: int,
    max_pixels: int,
) -> tuple[int, int]:
    """Size of an image after the Qwen image processor's resize.

    Args:
        original_size: (width, height) of the original image.
        patch_size: vision patch size (14 for Qwen2/2.5-VL, 16 for Qwen3-VL).
        merge_size: spatial merge size (2 for all supported families).
        min_pixels: the processor's ``size["shortest_edge"]`` (minimum total pixels).
        max_pixels: the processor's ``size["longest_edge"]`` (maximum total pixels).

    Returns:
        (width, height) of the resized image, equal to ``image_grid_thw[2] * patch_size, image_grid_thw[1] * patch_size``.
    """
    width, height = original_size
    new_h, new_w = smart_resize(
        int(height), int(width), factor=patch_size * merge_size, min_pixels=min_pixels, max_pixels=max_pixels
    )
    return int(new_w), int(new_h)


def _scale(values: Any, sx: float, sy: float) -> Any:
    """Multiply alternating x/y values by (sx, sy), keeping the input's nesting (list/tuple/ndarray)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size % 2:
        raise ValueError(f"expected an even number of values (x, y pairs), got shape {arr.shape}")
    flat = arr.reshape(-1, 2) * np.array([sx, sy])
    out = flat.reshape(arr.shape)
    if isinstance(values, np.ndarray):
        return out
    return out.tolist()


@dataclass(frozen=True)
class CoordinateFrame:
    """The frame a model answers coordinates in.

    Attributes:
        kind: ``"resized_pixels"`` or ``"norm1000"``.
        patch_size, merge_size, min_pixels, max_pixels: the image processor's resize settings; only used by
            ``resized_pixels`` (they decide the resized size), kept for all kinds for introspection.
    """

    kind: FrameKind
    patch_size: int = 14
    merge_size: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280

    def input_size(self, original_size: tuple[int, int]) -> tuple[float, float]:
        """Extent of the model frame for an image.

        Args:
            original_size: (width, height) of the original image.

        Returns:
            (width, height) of the frame: the resized image size for ``resized_pixels``, (1000, 1000) for ``norm1000``.
        """
        if self.kind == "norm1000":
            return NORM_GRID, NORM_GRID
        return resized_input_size(
            original_size,
            patch_size=self.patch_size,
            merge_size=self.merge_size,
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
        )

    def scale_to_original(self, original_size: tuple[int, int]) -> tuple[float, float]:
        """Factors (sx, sy) mapping model-frame coordinates to original pixels (x_orig = x * sx).

        Args:
            original_size: (width, height) of the original image.

        Returns:
            (sx, sy) as floats.
        """
        in_w, in_h = self.input_size(original_size)
        return original_size[0] / in_w, original_size[1] / in_h

    def to_original(self, coords: Sequence | np.ndarray, original_size: tuple[int, int]) -> Any:
        """Map boxes/points from the model frame to original-image pixels.

        Args:
            coords: alternating x, y values in any nesting: a box ``[x1, y1, x2, y2]``, a point ``[x, y]``,
                a list of points ``[[x, y], ...]`` or a list of boxes.
            original_size: (width, height) of the original image.

        Returns:
            Same nesting, as float lists (or an ndarray if an ndarray was given). No clipping is done.
        """
        sx, sy = self.scale_to_original(original_size)
        return _scale(coords, sx, sy)

    def from_original(self, coords: Sequence | np.ndarray, original_size: tuple[int, int]) -> Any:
        """Map boxes/points from original-image pixels into the model frame (inverse of ``to_original``).

        Args:
            coords: alternating x, y values, nested as in ``to_original``.
            original_size: (width, height) of the original image.

        Returns:
            Same nesting, as float lists (or an ndarray if an ndarray was given).
        """
        sx, sy = self.scale_to_original(original_size)
        return _scale(coords, 1.0 / sx, 1.0 / sy)


def frame_settings_from_processor(processor: Any) -> dict[str, int]:
    """Read the resize settings of a Qwen processor (or bare image processor).

    Args:
        processor: a ``ProcessorMixin`` with ``.image_processor``, or a Qwen2VL image processor.

    Returns:
        ``{"patch_size", "merge_size", "min_pixels", "max_pixels"}`` as the processor will actually use them.
    """
    image_processor = getattr(processor, "image_processor", processor)
    size = image_processor.size
    get = size.get if isinstance(size, dict) else lambda k, d=None: getattr(size, k, d)
    return {
        "patch_size": int(image_processor.patch_size),
        "merge_size": int(image_processor.merge_size),
        "min_pixels": int(get("shortest_edge")),
        "max_pixels": int(get("longest_edge")),
    }
