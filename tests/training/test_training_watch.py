"""Watching a run: ``vlmr1 train`` without a tracker flag on seg data with the tiny model, offline, then ``vlmr1 eval``
into the run's folder and ``vlmr1 report``. One real run (2 GRPO steps) serves every test here.

Checked: the compact console line instead of the dict, ``train_log.jsonl``, ``run.json``, the rollout pictures on
disk and in trackio's local database at their training steps (the default tracker), no network connection attempted,
and the report of the finished run with curves, rollouts and the evaluation.
"""

import contextlib
import io
import ipaddress
import json
import os
import sqlite3
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from huggingface_hub import constants as hf_constants
from PIL import Image

from vlmr1.cli import main as cli_main
from vlmr1.data.shapes import generate
from vlmr1.train import main as train_main

trackio = pytest.importorskip("trackio")

CONNECTIONS: list[tuple[str, object]] = []  # non-loopback network attempts while RECORDING
RECORDING = False


def _loopback(host) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _audit(event, args):
    if not RECORDING:
        return
    if event == "socket.getaddrinfo" and not _loopback(args[0]):
        CONNECTIONS.append((event, args[0]))
    elif event == "socket.connect" and isinstance(args[1], tuple) and not _loopback(args[1][0]):
        CONNECTIONS.append((event, args[1]))


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def run(tiny_qwen25vl_dir, tmp_path_factory):
    """Train 2 steps (no --report_to), evaluate 4 lines into RUN/eval, build the report; returns (RUN, stdout)."""
    global RECORDING
    root = tmp_path_factory.mktemp("watch")
    paths = generate(str(root / "shapes"), 8, 4, image_size=56, max_shapes=1, compact=True, workers=1, progress=False)
    out = root / "run"
    argv = ["--model_name_or_path", str(tiny_qwen25vl_dir), "--output_dir", str(out),
            "--data_file_paths", paths["train"], "--image_folders", str(root / "shapes"), "--task_type", "seg",
            "--max_steps", "2", "--per_device_train_batch_size", "4", "--num_generations", "2",
            "--max_completion_length", "12", "--logging_steps", "1", "--save_steps", "2", "--log_rollouts_steps", "1",
            "--gradient_checkpointing", "false", "--seed", "0", "--max_pixels", "12544", "--run_name", "watch-test"]
    stdout = io.StringIO()
    CONNECTIONS.clear()
    RECORDING = True
    # TRL 1.16 pings huggingface.co (usage telemetry, in a thread, failures ignored) whenever a trainer is built, with
    # or without a tracker; HF_HUB_DISABLE_TELEMETRY=1 turns it off. It is not the tracker's, so it is off here.
    telemetry, hf_constants.HF_HUB_DISABLE_TELEMETRY = hf_constants.HF_HUB_DISABLE_TELEMETRY, True
    try:
        with contextlib.redirect_stdout(stdout):
            train_main(argv)
    finally:
        RECORDING = False
        hf_constants.HF_HUB_DISABLE_TELEMETRY = telemetry
    cli_main(["eval", "--model", str(out), "--data_file_paths", paths["val"], "--image_folders", str(root / "shapes"),
              "--task_type", "seg", "--num_samples", "4", "--batch_size", "4", "--max_new_tokens", "12",
              "--output_dir", str(out / "eval")])
    cli_main(["report", str(out)])
    return out, stdout.getvalue()


def test_console_prints_one_compact_line_per_step_not_the_dict(run):
    _, stdout = run
    lines = [line.strip() for line in stdout.splitlines()]
    assert any(line.startswith("step 1/2  reward ") and "(seg_iou " in line and "s/step" in line for line in lines)
    assert any(line.startswith("step 2/2  reward ") and "ETA 0s" in line for line in lines)
    assert "{'loss'" not in stdout and "'rewards/seg_iou/mean'" not in stdout


def test_full_logs_and_settings_are_kept_in_files(run):
    out, _ = run
    logged = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in logged] == [1, 2, 2] and "train_runtime" in logged[-1]
    assert {"rewards/seg_iou/mean", "completions/mean_length", "clip_ratio/region_mean"} <= set(logged[0])
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2
    settings = json.loads((out / "run.json").read_text())
    assert settings["task_type"] == "seg" and settings["reward_funcs"] == ["seg_iou", "seg_format"]
    assert settings["report_to"] == ["trackio"]  # the default when trackio is installed


def test_rollout_pictures_are_written_per_step(run):
    out, _ = run
    for step in (1, 2):
        with Image.open(out / "rollouts" / f"step-{step:06d}.png") as picture:
            # 2 prompts (batch 4 / 2 generations), each: the prompt and its 2 completions
            assert picture.format == "PNG" and picture.width == 3 * 224 + 4 * 4 and picture.height > 2 * 224


def test_trackio_gets_curves_and_pictures_at_training_steps_offline(run):
    out, _ = run
    assert not CONNECTIONS, f"network attempted: {CONNECTIONS}"
    from trackio.utils import MEDIA_DIR, TRACKIO_DIR

    assert str(TRACKIO_DIR) == os.environ["TRACKIO_DIR"]
    with contextlib.closing(sqlite3.connect(Path(TRACKIO_DIR) / "vlmr1.db")) as db:
        rows = [(step, json.loads(metrics)) for step, metrics in
                db.execute("select step, metrics from metrics where run_name = 'watch-test' order by id")]
    curves = {step: m for step, m in rows if "train/reward" in m}
    assert sorted(curves) == [1, 2] and all(curves[s]["train/global_step"] == s for s in curves)
    pictures = {step: m["rollouts"] for step, m in rows if "rollouts" in m}
    assert sorted(pictures) == [1, 2]
    for picture in pictures.values():
        assert picture["_type"] == "trackio.image" and (Path(MEDIA_DIR) / picture["file_path"]).is_file()


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.headings, self.cells, self._tag = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        if tag == "img":
            self.images.append(dict(attrs))

    def handle_data(self, data):
        if self._tag in ("h2", "h3"):
            self.headings.append(data)
        elif self._tag in ("td", "th"):
            self.cells.append(data)


def test_report_of_the_finished_run(run):
    out, _ = run
    page = Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    assert page.headings[:3] == ["Training", "Rollouts over time", "Evaluation"]
    alts = [img["alt"] for img in page.images]
    assert alts == ["training curves", "rollouts at step 1", "rollouts at step 2"]
    assert all(img["src"].startswith("data:image/png;base64,") for img in page.images)
    assert "2 of 2" in page.cells and "gIoU" in page.cells and "parse_rate" in page.cells  # steps; eval metrics
