"""``vlmr1 report`` on folders in other states than a finished run (tests/training/test_training_watch.py has that one):
a run still going (only a checkpoint's trainer_state.json), and no run at all."""

import json

import pytest

from vlmr1.cli import main as cli_main
from vlmr1.viz.report import read_run, spread, write_run_report


def test_a_running_run_reads_its_newest_checkpoint(tmp_path):
    for step in (2, 4):
        history = [{"step": s, "loss": 0.1, "reward": 0.1 * s, "rewards/format/mean": 0.1 * s,
                    "completions/mean_length": 20.0} for s in range(1, step + 1)]
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(
            json.dumps({"log_history": history, "max_steps": 10, "global_step": step}))
    (tmp_path / "checkpoint-6").mkdir()  # a save in progress: no state yet
    record = read_run(str(tmp_path))
    assert record.max_steps == 10 and [h["step"] for h in record.history] == [1, 2, 3, 4]
    assert record.history_source.endswith("checkpoint-4/trainer_state.json")
    page = (tmp_path / "report.html").read_text() if write_run_report(str(tmp_path)) else ""
    assert "4 of 10 (running, or stopped before the end)" in page and "0.100 → 0.400" in page
    assert "No rollout pictures" in page and "<h2>Evaluation</h2>" not in page


def test_the_report_of_a_folder_that_is_no_run_says_so(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_main(["report", str(tmp_path / "missing")])
    assert "is not a folder" in capsys.readouterr().err
    write_run_report(str(tmp_path))  # an empty folder: a page that says nothing was logged
    assert "No training step logged yet" in (tmp_path / "report.html").read_text()


def test_spread_keeps_first_and_last():
    assert spread(list(range(100)), 4) == [0, 33, 66, 99] and spread([1, 2], 12) == [1, 2]
