"""Two GRPO steps of a tiny Qwen2.5-VL on ``vlmr1 data coco`` output with ``--task_type seg``."""

import json
import shutil
from pathlib import Path

import pytest

from vlmr1.data.coco import main as coco_main
from vlmr1.train import main as train_main

# CI lays shared/ beside the clone; developers' machines have it at /work/shared.
SAMPLES = next((p for p in (Path(__file__).resolve().parents[3] / "shared/data/coco-samples", Path("/work/shared/data/coco-samples"))
                if p.is_dir()), Path("/work/shared/data/coco-samples"))
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared COCO samples not available")


def coco_tree(root: Path) -> None:
    data = json.loads((SAMPLES / "val2017_instances_2img.json").read_text())
    data["categories"] = [c for c in data["categories"] if c["id"] <= 90]
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] <= 90]
    (root / "val2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    for im in data["images"]:
        shutil.copy(SAMPLES / "images" / im["file_name"], root / "val2017")
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))


def test_seg_task_trains_on_converted_coco(tiny_qwen25vl_dir, tmp_path):
    data = tmp_path / "coco"
    coco_tree(data)
    coco_main(["--output_dir", str(data), "--no-download", "--year", "2017", "--splits", "val", "--fit", "fast",
               "--workers", "1", "--quiet"])
    out = tmp_path / "run"
    train_main([
        "--model_name_or_path", str(tiny_qwen25vl_dir), "--output_dir", str(out),
        "--data_file_paths", str(data / "val.jsonl"), "--image_folders", str(data), "--task_type", "seg",
        "--reward_funcs", "seg_iou", "seg_format", "user_rewards:text_length",
        "--max_steps", "2", "--per_device_train_batch_size", "4", "--num_generations", "2",
        "--max_completion_length", "12", "--learning_rate", "1e-2", "--logging_steps", "1", "--save_steps", "2",
        "--gradient_checkpointing", "false", "--report_to", "none", "--max_pixels", "12544", "--seed", "0",
    ])
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    logged = [h for h in state["log_history"] if "loss" in h]
    assert state["global_step"] == 2 and len(logged) == 2
    for h in logged:  # the seg rewards ran on every step and stayed in [0, 1]
        assert 0.0 <= h["rewards/seg_iou/mean"] <= 1.0 and 0.0 <= h["rewards/seg_format/mean"] <= 1.0
