"""``vlmr1 data check``: every problem of a jsonl file is listed with file:line, then a summary; exit status 1."""

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from vlmr1.data.check import check_sources, main
from vlmr1.data.images import decode_problem
from vlmr1.data.loading import SourceFile, read_samples
from vlmr1.data.schema import DataError
from vlmr1.geometry import fit_contour, mask_to_rle


def line(answer="[10, 10, 40, 40]", image="ok.png", question="<image>the red square", **extra):
    row = {"id": extra.pop("id", 0), "conversations": [{"from": "human", "value": question},
                                                       {"from": "gpt", "value": answer}]}
    if image is not None:
        row["image"] = image
    row.update(extra)
    return json.dumps(row)


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / "ok.png")
    data = (folder / "ok.png").read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])  # the header is intact: only a decode notices
    (folder / "text.png").write_text("not an image")
    return folder


def run(capsys, *argv):
    """Run the command; returns (exit status, stdout lines)."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as e:
        status = e.code
    return status, capsys.readouterr().out.splitlines()


def test_one_of_each_problem_is_listed_with_file_and_line(tmp_path, images, capsys):
    rows = [
        line(id=1),                                                          # 1: fine
        '{"id": 2, "image": "ok.png", "conversations": [',                   # 2: bad_json
        line(question="<image><image>two placeholders, one image"),          # 3: image_count
        line(answer="   "),                                                  # 4: empty_answer
        line(answer="<answer> </answer>"),                                   # 5: empty_answer (inside the tags)
        line(image="nowhere.png"),                                           # 6: missing_image
        line(image="truncated.png"),                                         # 7: corrupt_image (decode fails)
        line(image="text.png"),                                              # 8: corrupt_image (no header)
        line(answer="the dog on the left"),                                  # 9: unparsable_answer (rec: no box)
        line(accu_reward_method="fuzzy"),                                    # 10: unknown_method
        line(bbox=[50, 50, 10, 10]),                                         # 11: bad_field (swapped corners)
        json.dumps({"id": 12, "image": "ok.png"}),                           # 12: bad_line (no conversations)
        "",                                                                  # 13: blank lines are skipped
        line(id=14),                                                         # 14: fine
    ]
    data = tmp_path / "rec.jsonl"
    data.write_bytes(("\n".join(rows) + "\n").encode() + b'{"id": 15, "bad byte": "\xff"}\n')  # 15: not UTF-8
    status, out = run(capsys, "--data_file_paths", data, "--image_folders", images, "--task_type", "rec")
    assert status == 1
    problems = [o for o in out if o.startswith(str(data))]
    expected = [(2, "bad_json"), (3, "image_count"), (4, "empty_answer"), (5, "empty_answer"), (6, "missing_image"),
                (7, "corrupt_image"), (8, "corrupt_image"), (9, "unparsable_answer"), (10, "unknown_method"),
                (11, "bad_field"), (12, "bad_line"), (15, "bad_json")]
    assert [(int(p.split(":")[1]), p.split(": ")[1]) for p in problems] == expected
    assert "nowhere.png" in problems[4] and "fix:" in problems[1]  # the path, and the schema's fix hint
    summary = out[len(problems):]
    assert summary[0].startswith("checked 14 line(s) in 1 file(s) and 4 image(s) for task 'rec': 12 problem(s)")
    counts = dict(row.split() for row in summary[1:])
    assert counts == {"bad_json": "2", "image_count": "1", "empty_answer": "2", "missing_image": "1",
                      "corrupt_image": "2", "unparsable_answer": "1", "unknown_method": "1", "bad_field": "1",
                      "bad_line": "1"}


def test_clean_data_passes_with_status_zero(tmp_path, images, capsys):
    data = tmp_path / "ok.jsonl"
    data.write_text("\n".join(line(id=i) for i in range(3)) + "\n")
    status, out = run(capsys, "--data_file_paths", data, "--image_folders", images, "--task_type", "rec")
    assert status == 0 and out == ["checked 3 line(s) in 1 file(s) and 1 image(s) for task 'rec': no problems found"]


def test_every_bad_line_is_reported_not_just_the_first_twenty(tmp_path, images):
    data = tmp_path / "many.jsonl"
    data.write_text("\n".join(["{broken"] * 30 + [line()]) + "\n")
    report = check_sources([SourceFile(str(data), str(images))], "rec")
    assert [p.line for p in report.problems] == list(range(1, 31)) and report.lines == 31
    with pytest.raises(DataError, match="20 bad line"):  # training itself still stops at 20
        read_samples(SourceFile(str(data), str(images)))


def test_file_level_problems(tmp_path, images, capsys):
    array = tmp_path / "array.jsonl"
    array.write_text(json.dumps([json.loads(line())]))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    files = ":".join(str(p) for p in (array, empty, tmp_path / "missing.jsonl"))
    status, out = run(capsys, "--data_file_paths", files, "--image_folders", images)
    assert status == 1
    assert [o.split(": ")[1] for o in out[:3]] == ["bad_file"] * 3
    assert "JSON array" in out[0] and "no samples" in out[1] and "not found" in out[2]
    assert out[0].startswith(f"{array}:1:") and out[2].startswith(f"{tmp_path / 'missing.jsonl'}:")


def test_answers_the_accuracy_method_cannot_read(tmp_path, images):
    data = tmp_path / "vqa.jsonl"
    data.write_text("\n".join([line("B", accu_reward_method="mcq"), line("the third one", accu_reward_method="mcq"),
                               line("yes", accu_reward_method="yes_no"), line("maybe", accu_reward_method="yes_no"),
                               line("about 12", accu_reward_method="numeric"), line("many"),
                               line("a cat")]) + "\n")
    report = check_sources([SourceFile(str(data), str(images), reward_method="numeric")])
    assert [(p.line, p.kind) for p in report.problems] == [(2, "unparsable_answer"), (4, "unparsable_answer"),
                                                           (6, "unparsable_answer"), (7, "unparsable_answer")]
    assert "'mcq'" in report.problems[0].message and "'numeric'" in report.problems[3].message  # the file default


def test_seg_and_od_fields(tmp_path, images):
    disc = np.zeros((64, 64), bool)
    disc[16:48, 20:44] = True
    mask = mask_to_rle(disc)
    contour = "<answer>" + json.dumps(fit_contour(disc, "parametric", 8, "fast").to_json_dict(1)) + "</answer>"
    radial = "<answer>" + json.dumps(fit_contour(disc, "radial", 8, "fast").to_json_dict(1)) + "</answer>"
    seg = tmp_path / "seg.jsonl"
    seg.write_text("\n".join([line(contour, mask=mask), line(radial, mask=mask), line(contour),
                              line(contour, mask={"size": [64, 64], "counts": "garbage"})]) + "\n")
    report = check_sources([SourceFile(str(seg), str(images))], "seg")
    assert [(p.line, p.kind) for p in report.problems] == [(2, "unparsable_answer"), (3, "bad_field"),
                                                           (4, "bad_field")]
    report = check_sources([SourceFile(str(seg), str(images))], "seg_radial")  # now the parametric ones are wrong
    assert [(p.line, p.kind) for p in report.problems] == [(1, "unparsable_answer"), (3, "unparsable_answer"),
                                                           (3, "bad_field"), (4, "unparsable_answer"), (4, "bad_field")]

    od = tmp_path / "od.jsonl"
    good = [{"bbox": [1, 2, 30, 40], "label": "dog"}]
    od.write_text("\n".join([line("[]", objects=good), line("a dog"), line("[]", objects=[{"bbox": [1, 2], "label": "x"}]),
                             line("[]", objects=[{"bbox": [1, 2, 3, 4]}])]) + "\n")
    report = check_sources([SourceFile(str(od), str(images))], "od")
    assert [(p.line, p.kind) for p in report.problems] == [(2, "unparsable_answer"), (3, "bad_field"), (4, "bad_field")]


# Loader fixes found while writing the check (regressions): a bad byte and a decompression bomb used to escape as
# exceptions without file:line, and a UTF-8 BOM made line 1 invalid JSON.


def test_loader_reports_a_non_utf8_line_and_accepts_a_bom(tmp_path):
    data = tmp_path / "d.jsonl"
    bom, latin1 = b"\xef\xbb\xbf", line("caf", None, "q").encode().replace(b"caf", b"caf\xe9")
    data.write_bytes(bom + line(image=None, question="q").encode() + b"\n" + latin1 + b"\n")
    errors = []
    samples = read_samples(SourceFile(str(data), ""), errors=errors)
    assert [n for n, _ in samples] == [1]
    assert len(errors) == 1 and errors[0].line == 2 and "UTF-8" in errors[0].problem


def test_a_decompression_bomb_header_is_a_problem_not_a_crash(tmp_path):
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    bomb = tmp_path / "bomb.png"  # 57 bytes declaring 30000 x 30000 pixels
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))
    assert "DecompressionBombError" in decode_problem(str(bomb))[1]
    data = tmp_path / "d.jsonl"
    data.write_text(line(image="bomb.png") + "\n")
    report = check_sources([SourceFile(str(data), str(tmp_path))], "rec")
    assert [(p.line, p.kind) for p in report.problems] == [(1, "corrupt_image")]
