"""The `vlmr1` entry point lists its commands and dispatches to them."""

import json
import subprocess
import sys

from vlmr1.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "vlmr1.cli", "--help"], capture_output=True, text=True, check=True)
    assert "train" in out.stdout and "tiny-model" in out.stdout


def test_unknown_command_exits_with_usage(capsys):
    try:
        main(["trian"])
    except SystemExit as e:
        assert e.code == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_rewards_lists_builtins(capsys):
    main(["rewards"])
    out = capsys.readouterr().out
    assert "accuracy" in out and "format" in out and "math" in out


def test_tiny_model_command(tmp_path, capsys):
    main(["tiny-model", "--arch", "qwen2_vl", "--output", str(tmp_path / "m"), "--rope_theta", "100"])
    assert (tmp_path / "m" / "config.json").exists() and "qwen2_vl" in capsys.readouterr().out
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["text_config"]["rope_parameters"]["rope_theta"] == 100.0


def test_data_subcommands_dispatch(tmp_path, capsys):
    main(["data", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in ("coco", "refcoco", "shapes", "gui-synthetic"))
    main(["data", "gui-synthetic", "--output_dir", str(tmp_path), "--num", "2"])
    assert len((tmp_path / "gui_synthetic.jsonl").read_text().splitlines()) == 2
