"""No silently wrong or empty data: one bad COCO annotation never stops the others, each is counted by kind with its
id, an RLE of another size than its image is refused, stuff categories of a panoptic-style file are left out, a run
that would write nothing leaves the existing file alone, and a null answer is not the text "null"."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_reliability_faults import SAMPLES  # CI lays shared/ beside the clone

from vlmr1.data import coco
from vlmr1.data.schema import DataError, parse_line
from vlmr1.errors import UserError
from vlmr1.geometry import ParametricContour, mask_to_rle, polygon_to_rle, rle_iou

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared COCO samples not available")


def lay_out(root: Path, annotations: list[dict], categories: list[dict]) -> Path:
    data = json.loads((SAMPLES / "val2017_instances_2img.json").read_text())
    (root / "val2017").mkdir(parents=True)
    for im in data["images"]:
        shutil.copy(SAMPLES / "images" / im["file_name"], root / "val2017" / im["file_name"])
    (root / "annotations").mkdir()
    path = root / "annotations" / "instances_val2017.json"
    path.write_text(json.dumps({"images": data["images"], "annotations": annotations, "categories": categories}))
    return path


def run(root, *extra):
    return coco.main(["--output_dir", str(root), "--no-download", "--splits", "val", "--quiet", "--workers", "1",
                      "--fit", "fast", *extra])


@pytest.fixture(scope="module")
def sample():
    """The sample's non-crowd thing annotations (ids 1-90), and its panoptic-style category list (no isthing)."""
    data = json.loads((SAMPLES / "val2017_instances_2img.json").read_text())
    things = [a for a in data["annotations"] if a["category_id"] <= 90 and not a["iscrowd"]]
    return things, data["categories"], data["images"]


def test_one_bad_annotation_never_stops_the_others(tmp_path, sample, capsys):
    things, categories, images = sample
    good = things[:4]
    height, width = images[0]["height"], images[0]["width"]
    small = mask_to_rle(np.ones((10, 10)))  # a valid RLE, of a 10 x 10 image
    stuff = next(c for c in categories if c["id"] > 90)
    bad = [
        {**things[4], "id": 901, "bbox": None},
        {k: v for k, v in things[5].items() if k != "segmentation"} | {"id": 902},
        {**things[6], "id": 903, "segmentation": [[1, 2, "x", 4, 5, 6]]},
        {**things[7], "id": 904, "segmentation": {"size": [height, width], "counts": "not an RLE ~~~"}},
        {**things[8], "id": 905, "image_id": images[0]["id"], "segmentation": small},
        {**things[9], "id": 906, "category_id": stuff["id"]},
        {"segmentation": [], "note": "no id at all"},
    ]
    lay_out(tmp_path, good + bad, categories)
    stats = run(tmp_path)["val"]
    rows = [json.loads(x) for x in (tmp_path / "val.jsonl").read_text().splitlines()]
    assert [r["ann_id"] for r in rows] == [a["id"] for a in good]
    assert stats["failed"] == {"bad_bbox": [1, [901]], "no_segmentation": [1, [902]], "bad_polygon": [1, [903]],
                               "bad_rle": [1, [904]], "size_mismatch": [1, [905]]}
    assert stats["skipped"]["not_thing"] == 1 and stats["skipped"]["bad_annotation"] == 1
    printed = capsys.readouterr().out
    assert "size_mismatch 1 (id 905)" in printed and "bad_rle 1 (id 904)" in printed
    for row in rows:  # fit_iou is the IoU of the written answer with the written mask
        h, w = row["mask"]["size"]
        answer = json.loads(row["conversations"][1]["value"][len("<answer>"):-len("</answer>")])
        polygon = ParametricContour.from_json_dict(answer, 8).to_polygon(256)
        assert [h, w] == [next(i for i in images if i["id"] == row["image_id"])[k] for k in ("height", "width")]
        assert row["fit_iou"] == pytest.approx(rle_iou(polygon_to_rle(polygon, h, w), row["mask"]), abs=1e-4)


def test_nothing_is_written_over_a_good_file(tmp_path, sample):
    things, categories, _ = sample
    lay_out(tmp_path, things[:3], categories)
    run(tmp_path)
    good = (tmp_path / "val.jsonl").read_bytes()
    assert good.count(b"\n") == 3
    for flags, error in ((["--terms", "0"], "--terms: must be in \\[2, 64\\], got 0"),
                         (["--decimals", "-3"], "--decimals: must be in \\[0, 6\\], got -3")):
        with pytest.raises(UserError, match=error):
            run(tmp_path, *flags)
        assert (tmp_path / "val.jsonl").read_bytes() == good
    # every annotation broken (here: of another image size), then only stuff: the good file stays
    broken = [{**a, "segmentation": mask_to_rle(np.ones((10, 10)))} for a in things[:3]]
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(
        {"images": sample[2], "annotations": broken, "categories": categories}))
    with pytest.raises(UserError, match=r"val.jsonl: nothing_converted: none of 3 annotation\(s\).*size_mismatch 3"):
        run(tmp_path)
    assert (tmp_path / "val.jsonl").read_bytes() == good
    stuff_only = [{**a, "category_id": next(c["id"] for c in categories if c["id"] > 90)} for a in things[:3]]
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(
        {"images": sample[2], "annotations": stuff_only, "categories": categories}))
    with pytest.raises(UserError, match="nothing_converted: no annotation to convert.*'not_thing': 3"):
        run(tmp_path)
    assert (tmp_path / "val.jsonl").read_bytes() == good


def test_a_null_answer_is_an_error_not_the_text_null(tmp_path):
    line = {"id": 1, "conversations": [{"from": "human", "value": "How many?"}, {"from": "gpt", "value": None}]}
    with pytest.raises(DataError, match=r"d.jsonl:7: empty_answer: conversations\[1\].value is null"):
        parse_line(json.dumps(line), "d.jsonl", 7)
    line["conversations"][1]["value"] = 3  # a number is still its text, as VLM-R1 read it
    assert parse_line(json.dumps(line), "d.jsonl", 7).solution == "3"
