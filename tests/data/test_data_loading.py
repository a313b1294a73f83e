"""The seed's jsonl format: parsing, pairing files with folders, lazy images, and errors naming file:line."""

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from vlmr1.data import loading
from vlmr1.data.loading import build_dataset, load_sources, pair_sources, split_validation
from vlmr1.data.schema import DataError, parse_line, to_chat_messages

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def row(image="a.png", question="<image>How many?", answer="3", **extra):
    out = {"id": 1, "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]}
    if image is not None:
        out["image"] = image
    out.update(extra)
    return out


@pytest.fixture
def image_dir(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, size in [("a.png", (40, 30)), ("b.png", (20, 50))]:
        Image.new("RGB", size, (200, 10, 10)).save(folder / name)
    return folder


def test_single_multi_and_text_only_rows_with_extra_fields(tmp_path, image_dir):
    data = write_jsonl(tmp_path / "d.jsonl", [
        row(bbox=[1, 2, 3, 4]),
        row(image=["a.png", "b.png"], question="Compare <image> with <image>.", accu_reward_method="mcq"),
        row(image=None, question="What is 2+2?", answer="4", note="text only"),
    ])
    loaded = load_sources(pair_sources(str(data), str(image_dir), "numeric"), task_type="default")
    ds = build_dataset(loaded, lambda q: q + " THINK")
    assert len(ds) == 3
    first, second, third = ds[0], ds[1], ds[2]
    assert first["prompt"] == [{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": "How many? THINK"}]}]
    assert [im.size for im in first["images"]] == [(40, 30)] and first["original_sizes"] == [[40, 30]]
    # images go where the <image> placeholders were, in order
    assert [c["type"] for c in second["prompt"][0]["content"]] == ["text", "image", "text", "image", "text"]
    assert second["original_sizes"] == [[40, 30], [20, 50]]
    assert third["images"] == [] and third["prompt"][0]["content"] == [{"type": "text", "text": "What is 2+2? THINK"}]
    # per-line method wins over the file's --reward_method; extra fields pass through, None where absent
    assert [r["accu_reward_method"] for r in (first, second, third)] == ["numeric", "mcq", "numeric"]
    assert first["bbox"] == [1, 2, 3, 4] and third["bbox"] is None and third["note"] == "text only"
    assert first["solution"] == "3" and first["task_type"] == "default" and first["source"].endswith("d.jsonl:1")


def test_two_files_two_folders(tmp_path, image_dir):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(image_dir / "b.png", other / "c.png")
    f1 = write_jsonl(tmp_path / "one.jsonl", [row()])
    f2 = write_jsonl(tmp_path / "two.jsonl", [row(image="c.png"), row(image="c.png")])
    loaded = load_sources(pair_sources(f"{f1}:{f2}", f"{image_dir}:{other}"))
    assert loaded.rows["images"] == [[str(image_dir / "a.png")], [str(other / "c.png")], [str(other / "c.png")]]


def test_images_are_decoded_lazily(tmp_path, image_dir, monkeypatch):
    decoded = []
    real = loading.load_image.__wrapped__
    monkeypatch.setattr(loading, "load_image", lambda p: decoded.append(p) or real(p))
    data = write_jsonl(tmp_path / "big.jsonl", [row() for _ in range(5000)])
    ds = build_dataset(load_sources(pair_sources(str(data), str(image_dir))))
    assert decoded == []
    ds[17]
    assert decoded == [str(image_dir / "a.png")]


def test_validation_split_keeps_lazy_rows(tmp_path, image_dir):
    data = write_jsonl(tmp_path / "d.jsonl", [row(answer=str(i)) for i in range(20)])
    ds = build_dataset(load_sources(pair_sources(str(data), str(image_dir))))
    train, val = split_validation(ds, 0.25, seed=0)
    assert (len(train), len(val)) == (15, 5)
    assert isinstance(val[0]["images"][0], Image.Image)
    assert not {r["solution"] for r in train} & {r["solution"] for r in val}
    assert split_validation(ds, 0.0, seed=0) == (ds, None)


@pytest.mark.parametrize("bad, message", [
    ('{"id": 1, "image": "a.png", "conversations": [', "not valid JSON"),
    (json.dumps({"id": 1, "image": "a.png"}), "missing or empty 'conversations'"),
    (json.dumps(row(image=["a.png", "b.png"])), "1 '<image>' placeholder(s) in the question but 2 image(s)"),
    (json.dumps(row(image=["a.png", "b.png", "a.png"], question="<image><image>?")),
     "2 '<image>' placeholder(s) in the question but 3 image(s)"),
    (json.dumps(row(answer="  ")), "the 'gpt' answer is empty"),
    (json.dumps({"conversations": [{"from": "gpt", "value": "x"}]}), "needs a 'human' turn"),
    (json.dumps({"conversations": [{"from": "robot", "value": "x"}, {"from": "gpt", "value": "y"}]}), "robot"),
    ("[1, 2]", "must be a JSON object"),
])
def test_bad_lines_name_file_and_line(tmp_path, image_dir, bad, message):
    data = write_jsonl(tmp_path / "d.jsonl", [row(), "", bad])
    with pytest.raises(DataError) as err:
        load_sources(pair_sources(str(data), str(image_dir)))
    assert f"{data}:3" in str(err.value) and message in str(err.value) and "fix:" in str(err.value)


def test_missing_and_corrupt_images_are_reported_with_line(tmp_path, image_dir):
    (image_dir / "broken.jpg").write_bytes(b"not an image at all")
    data = write_jsonl(tmp_path / "d.jsonl", [row(), row(image="missing.png"), row(image="broken.jpg")])
    with pytest.raises(DataError) as err:
        load_sources(pair_sources(str(data), str(image_dir)))
    text = str(err.value)
    assert f"{data}:2" in text and "missing.png: image file not found" in text
    assert f"{data}:3: corrupt_image: " in text and "broken.jpg: does not decode" in text
    assert "--image_folders" in text


def test_json_array_file_explains_conversion(tmp_path, image_dir):
    data = tmp_path / "d.json"
    data.write_text(json.dumps([row(), row()], indent=1))
    with pytest.raises(DataError, match="JSON array") as err:
        load_sources(pair_sources(str(data), str(image_dir)))
    assert f"{data}:1" in str(err.value) and "d.jsonl" in str(err.value)


def test_list_counts_must_match(tmp_path):
    with pytest.raises(DataError, match="2 data files but 3 image folders"):
        pair_sources("a.jsonl:b.jsonl", "x:y:z")
    with pytest.raises(DataError, match="3 data files but 2 reward methods"):
        pair_sources("a:b:c", "x", "mcq:math")
    assert [s.image_folder for s in pair_sources("a:b", "x")] == ["x", "x"]


def test_unknown_accuracy_method_is_rejected_up_front(tmp_path, image_dir):
    def validate(name):
        if name not in {"default", "mcq"}:
            raise ValueError(f"unknown accuracy method {name!r}")

    data = write_jsonl(tmp_path / "d.jsonl", [row(), row(accu_reward_method="fuzzy")])
    with pytest.raises(DataError, match="fuzzy") as err:
        load_sources(pair_sources(str(data), str(image_dir)), validate_method=validate)
    assert f"{data}:2" in str(err.value)


def test_lines_without_placeholders_get_their_images_first(tmp_path, image_dir):
    # VLM-R1's GUI file writes no <image>: both images go before the question, in order
    data = write_jsonl(tmp_path / "d.jsonl", [row(image=["a.png", "b.png"], question="Any defect?")])
    first = build_dataset(load_sources(pair_sources(str(data), str(image_dir))))[0]
    assert [c["type"] for c in first["prompt"][0]["content"]] == ["image", "image", "text"]
    assert first["original_sizes"] == [[40, 30], [20, 50]]


def test_to_chat_messages_and_structured_answers():
    sample = parse_line(json.dumps(row(answer={"x": [1, 2]})), "f.jsonl", 1)
    assert sample.solution == '{"x": [1, 2]}'
    assert to_chat_messages([("user", "<image>hi")]) == [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]


def test_bundled_examples_load():
    names = ["counting", "multi_image", "text_only"]
    files = ":".join(str(EXAMPLES / f"{n}.jsonl") for n in names)
    loaded = load_sources(pair_sources(files, str(EXAMPLES / "images")))
    assert len(loaded) == 32
