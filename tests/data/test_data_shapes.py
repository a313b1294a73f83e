"""The synthetic referring-segmentation generator (``vlmr1 data shapes``): answers, phrases, determinism."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from vlmr1.data.loading import load_sources, pair_sources
from vlmr1.data.shapes import (
    COLORS,
    KINDS,
    STAR_SHAPED_KINDS,
    Shape,
    describe,
    generate,
    main,
    make_scene,
    render_shape,
)
from vlmr1.geometry import ParametricContour, mask_iou, rle_to_mask
from vlmr1.models import resized_input_size


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes")
    generate(str(out), num_train=60, num_val=12, seed=3, workers=1, progress=False)
    return out


def _rows(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_rows_have_the_coco_fields_and_load(shapes_dir):
    rows = _rows(shapes_dir / "train.jsonl")
    assert len(rows) == 60 and len(_rows(shapes_dir / "val.jsonl")) == 12
    for row in rows:
        assert {"id", "image", "conversations", "mask", "bbox", "category", "fit_iou"} <= set(row)
        human, gpt = row["conversations"]
        assert human["from"] == "human" and human["value"].startswith("<image>Outline the ")
        assert gpt["from"] == "gpt" and gpt["value"].startswith("<answer>{") and gpt["value"].endswith("}</answer>")
        assert row["mask"]["size"] == [112, 112] and row["category"] in KINDS
        x1, y1, x2, y2 = row["bbox"]
        assert 0 <= x1 < x2 <= 112 and 0 <= y1 < y2 <= 112
    # num_shapes counts the shapes drawn in the image: separate 8-connected blobs on the flat background
    for row in rows[:20]:
        pixels = np.asarray(Image.open(shapes_dir / row["image"]).convert("RGB"))
        _, blobs = ndimage.label((pixels != pixels[0, 0]).any(axis=2), structure=np.ones((3, 3)))
        assert row["num_shapes"] == blobs
    # the training loader accepts the files as they are
    data = load_sources(pair_sources(f"{shapes_dir}/train.jsonl:{shapes_dir}/val.jsonl", str(shapes_dir)), "seg")
    assert len(data) == 72


def test_answers_match_the_masks(shapes_dir):
    ious = []
    for row in _rows(shapes_dir / "train.jsonl"):
        answer = json.loads(row["conversations"][1]["value"].removeprefix("<answer>").removesuffix("</answer>"))
        assert all(isinstance(v, int) for v in answer["x"] + answer["y"])  # integer pixels by default
        truth = rle_to_mask(row["mask"])
        iou = mask_iou(ParametricContour.from_json_dict(answer, 8).to_mask(112, 112), truth)
        assert iou == pytest.approx(row["fit_iou"], abs=2e-3)
        ious.append(iou)
    assert min(ious) > 0.6 and np.mean(ious) > 0.8


def test_image_size_is_the_model_frame():
    # 112 = 4 * 28: Qwen2.5-VL's resize keeps the image as it is, so answers in image pixels are in its frame
    assert resized_input_size((112, 112), patch_size=14, merge_size=2, min_pixels=3136, max_pixels=12544) == (112, 112)


def test_phrases_are_unique_per_image(shapes_dir):
    by_image = defaultdict(list)
    for row in _rows(shapes_dir / "train.jsonl"):
        by_image[row["image"]].append(row["phrase"])
    assert any(len(p) > 1 for p in by_image.values())
    assert all(len(set(p)) == len(p) for p in by_image.values())

    rng = np.random.default_rng(0)
    for _ in range(60):
        _, shapes = make_scene(rng)
        phrases = [describe(shapes, i, rng) for i in range(len(shapes))]
        named = [p for p in phrases if p is not None]
        assert len(set(named)) == len(named)
        for shape, phrase in zip(shapes, phrases):
            assert phrase is None or (shape.color in phrase and shape.kind in phrase)


def test_describe_adds_words_only_when_needed():
    rng = np.random.default_rng(0)
    left = Shape("star", "red", render_shape("star", 20, 56, 26, 0.0, 1.0, 112))
    right = Shape("star", "red", render_shape("star", 95, 56, 12, 0.0, 1.0, 112))
    other = Shape("ellipse", "blue", render_shape("ellipse", 56, 95, 14, 0.0, 0.6, 112))
    phrases = {describe([left, right, other], i, rng) for i in range(3) for _ in range(20)}
    red = {p for p in phrases if "red" in p}
    assert all(("left" in p or "large" in p) != ("right" in p or "small" in p) for p in red)
    assert "the blue ellipse" in phrases or "the blue ellipse at the bottom" in phrases


def test_same_seed_same_files_other_seed_differs(tmp_path):
    a, b, c = (tmp_path / n for n in "abc")
    generate(str(a), 8, 2, seed=5, workers=1, progress=False)
    generate(str(b), 8, 2, seed=5, workers=1, progress=False)
    generate(str(c), 8, 2, seed=6, workers=1, progress=False)
    assert (a / "train.jsonl").read_bytes() == (b / "train.jsonl").read_bytes()
    assert (a / "val.jsonl").read_bytes() == (b / "val.jsonl").read_bytes()
    for image in (a / "images").iterdir():
        assert image.read_bytes() == (b / "images" / image.name).read_bytes()
    assert (a / "train.jsonl").read_bytes() != (c / "train.jsonl").read_bytes()


def _sees_all(mask: np.ndarray, point: np.ndarray, targets: np.ndarray) -> bool:
    """Whether every segment from ``point`` to a target pixel stays inside the mask (sampled every ~0.5 px)."""
    t = np.linspace(0.0, 1.0, 80)[:, None, None]
    pts = point + t * (targets - point)  # (80, K, 2) x, y
    xs, ys = np.clip(pts[..., 0].astype(int), 0, mask.shape[1] - 1), np.clip(pts[..., 1].astype(int), 0, mask.shape[0] - 1)
    return bool(mask[ys, xs].all())


def _star_shaped(mask: np.ndarray) -> bool:
    """Some mask pixel sees a sample of the whole mask (a kernel point exists, up to sampling)."""
    ys, xs = np.nonzero(mask)
    pixels = np.stack([xs, ys], axis=1) + 0.5
    targets = pixels[:: max(1, len(pixels) // 150)]
    return any(_sees_all(mask, p, targets) for p in pixels[:: max(1, len(pixels) // 200)])


def test_star_shaped_and_non_star_shaped_shapes_appear(shapes_dir):
    rows = _rows(shapes_dir / "train.jsonl") + _rows(shapes_dir / "val.jsonl")
    kinds = {r["category"] for r in rows}
    assert "crescent" in kinds and len(kinds & STAR_SHAPED_KINDS) >= 4
    for row in rows[:25]:
        assert _star_shaped(rle_to_mask(row["mask"])) == (row["category"] in STAR_SHAPED_KINDS), row["category"]


def test_scene_shapes_are_disjoint_and_coloured():
    rng = np.random.default_rng(1)
    for _ in range(20):
        image, shapes = make_scene(rng, 112, 1, 4)
        assert 1 <= len(shapes) <= 4
        total = sum(s.mask.astype(int) for s in shapes)
        assert total.max() == 1
        for s in shapes:
            assert (image[s.mask] == COLORS[s.color]).all()


def test_solo_images_hold_one_large_shape_and_background_is_fixed():
    rng = np.random.default_rng(2)
    for _ in range(10):
        image, shapes = make_scene(rng, 112, 1, 3, background=225, solo=1.0)
        assert len(shapes) == 1 and shapes[0].radius > 20
        assert (image[~shapes[0].mask] == 225).all()


def test_main_writes_both_splits(tmp_path, capsys):
    paths = main(["--output_dir", str(tmp_path), "--num_train", "5", "--num_val", "3", "--workers", "1",
                  "--compact", "--image_size", "168"])
    assert len(_rows(paths["train"])) == 5 and len(_rows(paths["val"])) == 3
    row = _rows(paths["train"])[0]
    assert row["mask"]["size"] == [168, 168] and ", " not in row["conversations"][1]["value"]
    assert "wrote" in capsys.readouterr().out
