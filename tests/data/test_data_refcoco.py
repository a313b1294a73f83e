"""``vlmr1 data refcoco``: REFER refs + instances.json -> one jsonl per split, safe unpickling, atomic writes."""

import json
import os
import pickle

import pytest
from PIL import Image

from vlmr1.data.loading import SourceFile, load_sources
from vlmr1.data.refcoco import load_refs, main
from vlmr1.errors import UserError

INSTANCES = {
    "images": [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg", "width": 64, "height": 48},
               {"id": 2, "file_name": "COCO_train2014_000000000002.jpg", "width": 32, "height": 32}],
    "annotations": [{"id": 10, "image_id": 1, "bbox": [4.5, 6, 20, 10.25], "category_id": 1},
                    {"id": 11, "image_id": 2, "bbox": [0, 0, 32, 16], "category_id": 1}],
}
REFS = [
    {"ref_id": 0, "image_id": 1, "ann_id": 10, "split": "train", "sent_ids": [0, 1],
     "sentences": [{"sent": "man on the left", "sent_id": 0}, {"sent": "guy in red", "sent_id": 1}]},
    {"ref_id": 1, "image_id": 2, "ann_id": 11, "split": "testA", "sentences": [{"sent": "top half", "sent_id": 2},
                                                                              {"sent": "  ", "sent_id": 3}]},
    {"ref_id": 2, "image_id": 1, "ann_id": 10, "split": "val", "sentences": [{"raw": "Man, left.", "sent_id": 4}]},
]


def make_refer(folder, refs=REFS, name="refs(unc).p", protocol=pickle.HIGHEST_PROTOCOL):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(pickle.dumps(refs, protocol=protocol))
    (folder / "instances.json").write_text(json.dumps(INSTANCES))
    return folder


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_one_file_per_split_one_line_per_sentence(tmp_path):
    refs = make_refer(tmp_path / "refcoco")
    out = tmp_path / "out"
    written = main(["--refs", str(refs), "--images", str(tmp_path / "train2014"), "--output_dir", str(out)])
    assert sorted(os.path.basename(p) for p in written) == ["refcoco_testA.jsonl", "refcoco_train.jsonl",
                                                            "refcoco_val.jsonl"]
    train = read(out / "refcoco_train.jsonl")
    assert len(train) == 2
    # COCO xywh [4.5, 6, 20, 10.25] -> xyxy [4.5, 6, 24.5, 16.25]
    assert train[0] == {
        "id": "refcoco-0-0", "image": "COCO_train2014_000000000001.jpg",
        "conversations": [{"from": "human", "value": "<image>man on the left"},
                          {"from": "gpt", "value": "[4.5, 6.0, 24.5, 16.25]"}],
        "bbox": [4.5, 6.0, 24.5, 16.25], "image_id": 1, "ref_id": 0}
    assert train[1]["conversations"][0]["value"] == "<image>guy in red" and train[1]["id"] == "refcoco-0-1"
    assert [r["bbox"] for r in read(out / "refcoco_testA.jsonl")] == [[0.0, 0.0, 32.0, 16.0]]  # blank sentence skipped
    assert read(out / "refcoco_val.jsonl")[0]["conversations"][0]["value"] == "<image>Man, left."
    assert written[str(out / "refcoco_train.jsonl")] == 2
    assert not [p for p in os.listdir(out) if p.startswith(".")]  # no temp files left behind


def test_output_loads_with_the_data_layer(tmp_path):
    refs = make_refer(tmp_path / "refs")
    images = tmp_path / "train2014"
    images.mkdir()
    for img in INSTANCES["images"]:
        Image.new("RGB", (img["width"], img["height"])).save(images / img["file_name"], format="JPEG")
    main(["--refs", str(refs), "--images", str(images), "--output_dir", str(tmp_path / "out")])
    data = load_sources([SourceFile(str(tmp_path / "out" / "refcoco_train.jsonl"), str(images))], task_type="rec")
    assert len(data) == 2 and "bbox" in data.extra_keys
    assert data.rows["solution"][0] == "[4.5, 6.0, 24.5, 16.25]"


def test_parent_folder_datasets_and_split_by(tmp_path):
    make_refer(tmp_path / "data" / "refcoco+")
    make_refer(tmp_path / "data" / "refcocog", name="refs(umd).p")
    make_refer(tmp_path / "data" / "refcocog", name="refs(google).p")
    args = ["--refs", str(tmp_path / "data"), "--images", str(tmp_path), "--output_dir", str(tmp_path / "out")]
    main(args + ["--dataset", "refcoco+"])
    main(args + ["--dataset", "refcocog"])
    main(args + ["--dataset", "refcocog", "--split_by", "google"])
    names = sorted(os.listdir(tmp_path / "out"))
    assert "refcocop_train.jsonl" in names and "refcocog_val.jsonl" in names and "refcocog_google_val.jsonl" in names
    assert read(tmp_path / "out" / "refcocop_train.jsonl")[0]["id"] == "refcocop-0-0"
    with pytest.raises(UserError, match=r"bad_refer_data: no refs\(unc\)\.p"):
        main(args + ["--dataset", "refcoco"])


def test_python2_style_pickle_with_sets_loads(tmp_path):
    refs = [dict(REFS[0], extra={1, 2})]
    path = make_refer(tmp_path, refs=refs, protocol=2) / "refs(unc).p"
    assert b"__builtin__" in path.read_bytes()  # protocol 2 names the set type the Python 2 way
    assert load_refs(str(path))[0]["extra"] == {1, 2}


class _Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):  # unpickling would call open(target, "w"), creating the file
        return open, (self.target, "w")


def test_malicious_pickle_is_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([{"ref_id": 0, "x": _Exploit(str(marker))}]))
    with pytest.raises(ValueError, match=r"refusing to load io\.open"):
        load_refs(str(path))
    assert not marker.exists()
    path.write_bytes(pickle.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="list of refs"):
        load_refs(str(path))


def test_refs_pointing_outside_instances_fail_clearly(tmp_path):
    refs = make_refer(tmp_path / "r", refs=[dict(REFS[0], ann_id=999)])
    with pytest.raises(ValueError, match="ann_id 999"):
        main(["--refs", str(refs), "--images", str(tmp_path), "--output_dir", str(tmp_path / "out")])
