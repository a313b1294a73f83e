"""Fault injection: SIGKILL the COCO converter and a training run mid-way, rerun the same command, get the same result.

* The converter (a real ``python -m vlmr1.cli data coco`` process, one worker, small chunks) is killed as soon as its
  first ``.parts`` chunk is on disk; the rerun finishes it, and ``val.jsonl`` is byte-identical to an uninterrupted
  run's. No truncated ``val.jsonl`` exists in between.
* ``vlmr1 train`` (tiny model, ``--save_steps 1``) is killed once ``checkpoint-1`` is complete and before the run
  ends; the rerun resumes from the last complete checkpoint (a torn, newer checkpoint folder is skipped) and scores
  the same rows at every remaining step as an uninterrupted run (recorded by ``user_rewards:record_batch``).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# CI lays shared/ beside the clone; developers' machines have it at /work/shared.
SAMPLES = next((p for p in (ROOT.parent / "shared/data/coco-samples", Path("/work/shared/data/coco-samples"))
                if p.is_dir()), Path("/work/shared/data/coco-samples"))
EXAMPLES = ROOT / "examples"


def env(**extra) -> dict:
    out = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", **extra)
    out["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests" / "training"),
                                         os.environ.get("PYTHONPATH", "")])
    return out


def start(command: list[str], log: Path, **extra_env) -> subprocess.Popen:
    """Start ``command`` with its output in ``log`` (a pipe nobody reads could fill up and stall it)."""
    with open(log, "w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env(**extra_env))


def finish(proc: subprocess.Popen, log: Path, timeout: float = 900.0) -> str:
    """Wait for ``proc``; assert it succeeded; return its output."""
    status = proc.wait(timeout=timeout)
    text = log.read_text()
    assert status == 0, text[-4000:]
    return text


def kill_when(proc: subprocess.Popen, log: Path, ready, timeout: float = 300.0) -> None:
    """Poll ``ready()`` every 10 ms and SIGKILL ``proc`` the moment it is true; fail if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the process ended (status {proc.returncode}) before the kill point:\n"
                        f"{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the kill point was never reached")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


# ------------------------------------------------------------------------------------------------ COCO converter


def lay_out(root: Path, copies: int) -> None:
    """A tiny val2017 tree from the two shared images, every thing annotation repeated ``copies`` times."""
    data = json.loads((SAMPLES / "val2017_instances_2img.json").read_text())
    data["categories"] = [c for c in data["categories"] if c["id"] <= 90]  # things only, as in instances files
    things = [a for a in data["annotations"] if a["category_id"] <= 90]
    data["annotations"] = [dict(a, id=a["id"] * 10 + k) for k in range(copies) for a in things]  # a longer run
    (root / "val2017").mkdir(parents=True)
    for im in data["images"]:
        shutil.copy(SAMPLES / "images" / im["file_name"], root / "val2017" / im["file_name"])
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))


def coco_command(root: Path) -> list[str]:
    return [sys.executable, "-m", "vlmr1.cli", "data", "coco", "--output_dir", str(root), "--no-download",
            "--year", "2017", "--splits", "val", "--workers", "1", "--chunk_size", "4", "--fit", "fast", "--quiet"]


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared COCO samples not available")
def test_killed_converter_resumes_to_the_same_bytes(tmp_path):
    reference, victim = tmp_path / "reference", tmp_path / "victim"
    for root in (reference, victim):
        lay_out(root, copies=3)
    logs = {name: tmp_path / f"{name}.log" for name in ("reference", "killed", "rerun")}
    uninterrupted = start(coco_command(reference), logs["reference"])  # runs while the victim is killed
    proc = start(coco_command(victim), logs["killed"])
    parts = victim / ".parts" / "val"
    kill_when(proc, logs["killed"], lambda: any(parts.glob("*/*.jsonl")))
    assert not (victim / "val.jsonl").exists()  # never a truncated output
    done_before = len(list(parts.glob("*/*.jsonl")))

    out = finish(start(coco_command(victim), logs["rerun"]), logs["rerun"])
    resumed, chunks = (int(v) for v in re.search(r"(\d+)/(\d+) chunks resumed", out).groups())
    assert done_before <= resumed < chunks  # what the killed run finished was kept, the rest was converted
    finish(uninterrupted, logs["reference"])
    assert (victim / "val.jsonl").read_bytes() == (reference / "val.jsonl").read_bytes()
    assert not list(victim.glob(".val.jsonl.*.tmp")) and not list(parts.glob("*/*.jsonl"))


