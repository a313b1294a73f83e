"""Every numeric argument of every command is range-checked up front (no hang, no silent nonsense), abbreviated flags
are refused as unknown recipe keys are, and a bad value ends as one ``bad_argument`` line with status 2."""

import time
from pathlib import Path

import pytest

from vlmr1.cli import main
from vlmr1.training.config import read_flags

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DATA = ["--data_file_paths", str(EXAMPLES / "counting.jsonl"), "--image_folders", str(EXAMPLES / "images")]


def status_and_error(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return exit_.value.code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("argv, message", [
    (["data", "shapes", "--output_dir", "{tmp}", "--queries_per_image", "0"], "--queries_per_image: must be at least"),
    (["data", "shapes", "--output_dir", "{tmp}", "--num_train", "-5"], "--num_train: must be at least 0, got -5"),
    (["data", "shapes", "--output_dir", "{tmp}", "--decimals", "-2"], "--decimals: must be in [0, 6], got -2"),
    (["data", "shapes", "--output_dir", "{tmp}", "--solo", "nan"], "--solo: must be a finite number, got nan"),
    (["data", "coco", "--output_dir", "{tmp}", "--terms", "0"], "--terms: must be in [2, 64], got 0"),
    (["data", "coco", "--output_dir", "{tmp}", "--decimals", "-3"], "--decimals: must be in [0, 6], got -3"),
    (["data", "coco", "--output_dir", "{tmp}", "--workers", "0"], "--workers: must be in [1, 1024], got 0"),
    (["data", "gui-synthetic", "--output_dir", "{tmp}", "--num", "0"], "--num: must be at least 1, got 0"),
    (["data", "check", *DATA, "--workers", "0"], "--workers: must be in [1, 256], got 0"),
    (["draw", "x.jsonl", "--image-root", ".", "--output", "{tmp}", "--limit", "-1"], "--limit: must be at least 1"),
    (["draw", "x.jsonl", "--image-root", ".", "--output", "{tmp}", "--max_side", "0"], "--max_side: must be in [16"),
    (["tiny-model", "--output", "{tmp}", "--rope_theta", "inf"], "--rope_theta: must be a finite number, got inf"),
    (["demo", "--output_dir", "{tmp}", "--minutes", "-1"], "--minutes: must be above 0, got -1"),
    (["eval", "--model", "m", *DATA, "--batch_size", "0"], "--batch_size: bad_argument: must be at least 1, got 0"),
    (["eval", "--model", "m", *DATA, "--vllm_gpu_memory_utilization", "2"], "must be in (0, 1], got 2"),
    (["train", *DATA, "--learning_rate", "nan"], "--learning_rate: bad_argument: must be a finite number, got nan"),
    (["train", *DATA, "--num_generations", "1"], "--num_generations: bad_argument: must be at least 2, got 1"),
    (["train", *DATA, "--temperature", "0"], "--temperature: bad_argument: must be above 0, got 0"),
    (["train", *DATA, "--max_steps", "0"], "--max_steps: bad_argument: must be -1 (train for --num_train_epochs)"),
    (["train", *DATA, "--val_split_ratio", "1.5"], "--val_split_ratio: bad_argument: must be in [0, 1), got 1.5"),
])
def test_a_value_out_of_range_is_one_line_and_status_2(argv, message, tmp_path, capsys):
    start = time.monotonic()
    status, error = status_and_error(capsys, [a.replace("{tmp}", str(tmp_path / "out")) for a in argv])
    assert status == 2 and message in error and "bad_argument" in error
    assert "Traceback" not in error and len(error.splitlines()) == 1
    assert time.monotonic() - start < 60  # `--queries_per_image 0` used to loop forever at 100% CPU
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("argv", [
    ["train", *DATA, "--learning_rat", "1e-5"],
    ["eval", "--model", "m", *DATA, "--batch", "4"],
    ["data", "shapes", "--output_dir", "x", "--num_tr", "5"],
])
def test_abbreviated_flags_are_refused(argv, capsys):
    status, error = status_and_error(capsys, argv)
    assert status == 2 and "bad_argument" in error and ("unrecognized" in error or "unknown" in error)


def test_a_recipe_reads_like_the_command_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rate: 2e-6\nnum_generations: 4\nbeta: .nan\n")  # PyYAML: 2e-6 is a string
    with pytest.raises(ValueError, match="--beta: bad_argument: must be a finite number, got nan"):
        read_flags(["--config", str(recipe), "--output_dir", str(tmp_path)])
    flags = read_flags(["--config", str(recipe), "--output_dir", str(tmp_path), "--beta", "0.04"])
    assert flags.learning_rate == 2e-6 and flags.num_generations == 4
    recipe.write_text("learning_rate: fast\n")
    with pytest.raises(ValueError, match="bad_argument: argument --learning_rate.*: invalid float value: 'fast'"):
        read_flags(["--config", str(recipe)])
    recipe.write_text("learning_rat: 1e-5\n")
    with pytest.raises(ValueError, match=r"r.yaml: bad_recipe: unknown recipe keys \['--learning_rat'\]"):
        read_flags(["--config", str(recipe)])
    recipe.write_text("learning_rate: [1\n")
    with pytest.raises(ValueError, match=r"r.yaml:2: bad_recipe: not valid YAML"):
        read_flags(["--config", str(recipe)])


def test_help_names_the_command(capsys):
    for command in ("eval", "train"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0 and capsys.readouterr().out.startswith(f"usage: vlmr1 {command} ")
