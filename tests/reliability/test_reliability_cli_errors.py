"""One error path for the whole CLI: a known problem is one ``where: kind: what (fix: ...)`` line on stderr and status
2, no traceback (``--debug`` / ``VLMR1_DEBUG=1`` adds it); ``python -m vlmr1.train`` (torchrun's entry) ends the same
way; ``draw`` reports bad lines instead of crashing and reads what train reads (BOM, CRLF); a closed pipe is quiet."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlmr1.cli import main
from vlmr1.geometry import mask_to_rle

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run(capsys, argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return exit_.value.code, capsys.readouterr().err


@pytest.fixture
def bad_data(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text((EXAMPLES / "counting.jsonl").read_text().splitlines()[0] + "\n" + '{"id": 2, "image": [}\n')
    return data


def train_argv(data, model, out):
    return ["train", "--model_name_or_path", str(model), "--data_file_paths", str(data), "--image_folders",
            str(EXAMPLES / "images"), "--output_dir", str(out)]


def test_known_problems_are_one_line_and_debug_adds_the_traceback(tiny_qwen25vl_dir, bad_data, tmp_path, capsys,
                                                                  monkeypatch):
    status, err = run(capsys, train_argv(bad_data, tiny_qwen25vl_dir, tmp_path / "out"))
    assert status == 2 and "Traceback" not in err
    assert f"{bad_data}: bad_line: 1 bad line(s):\n{bad_data}:2: bad_json: not valid JSON" in err and "(fix: " in err
    status, err = run(capsys, ["--debug", *train_argv(bad_data, tiny_qwen25vl_dir, tmp_path / "out")])
    assert status == 2 and "Traceback (most recent call last)" in err and f"{bad_data}:2: bad_json" in err
    monkeypatch.setenv("VLMR1_DEBUG", "1")
    status, err = run(capsys, ["data", "coco", "--output_dir", str(tmp_path), "--no-download", "--splits", "val"])
    assert status == 2 and "Traceback" in err and "missing_file: not found (and --no-download)" in err


def test_a_missing_model_folder_is_named_not_the_hub(bad_data, tmp_path, capsys):
    good = EXAMPLES / "counting.jsonl"
    status, err = run(capsys, train_argv(good, tmp_path / "no_such_model", tmp_path / "out"))
    assert status == 2 and f"{tmp_path / 'no_such_model'}: bad_model: no such model folder" in err
    assert "huggingface.co" not in err and "Traceback" not in err
    status, err = run(capsys, ["eval", "--model", str(tmp_path), "--data_file_paths", str(good), "--image_folders",
                               str(EXAMPLES / "images"), "--output_dir", str(tmp_path / "out")])
    assert status == 2 and f"{tmp_path}: bad_model: has no config.json" in err


def subprocess_env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))


def first_line_then_close(command: list[str]) -> tuple[bytes, str, int]:
    """Run ``command | head -1``: read one line, close the pipe; returns (that line, stderr, status)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env())
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return first, err, proc.wait(timeout=300)


def test_a_closed_pipe_ends_a_command_quietly():
    # the handler every command runs through, without the imports of a real command (see the slow test below)
    first, err, status = first_line_then_close([sys.executable, "-c", (
        "from vlmr1.errors import run_command; run_command(lambda argv: [print(i) for i in range(10**6)], [])")])
    assert first == b"0\n" and err == "" and status == 1


@pytest.mark.slow
def test_data_check_into_a_closed_pipe_is_quiet(tmp_path):
    data = tmp_path / "many.jsonl"
    data.write_text("{broken\n" * 5000)  # ~400 kB of problems: more than a pipe holds
    first, err, status = first_line_then_close([sys.executable, "-m", "vlmr1.cli", "data", "check",
                                                "--data_file_paths", str(data)])
    assert first.startswith(f"{data}:1: bad_json".encode())
    assert "BrokenPipeError" not in err and "Traceback" not in err and status == 1


@pytest.mark.slow
def test_python_m_vlmr1_train_ends_like_the_cli(tiny_qwen25vl_dir, bad_data, tmp_path):
    argv = train_argv(bad_data, tiny_qwen25vl_dir, tmp_path / "out")[1:]
    done = subprocess.run([sys.executable, "-m", "vlmr1.train", *argv], capture_output=True, text=True,
                          env=subprocess_env(), timeout=600)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{bad_data}:2: bad_json: not valid JSON" in done.stderr


def test_draw_reports_bad_lines_and_reads_what_train_reads(tmp_path, capsys):
    Image.new("RGB", (40, 30), (90, 90, 90)).save(tmp_path / "a.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "a.png").read_bytes()[:60])
    mask = np.zeros((30, 40), bool)
    mask[5:20, 10:30] = True
    good = {"id": "good", "image": "a.png", "mask": mask_to_rle(mask), "bbox": [10, 5, 30, 20],
            "conversations": [{"from": "human", "value": "<image>Outline it."},
                              {"from": "gpt", "value": '<answer>{"x": [20, 10], "y": [12, 7]}</answer>'}]}
    lines = [json.dumps(good).encode(),
             json.dumps({**good, "id": "rle", "mask": {"size": [30, 40], "counts": "~~~"}}).encode(),
             json.dumps({**good, "id": "cut", "image": "cut.png"}).encode(),
             b'{"id": "latin1", "image": "caf\xe9.png"}',
             b"[1, 2]"]
    data = tmp_path / "d.jsonl"
    data.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")  # a BOM and CRLF, as Windows tools write
    main(["draw", str(data), "--image-root", str(tmp_path), "--output", str(tmp_path / "o"), "--task_type", "seg"])
    out, err = capsys.readouterr()
    assert len(list((tmp_path / "o").glob("*.png"))) == 1 and "skipped 4 line(s)" in out  # line 1, BOM and all
    assert f"{data}:2: bad_field: " in err
    assert f"{data}:3: corrupt_image: " in err and "cut.png: does not decode" in err
    assert f"{data}:4: bad_json: not valid UTF-8" in err and f"{data}:5: bad_json: a line must be a JSON object" in err
    assert "Traceback" not in err
    status, err = run(capsys, ["draw", str(tmp_path / "nope.jsonl"), "--image-root", ".", "--output",
                               str(tmp_path / "o")])
    assert status == 2 and "nope.jsonl: missing_file: file not found" in err
