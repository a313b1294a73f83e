"""Multi-process training, as on a multi-GPU node: `torchrun --nproc_per_node 2` on CPU (gloo)."""

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from torchrun_helpers import records, torchrun_train

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def two_files_two_folders(tmp_path):
    """counting.jsonl split over two folders, plus text-only lines, so ranks get image and text-only batches."""
    rows = (EXAMPLES / "counting.jsonl").read_text().splitlines()[:6]
    folder = tmp_path / "images_b"
    folder.mkdir()
    for row in rows[3:]:
        shutil.copy(EXAMPLES / "images" / json.loads(row)["image"], folder)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("\n".join(rows[:3] + (EXAMPLES / "text_only.jsonl").read_text().splitlines()[:3]) + "\n")
    second.write_text("\n".join(rows[3:]) + "\n")
    return [first, second], [EXAMPLES / "images", folder]


@pytest.mark.slow  # torchrun on 2 CPU processes: `make test-slow`
def test_two_processes_train_on_disjoint_prompts_and_resume(tiny_qwen25vl_dir, tmp_path, two_files_two_folders):
    files, folders = two_files_two_folders
    out, record = tmp_path / "run", tmp_path / "record"
    record.mkdir()
    torchrun_train(tiny_qwen25vl_dir, out, files, folders, record, 2)
    seen = records(record)
    for step in (0, 1):
        ids = [[r["ids"] for r in seen[rank] if r["step"] == step][0] for rank in (0, 1)]
        assert not set(ids[0]) & set(ids[1]), "a prompt went to both ranks"
        # each prompt's two generations are scored together, on one rank
        assert all(n == 2 for n in Counter(ids[0] + ids[1]).values())
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2

    shutil.rmtree(out / "checkpoint-2")
    done = torchrun_train(tiny_qwen25vl_dir, out, files, folders, record, 3)
    assert "resuming from" in done.stderr and "checkpoint-1" in done.stderr
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3]