# ------------------------------------------------------------------------------------------------ training

STEPS = 4


def train_command(model_dir: Path, output_dir: Path) -> list[str]:
    return [sys.executable, "-m", "vlmr1.cli", "train", "--model_name_or_path", str(model_dir),
            "--output_dir", str(output_dir), "--data_file_paths", str(EXAMPLES / "counting.jsonl"),
            "--image_folders", str(EXAMPLES / "images"), "--reward_funcs", "user_rewards:record_batch",
            "--max_steps", str(STEPS), "--save_steps", "1", "--per_device_train_batch_size", "4",
            "--num_generations", "2", "--max_completion_length", "8", "--logging_steps", "1",
            "--gradient_checkpointing", "false", "--report_to", "none", "--max_pixels", "12544", "--seed", "0"]


def recorded(folder: Path) -> dict[int, list[str]]:
    """step -> the row ids scored at that step (``record_batch`` writes one line per reward call)."""
    rows = [json.loads(x) for x in (folder / "rank0.jsonl").read_text().splitlines()] if folder.is_dir() else []
    return {row["step"]: row["ids"] for row in rows}


def complete_checkpoints(output_dir: Path) -> list[int]:
    return sorted(int(p.parent.name.split("-")[1]) for p in output_dir.glob("checkpoint-*/trainer_state.json"))


# three tiny GRPO runs in fresh interpreters (~45 s): the issue asks for fault injection in CI, so not `slow`
@pytest.mark.slow  # kills a training process and runs it again
def test_killed_training_resumes_from_the_last_checkpoint_with_the_same_data_order(tiny_qwen25vl_dir, tmp_path):
    names = ("reference", "killed", "resumed")
    records = {name: tmp_path / f"record_{name}" for name in names}
    logs = {name: tmp_path / f"{name}.log" for name in names}
    for folder in records.values():
        folder.mkdir()
    reference_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    uninterrupted = start(train_command(tiny_qwen25vl_dir, reference_dir), logs["reference"],
                          VLMR1_TEST_RECORD=str(records["reference"]))  # runs while the other one is killed
    proc = start(train_command(tiny_qwen25vl_dir, run_dir), logs["killed"], VLMR1_TEST_RECORD=str(records["killed"]))
    kill_when(proc, logs["killed"], lambda: (run_dir / "checkpoint-1" / "trainer_state.json").is_file())
    last = complete_checkpoints(run_dir)[-1]
    assert last < STEPS and not (run_dir / "model.safetensors").exists()  # killed between checkpoints
    torn = run_dir / f"checkpoint-{last + 1}"
    if not torn.exists():  # as if the kill had landed mid-save: weights written, trainer_state.json not yet
        torn.mkdir()
        (torn / "model.safetensors").write_bytes(b"half a file")

    log = finish(start(train_command(tiny_qwen25vl_dir, run_dir), logs["resumed"],
                       VLMR1_TEST_RECORD=str(records["resumed"])), logs["resumed"])
    assert f"skipping {torn}" in log and f"resuming from {run_dir / f'checkpoint-{last}'}" in log
    assert json.loads((run_dir / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())["global_step"] == STEPS

    finish(uninterrupted, logs["reference"])
    reference = recorded(records["reference"])
    assert sorted(reference) == list(range(STEPS))
    after = recorded(records["resumed"])
    assert sorted(after) == list(range(last, STEPS))  # continued from the checkpoint, no step redone or skipped
    assert after == {step: reference[step] for step in after}  # the same rows at the same steps
    before = recorded(records["killed"])
    assert before and before == {step: reference[step] for step in before}
