"""``vlmr1 data coco`` end to end on the two shared real COCO images: fields, fit quality, resume, refs, zips."""

import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from vlmr1.data import coco
from vlmr1.data.loading import SourceFile, load_sources
from vlmr1.errors import UserError
from vlmr1.geometry import ParametricContour, RadialContour, rle_area, rle_to_mask
from vlmr1.tasks.seg import seg_score

# CI lays shared/ beside the clone; developers' machines have it at /work/shared.
SAMPLES = next((p for p in (Path(__file__).resolve().parents[3] / "shared/data/coco-samples", Path("/work/shared/data/coco-samples"))
                if p.is_dir()), Path("/work/shared/data/coco-samples"))
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared COCO samples not available")


def lay_out(root: Path, split="val", year="2017", prefix="") -> dict:
    """A tiny COCO tree: {split}{year}/ with the two images, annotations/instances_{split}{year}.json (things only)."""
    data = json.loads((SAMPLES / "val2017_instances_2img.json").read_text())
    data["categories"] = [c for c in data["categories"] if c["id"] <= 90]  # an instances file lists things only
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] <= 90]
    (root / f"{split}{year}").mkdir(parents=True, exist_ok=True)
    for im in data["images"]:
        target = f"{prefix}{im['file_name']}"
        shutil.copy(SAMPLES / "images" / im["file_name"], root / f"{split}{year}" / target)
        im["file_name"] = target
    (root / "annotations").mkdir(exist_ok=True)
    (root / "annotations" / f"instances_{split}{year}.json").write_text(json.dumps(data))
    return data


def run(root, *extra):
    return coco.main(["--output_dir", str(root), "--no-download", "--year", "2017", "--splits", "val",
                      "--quiet", *extra])


