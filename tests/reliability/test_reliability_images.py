"""Images: checks that decode (not just read headers) before any model loads, remembered by size and mtime; pixel
modes converted to the RGB the image shows; an image that breaks mid-run named with its file:line, and eval going on.
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlmr1.data.images import cache_path, image_problems, load_rgb
from vlmr1.data.loading import build_dataset, load_checked_data, load_sources, pair_sources
from vlmr1.data.schema import DataError
from vlmr1.eval import main as eval_main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RNG = np.random.default_rng(0)


def line(image: str, answer: str = "3") -> str:
    return json.dumps({"id": image, "image": image, "conversations": [
        {"from": "human", "value": "<image>How many?"}, {"from": "gpt", "value": answer}]})


@pytest.fixture
def folder(tmp_path):
    """Good PNG and JPEG, and the same files cut in half (their headers are intact)."""
    pixels = RNG.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "ok.png")
    Image.fromarray(pixels).save(tmp_path / "ok.jpg", quality=90)
    for name in ("ok.png", "ok.jpg"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / f"cut{Path(name).suffix}").write_bytes(data[: len(data) // 2])
    return tmp_path


def test_truncated_png_and_jpeg_stop_train_and_eval_data_with_file_and_line(folder):
    data = folder / "d.jsonl"
    data.write_text("\n".join([line("ok.png"), line("cut.png"), line("ok.jpg"), line("cut.jpg")]) + "\n")
    with pytest.raises(DataError) as err:  # the one path train and eval start from, before any model loads
        load_checked_data(str(data), str(folder))
    text = str(err.value)
    assert text.startswith(f"{data}:2: corrupt_image: ") and "cut.png: does not decode" in text
    assert f"{data}:4: corrupt_image: " in text and "cut.jpg: does not decode" in text
    assert "ok.png" not in text and "ok.jpg" not in text


def test_good_images_are_remembered_by_size_and_mtime(folder):
    good = str(folder / "ok.png")
    assert image_problems([good]) == {}
    assert os.path.abspath(good) in json.loads(cache_path().read_text())["files"]
    stat = os.stat(good)
    # Same size, same mtime, broken content: a file remembered as good is not decoded again ...
    broken = bytearray((folder / "ok.png").read_bytes())
    broken[len(broken) // 2:] = bytes(len(broken) - len(broken) // 2)
    (folder / "ok.png").write_bytes(bytes(broken))
    os.utime(good, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert image_problems([good]) == {}
    # ... a new mtime is a new file; and without the cache every file is decoded
    os.utime(good, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert image_problems([good])[good][0] == "corrupt_image"
    os.utime(good, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert image_problems([good], use_cache=False)[good][0] == "corrupt_image"
    assert image_problems([str(folder / "nope.png")])[str(folder / "nope.png")][0] == "missing_image"


def near_blend_on_white(got: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> bool:
    """``got`` is ``colour`` over white with ``alpha``, to Pillow's integer rounding (1 level)."""
    a = alpha[..., None].astype(np.float64) / 255
    want = colour.reshape(*alpha.shape, -1) * a + 255 * (1 - a)
    return np.abs(got.reshape(want.shape).astype(np.float64) - want).max() <= 1


def test_pixel_modes_convert_to_what_the_image_shows(tmp_path):
    # 16-bit grey: Pillow's own convert("RGB") clips it to white (99.6% white for this ramp)
    grey16 = np.linspace(0, 65535, 32 * 48).reshape(32, 48).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode == "I;16"
    got = np.asarray(load_rgb(str(tmp_path / "grey16.png")))
    assert got.shape == (32, 48, 3) and np.array_equal(got[..., 0], np.rint(grey16 / 257).astype(np.uint8))
    assert np.array_equal(got[..., 0], got[..., 2])

    rgb = RNG.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.tif")  # lossless: the round trip is exact
    assert np.array_equal(np.asarray(load_rgb(str(tmp_path / "cmyk.tif"))), rgb)

    palette = Image.fromarray(rgb).quantize(16)
    palette.save(tmp_path / "p.png")
    assert np.array_equal(np.asarray(load_rgb(str(tmp_path / "p.png"))), np.asarray(palette.convert("RGB")))
    palette.save(tmp_path / "p_transparent.png", transparency=0)  # palette entry 0 is see-through
    indices = np.asarray(palette)
    want = np.asarray(palette.convert("RGB")).copy()
    want[indices == 0] = 255
    assert np.array_equal(np.asarray(load_rgb(str(tmp_path / "p_transparent.png"))), want)

    grey, alpha = rgb[..., 0], rgb[..., 1]
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(tmp_path / "la.png")
    assert near_blend_on_white(np.asarray(load_rgb(str(tmp_path / "la.png")))[..., :1], grey, alpha)
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "rgba.png")
    assert near_blend_on_white(np.asarray(load_rgb(str(tmp_path / "rgba.png"))), rgb, alpha)
    assert not near_blend_on_white(np.asarray(Image.open(tmp_path / "rgba.png").convert("RGB")), rgb, alpha)


