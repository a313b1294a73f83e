"""The one owner of coordinates: the frame each model family answers in, and the map from it to original pixels.

Two conventions exist among the supported families:

* ``resized_pixels`` (Qwen2.5-VL): absolute pixel coordinates of the image *as the model saw it*, i.e. after the
  image processor's ``smart_resize`` (transformers' own function, the one the image processor calls).
* ``norm1000`` (Qwen2-VL, Qwen3-VL): coordinates on a 0-1000 grid relative to the image, whatever its size.

The data layer stores each image's frame extent on the row (``frame_sizes``, from :meth:`CoordinateFrame.input_size`)
beside its ``original_sizes``. Every reward, eval metric and drawing maps an answer to original pixels through
:meth:`AnswerScale.of_row`, so the per-family rule is applied in one place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

FrameKind = Literal["resized_pixels", "norm1000"]
NORM_GRID = 1000.0


def resized_input_size(original_size: tuple[int, int], *, patch_size: int, merge_size: int, min_pixels: int,
                       max_pixels: int) -> tuple[int, int]:
    """(width, height) of an image after the Qwen image processor's resize (= grid_thw[2], grid_thw[1] x patch)."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize  # heavy; only the data layer

    width, height = original_size
    new_h, new_w = smart_resize(int(height), int(width), factor=patch_size * merge_size, min_pixels=min_pixels,
                                max_pixels=max_pixels)
    return int(new_w), int(new_h)


@dataclass(frozen=True)
class CoordinateFrame:
    """The frame a model family answers coordinates in, with the resize settings that decide a resized frame.

    Attributes:
        kind: ``"resized_pixels"`` or ``"norm1000"``.
        patch_size, merge_size, min_pixels, max_pixels: the image processor's resize settings (used by
            ``resized_pixels``; kept for every kind so a run records them).
    """

    kind: FrameKind
    patch_size: int = 14
    merge_size: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280

    def input_size(self, original_size: tuple[int, int]) -> tuple[float, float]:
        """(width, height) of the frame for an image of ``original_size``: the resized image, or (1000, 1000)."""
        if self.kind == "norm1000":
            return NORM_GRID, NORM_GRID
        return resized_input_size(original_size, patch_size=self.patch_size, merge_size=self.merge_size,
                                  min_pixels=self.min_pixels, max_pixels=self.max_pixels)


def frame_settings_from_processor(processor: Any) -> dict[str, int]:
    """``{"patch_size", "merge_size", "min_pixels", "max_pixels"}`` as a Qwen processor (or image processor) uses them."""
    image_processor = getattr(processor, "image_processor", processor)
    size = image_processor.size
    get = size.get if isinstance(size, dict) else lambda k, d=None: getattr(size, k, d)
    return {"patch_size": int(image_processor.patch_size), "merge_size": int(image_processor.merge_size),
            "min_pixels": int(get("shortest_edge")), "max_pixels": int(get("longest_edge"))}


def image_size(sizes: Any) -> tuple[float, float] | None:
    """The ``(w, h)`` of a row's first image from ``original_sizes`` / ``frame_sizes`` (``[[w, h], ...]``).

    A bare ``[w, h]`` is accepted; None or an empty list give None.

    Raises:
        ValueError: present but not two positive finite numbers.
    """
    if sizes is None or (isinstance(sizes, (list, tuple)) and not sizes):
        return None
    if isinstance(sizes, (list, tuple)) and isinstance(sizes[0], (list, tuple)):
        sizes = sizes[0]
    if not isinstance(sizes, (list, tuple)) or len(sizes) != 2:
        raise ValueError(f"expected [w, h], got {sizes!r:.80}")
    try:
        w, h = float(sizes[0]), float(sizes[1])
    except (TypeError, ValueError, OverflowError):  # None, "a", an integer beyond float range
        raise ValueError(f"image size must be two numbers, got {sizes!r:.80}") from None
    if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
        raise ValueError(f"image size must be positive and finite, got {sizes!r:.80}")
    return w, h


@dataclass(frozen=True)
class AnswerScale:
    """How an answer about a row's first image maps to original pixels: ``x_original = x * sx``, ``y * sy``.

    Attributes:
        sx, sy: the scale factors (1.0 when the frame or the original size is unknown).
        extent: the frame's ``(w, h)`` (the original size when no frame is given; None when neither is known).
        original: the image's original ``(w, h)``, or None.
    """

    sx: float = 1.0
    sy: float = 1.0
    extent: tuple[float, float] | None = None
    original: tuple[float, float] | None = None

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> AnswerScale:
        """The scale of a dataset row (fields ``original_sizes`` and ``frame_sizes``; no frame = original pixels).

        Raises:
            ValueError: a size is present but invalid.
        """
        original = image_size(row.get("original_sizes"))
        frame = image_size(row.get("frame_sizes"))
        if original is None or frame is None:
            return cls(1.0, 1.0, frame or original, original)
        return cls(original[0] / frame[0], original[1] / frame[1], frame, original)

    def onto(self, width: float, height: float) -> AnswerScale:
        """The same answer mapped onto a ``width x height`` raster of the image (e.g. a mask stored at another size)."""
        if self.original is None or (width, height) == self.original:
            return self
        fx, fy = width / self.original[0], height / self.original[1]
        return AnswerScale(self.sx * fx, self.sy * fy, self.extent, (float(width), float(height)))

    def box(self, box: Sequence[float]) -> list[float]:
        """``[x1, y1, x2, y2]`` in the model's frame -> original pixels."""
        return [box[0] * self.sx, box[1] * self.sy, box[2] * self.sx, box[3] * self.sy]

    def points(self, points: np.ndarray) -> np.ndarray:
        """(n, 2) x, y in the model's frame -> original pixels."""
        with np.errstate(all="ignore"):
            return np.asarray(points, dtype=np.float64) * np.array([self.sx, self.sy])