def read(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    data = lay_out(root)
    stats = run(root, "--workers", "1", "--chunk_size", "8")
    return root, data, stats


def test_every_non_crowd_instance_becomes_a_line(converted):
    root, data, stats = converted
    rows = read(root / "val.jsonl")
    want = [a for a in data["annotations"] if not a["iscrowd"]]
    assert len(want) < len(data["annotations"])  # the sample has crowd regions, which are skipped
    assert [r["ann_id"] for r in rows] == [a["id"] for a in want]
    assert stats["val"]["skipped"]["crowd"] == len(data["annotations"]) - len(want)
    sizes = {im["id"]: (im["height"], im["width"]) for im in data["images"]}
    names = {c["id"]: c["name"] for c in data["categories"]}
    for row, ann in zip(rows, want):
        assert row["image"].startswith("val2017/") and (root / row["image"]).is_file()
        human, gpt = row["conversations"]
        assert human["from"] == "human" and human["value"] == f"<image>Outline the {names[ann['category_id']]}."
        assert gpt["value"].startswith("<answer>") and gpt["value"].endswith("</answer>")
        answer = json.loads(gpt["value"][len("<answer>") : -len("</answer>")])
        contour = ParametricContour.from_json_dict(answer, 8)
        assert all(abs(v * 10 - round(v * 10)) < 1e-6 for v in [*contour.x, *contour.y])  # 0.1 px rounding
        assert row["category"] == names[ann["category_id"]]
        assert tuple(row["mask"]["size"]) == sizes[ann["image_id"]] and isinstance(row["mask"]["counts"], str)
        assert rle_area(row["mask"]) == rle_area(ann["segmentation"])
        x, y, w, h = ann["bbox"]
        assert row["bbox"] == pytest.approx([x, y, x + w, y + h], abs=0.01)  # xyxy, original pixels
        # fit_iou is what the reward gives the written answer
        iou = seg_score(gpt["value"], {"mask": row["mask"], "solution": gpt["value"]}).iou
        assert row["fit_iou"] == pytest.approx(iou, abs=2e-4)


def test_fit_quality_on_real_masks(converted):
    root, _, stats = converted
    ious = np.array([r["fit_iou"] for r in read(root / "val.jsonl")])
    assert ious.mean() > 0.75 and np.median(ious) > 0.8  # refined 8-term fit on real COCO shapes
    assert stats["val"]["mean_fit_iou"] == pytest.approx(ious.mean(), abs=1e-3)


def test_output_loads_as_training_data(converted):
    root, _, _ = converted
    data = load_sources([SourceFile(str(root / "val.jsonl"), str(root))])
    assert len(data) == len(read(root / "val.jsonl"))
    assert {"mask", "bbox", "category", "fit_iou"} <= set(data.extra_keys)


def test_draw_makes_one_png_per_line(converted, tmp_path):
    from PIL import Image

    from vlmr1.viz.draw import main as draw_main

    root, _, _ = converted
    written = draw_main([str(root / "val.jsonl"), "--image-root", str(root), "--output", str(tmp_path / "vis"),
                         "--limit", "3"])
    assert len(written) == 3 and all(p.suffix == ".png" for p in written)
    with Image.open(written[0]) as im:
        assert im.width == 640 and im.height > 427  # the image plus its caption strip


def test_rerun_is_a_no_op_and_settings_changes_reconvert(converted, capsys):
    root, _, _ = converted
    before = (root / "val.jsonl").read_bytes()
    stats = run(root, "--workers", "1", "--chunk_size", "8")
    assert stats["val"].get("up_to_date") and (root / "val.jsonl").read_bytes() == before
    assert "up to date" in capsys.readouterr().out
    assert not list((root / ".parts" / "val").glob("*/*.jsonl"))  # parts are removed once the file is whole


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(converted, tmp_path, monkeypatch):
    root, _, _ = converted
    reference = (root / "val.jsonl").read_bytes()
    other = tmp_path / "other"
    lay_out(other)
    real, calls = coco.convert_chunk, []

    def dies_on_third_chunk(job):
        calls.append(job[2])
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if the run were killed here
        return real(job)

    monkeypatch.setattr(coco, "convert_chunk", dies_on_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        run(other, "--workers", "1", "--chunk_size", "8")
    assert not (other / "val.jsonl").exists()  # never a truncated output
    assert len(list((other / ".parts" / "val").glob("*/*.jsonl"))) == 2
    calls.clear()
    monkeypatch.setattr(coco, "convert_chunk", lambda job: (calls.append(job[2]), real(job))[1])
    stats = run(other, "--workers", "1", "--chunk_size", "8")
    assert (other / "val.jsonl").read_bytes() == reference
    assert stats["val"]["resumed_chunks"] == 2 and len(calls) == stats["val"]["chunks"] - 2


def test_parallel_workers_give_the_same_bytes(converted, tmp_path):
    root, _, _ = converted
    lay_out(tmp_path)
    run(tmp_path, "--workers", "2", "--chunk_size", "8")
    assert (tmp_path / "val.jsonl").read_bytes() == (root / "val.jsonl").read_bytes()


def test_chunk_size_does_not_change_the_lines(converted, tmp_path):
    # each chunk's masks are fitted as one batch: a mask's answer must not depend on its batch-mates
    root, _, _ = converted
    lay_out(tmp_path)
    run(tmp_path, "--workers", "1", "--chunk_size", "500")
    assert (tmp_path / "val.jsonl").read_bytes() == (root / "val.jsonl").read_bytes()


def test_radial_fast(tmp_path):
    lay_out(tmp_path)
    stats = run(tmp_path, "--workers", "1", "--representation", "radial", "--fit", "fast")
    rows = read(tmp_path / "val.jsonl")
    answer = json.loads(rows[0]["conversations"][1]["value"][len("<answer>") : -len("</answer>")])
    assert set(answer) == {"centre", "coeffs"} and RadialContour.from_json_dict(answer, 8)
    assert stats["val"]["mean_fit_iou"] > 0.6


def test_zips_in_the_folder_are_extracted_without_download(tmp_path):
    staging = tmp_path / "staging"
    lay_out(staging)
    root = tmp_path / "data"
    root.mkdir()
    with zipfile.ZipFile(root / "val2017.zip", "w") as z:
        for p in sorted((staging / "val2017").iterdir()):
            z.write(p, f"val2017/{p.name}")
    with zipfile.ZipFile(root / "annotations_trainval2017.zip", "w") as z:
        z.write(staging / "annotations" / "instances_val2017.json", "annotations/instances_val2017.json")
    run(root, "--workers", "1", "--fit", "fast")
    assert (root / "val2017").is_dir() and len(read(root / "val.jsonl")) > 30


def test_missing_inputs_name_the_path_and_the_fix(tmp_path):
    with pytest.raises(UserError, match="annotations_trainval2017.zip: missing_file: not found.*--no-download"):
        run(tmp_path)
    lay_out(tmp_path)
    (tmp_path / "val2017" / "000000142238.jpg").unlink()
    with pytest.raises(UserError, match="missing_image: 1 image.* missing under"):
        run(tmp_path)


def write_refs(root: Path, data: dict) -> list[dict]:
    """A refer-style refs(unc).p: one ref per thing annotation of the first image, split by position."""
    anns = [a for a in data["annotations"] if not a["iscrowd"] and a["image_id"] == data["images"][0]["id"]]
    splits = ["train", "testA", "val"]
    refs = [{"ref_id": k, "ann_id": a["id"], "image_id": a["image_id"], "split": splits[k % 3],
             "category_id": a["category_id"], "sentences": [{"sent": f"object number {k}", "sent_id": 2 * k},
                                                            {"sent": f"thing {k}", "sent_id": 2 * k + 1}]}
            for k, a in enumerate(anns[:3])]
    (root / "refcoco").mkdir()
    (root / "refcoco" / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    return refs


def test_refs_give_expressions_and_warn_about_eval_images_in_train(tmp_path, capsys):
    data = lay_out(tmp_path, "train", "2014", prefix="COCO_train2014_")
    refs = write_refs(tmp_path, data)
    argv = ["--output_dir", str(tmp_path), "--no-download", "--year", "2014", "--splits", "train", "--quiet",
            "--workers", "1", "--fit", "fast", "--refs", "refcoco"]
    coco.main(argv)
    rows = read(tmp_path / "train.jsonl")
    assert "WARNING: 1 train2014 images" in capsys.readouterr().err
    referred = [r for r in rows if "ref_id" in r]
    assert len(referred) == 2 * len(refs)  # one line per expression
    assert referred[0]["conversations"][0]["value"] == '<image>Outline the object described as "object number 0".'
    assert {r["ref_split"] for r in referred} == {"train", "testA", "val"}
    assert rows[0]["image"].startswith("train2014/COCO_train2014_")

    coco.main([*argv, "--refs_only"])
    assert len(read(tmp_path / "train.jsonl")) == 2 * len(refs)
    capsys.readouterr()
    coco.main([*argv, "--exclude_ref_eval_images"])
    kept = read(tmp_path / "train.jsonl")
    assert kept and refs[0]["image_id"] not in {r["image_id"] for r in kept}
    assert "WARNING" not in capsys.readouterr().err


def test_refs_pickle_with_code_is_refused(tmp_path):
    (tmp_path / "evil.p").write_bytes(pickle.dumps([{"ann_id": 1, "x": np.float64(1.0)}]))  # needs a class
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        coco.load_refs(tmp_path / "evil.p")
    (tmp_path / "wrong.p").write_bytes(pickle.dumps({"not": "refs"}))
    with pytest.raises(ValueError, match="refs"):
        coco.load_refs(tmp_path / "wrong.p")


def test_polygon_and_uncompressed_segmentations():
    square = coco.annotation_rle([[10, 10, 30, 10, 30, 30, 10, 30]], 50, 60)
    assert rle_to_mask(square).shape == (50, 60) and 380 <= rle_area(square) <= 420
    two = coco.annotation_rle([[0, 0, 10, 0, 10, 10, 0, 10], [20, 20, 30, 20, 30, 30, 20, 30]], 50, 60)
    assert rle_area(two) == pytest.approx(2 * rle_area(coco.annotation_rle([[0, 0, 10, 0, 10, 10, 0, 10]], 50, 60)))
    raw = coco.annotation_rle({"size": [4, 5], "counts": [3, 2, 15]}, 4, 5)
    assert rle_area(raw) == 2
    with pytest.raises(ValueError):
        coco.annotation_rle([[1, 2]], 10, 10)
