"""Batched fitting: frames straight from RLE runs, the cell rasteriser, batch vs one-at-a-time answers."""

from __future__ import annotations

import numpy as np
import pytest
from _geometry_helpers import blob
from matplotlib.path import Path

from vlmr1.geometry import encode_mask_rle, encode_mask_rles, mask_to_rle, rle_to_mask
from vlmr1.geometry._batch import FrameBatch
from vlmr1.geometry._frame import PAD, frames_from_counts, make_frame
from vlmr1.geometry.masks import (
    _checked_rle,
    _checked_rles,
    _compressed_counts,
    _compressed_counts_many,
    largest_outer_line,
)


def _edge_masks() -> list[np.ndarray]:
    """Runs through column ends, a full image, a 1-px line (finer cells), a dot, a corner object."""
    split = np.zeros((50, 40), bool)
    split[30:, 5:9] = True  # runs continue from the bottom of one column to the top of the next
    split[:10, 6:12] = True
    line = np.zeros((300, 400), bool)
    line[100, 20:380] = True
    dot = np.zeros((20, 20), bool)
    dot[5, 7] = True
    corner = np.zeros((60, 80), bool)
    corner[40:, 55:] = blob(20, 25, centre=(15.0, 12.0))  # cut by the image's bottom-right corner
    return [split, np.ones((40, 60), bool), line, dot, corner, blob()]


def _block_low(mask: np.ndarray, f: int) -> tuple[np.ndarray, int, int]:
    """Reference working raster: the mask's box cut into f x f blocks, each block's covered fraction, padded."""
    ys, xs = np.nonzero(mask)
    crop = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(float)
    h, w = -(-crop.shape[0] // f) * f, -(-crop.shape[1] // f) * f
    full = np.zeros((h, w))
    full[: crop.shape[0], : crop.shape[1]] = crop
    return np.pad(full.reshape(h // f, f, w // f, f).sum(axis=(1, 3)) / (f * f), PAD), xs.min(), ys.min()


def test_frames_from_runs_match_block_averages_of_the_decoded_masks(real_rles):
    masks = _edge_masks() + [rle_to_mask(r) for r in real_rles[::15]]
    counts = [_checked_rle(mask_to_rle(m))[1] for m in masks]
    frames = frames_from_counts([(c, *m.shape) for c, m in zip(counts, masks)], 64)
    for m, fr in zip(masks, frames):
        low, x0, y0 = _block_low(m, fr.f)
        np.testing.assert_allclose(fr.low, low, rtol=0, atol=1e-12)
        np.testing.assert_allclose(fr.origin, [x0 + (0.5 - PAD) * fr.f, y0 + (0.5 - PAD) * fr.f])
        assert fr.total == pytest.approx(m.sum() / fr.f**2)
        np.testing.assert_allclose(fr.line, largest_outer_line(fr.low), rtol=0, atol=1e-9)
        np.testing.assert_allclose(fr.bounds, np.r_[-fr.origin, m.shape[::-1] - fr.origin] / fr.f)
    assert frames[2].f < -(-360 // 64)  # the thin line: no 0.5 level at the first block size
    one = make_frame(masks[0], 64)  # the one-mask entry point builds the same frame
    np.testing.assert_array_equal(one.low, frames[0].low)


def test_empty_and_bad_masks_fail_in_place():
    good = mask_to_rle(blob())
    rles = [good, mask_to_rle(np.zeros((5, 5), bool)), {"size": [4, 4], "counts": "bad!"}, {"size": [3, 3]}, good]
    out = encode_mask_rles(rles, "parametric", 8, "fast")
    assert [isinstance(o, ValueError) for o in out] == [False, True, True, True, False]
    assert out[0] == out[4] == encode_mask_rle(good, "parametric", 8, "fast")
    for rle, o in zip(rles[1:4], out[1:4]):
        with pytest.raises(ValueError, match=str(o)[:20]):
            encode_mask_rle(rle, "parametric", 8, "fast")


@pytest.mark.parametrize("rep", ["parametric", "radial"])
def test_batched_answers_equal_one_at_a_time(real_rles, rep):
    rles = real_rles[:: 25 if rep == "radial" else 6]
    batch = encode_mask_rles(rles, rep, 8, "refined")
    assert batch == [encode_mask_rle(r, rep, 8, "refined") for r in rles]


def test_cell_rasteriser_matches_a_dense_even_odd_count(real_rles):
    frames = frames_from_counts([(_checked_rle(r)[1], *r["size"]) for r in real_rles[3::40]], 64)
    rng = np.random.default_rng(0)
    k = 97
    theta = np.linspace(0, 2 * np.pi, k, endpoint=False)
    xs, ys = [], []
    for fr in frames:
        h, w = fr.low.shape
        r = (0.2 + 0.6 * rng.random()) * min(h, w) * (1 + 0.3 * np.sin(3 * theta + rng.random() * 6))
        cx, cy = rng.random() * w, rng.random() * h  # often leaves the raster
        if rng.random() < 0.3:  # a self-crossing figure eight
            xs.append(cx + r * np.sin(theta))
            ys.append(cy + r * np.sin(theta) * np.cos(theta))
        else:
            xs.append(cx + r * np.cos(theta))
            ys.append(cy + r * np.sin(theta))
    x, y = np.array(xs), np.array(ys)
    got = FrameBatch(frames).iou(x, y, np.arange(len(frames)))
    for b, fr in enumerate(frames):
        h, w = fr.low.shape
        jj, ii = np.meshgrid(np.arange(w), np.arange(h))
        inside = Path(np.stack([x[b], y[b]], axis=1)).contains_points(np.stack([jj.ravel(), ii.ravel()], axis=1))
        inside = inside.reshape(h, w)
        inter, area = (fr.low * inside).sum(), (fr.valid * inside).sum()
        assert got[b] == pytest.approx(inter / (area + fr.total - inter), abs=1e-12)


def test_counts_decoded_together_equal_one_by_one(real_rles):
    strings = [_checked_rle(r)[0]["counts"] for r in real_rles[:50]] + [b"", b"0"]
    assert all(np.array_equal(a, b) for a, b in zip(_compressed_counts_many(strings), map(_compressed_counts, strings)))
    rles = real_rles[:20] + [{"size": [2, 2], "counts": "!!"}, {"size": [2, 2], "counts": [1, 2]}, 7,
                             {"size": [1, 4], "counts": "0`"}, {"size": "x", "counts": "0"}] + real_rles[20:30]
    for rle, got in zip(rles, _checked_rles(rles)):
        try:
            want = _checked_rle(rle)
        except ValueError as e:
            assert isinstance(got, ValueError) and str(got) == str(e)
        else:
            assert got[0] == want[0] and np.array_equal(got[1], want[1])