def test_an_image_broken_after_the_check_is_named_with_its_line(folder):
    data = folder / "d.jsonl"
    shutil.copy(folder / "ok.png", folder / "later.png")
    data.write_text(line("ok.png") + "\n" + line("later.png") + "\n")
    dataset = build_dataset(load_sources(pair_sources(str(data), str(folder))))  # checked: fine
    shutil.copy(folder / "cut.png", folder / "later.png")  # then broken while the run goes on
    assert dataset[0]["images"][0].size == (64, 48)
    with pytest.raises(DataError, match=rf"{data}:2: corrupt_image: image .*later\.png does not load"):
        dataset[1]  # what training's data loader does: the run stops with file:line (and resumes from a checkpoint)


def test_eval_scores_a_sample_whose_image_breaks_mid_run_as_wrong_and_goes_on(tiny_qwen25vl_dir, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(EXAMPLES / "images", images)
    rows = (EXAMPLES / "counting.jsonl").read_text().splitlines()[:3]
    data = tmp_path / "counting.jsonl"
    data.write_text("\n".join(rows) + "\n")
    broken = images / json.loads(rows[1])["image"]
    broken.write_bytes(broken.read_bytes()[:200])  # no pre-check: as if it broke after the check
    out = tmp_path / "out"
    metrics = eval_main(["--model", str(tiny_qwen25vl_dir), "--data_file_paths", str(data), "--image_folders",
                         str(images), "--output_dir", str(out), "--max_new_tokens", "4", "--batch_size", "2",
                         "--dtype", "float32", "--check_images", "false"])
    assert metrics[str(data)]["num_samples"] == 3 and metrics[str(data)]["num_image_errors"] == 1
    predictions = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["source"] for p in predictions] == [f"{data}:{n}" for n in (1, 2, 3)]
    assert "image_error" in predictions[1] and "does not load" in predictions[1]["image_error"]
    assert "image_error" not in predictions[0] and "image_error" not in predictions[2]


def test_an_eval_that_stops_half_way_keeps_what_it_generated(tiny_qwen25vl_dir, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(EXAMPLES / "images", images)
    Image.new("RGB", (600, 2), (200, 0, 0)).save(images / "thin.png")  # decodes, but Qwen's processor refuses it
    rows = [json.loads(x) for x in (EXAMPLES / "counting.jsonl").read_text().splitlines()[:4]]
    rows[2]["image"] = "thin.png"
    data = tmp_path / "counting.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="aspect ratio"):  # in the second batch: the first one is done
        eval_main(["--model", str(tiny_qwen25vl_dir), "--data_file_paths", str(data), "--image_folders", str(images),
                   "--output_dir", str(out), "--max_new_tokens", "4", "--batch_size", "2", "--dtype", "float32"])
    predictions = [json.loads(x) for x in (out / "predictions.partial.jsonl").read_text().splitlines()]
    assert [p["source"] for p in predictions] == [f"{data}:1", f"{data}:2"]
    assert all(isinstance(p["prediction"], str) and p["metrics"] for p in predictions)
    summary = json.loads((out / "metrics.partial.json").read_text())
    assert summary["complete"] is False and "aspect ratio" in summary["stopped_by"]
    assert summary["metrics"][str(data)]["num_samples"] == 2
    assert not (out / "predictions.jsonl").exists()  # never mistaken for a complete evaluation
