"""VLM-R1's run scripts train: their flags, only the model, paths and --deepspeed changed (plus a CPU-sized batch),
run one GRPO step of the tiny model on VLM-R1-format data with the rewards VLM-R1 uses."""

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from vlm_r1_scripts import argv

from vlmr1.train import main as train_main

ROOT = Path(__file__).resolve().parents[2]
# what a CPU run changes: a few prompts, short completions, 2 generations, one step, no tracker
SMALL = ["--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1", "--num_generations", "2",
         "--max_completion_length", "16", "--max_steps", "1", "--save_steps", "1", "--max_pixels", "12544",
         "--gradient_checkpointing", "false", "--report_to", "none"]


def rec_data(tmp_path):
    """VLM-R1's REC lines: the box (original pixels) is the gpt answer, there is no bbox field."""
    images = tmp_path / "coco"
    images.mkdir()
    lines = []
    for k in range(2):
        image = Image.new("RGB", (96, 64), "white")
        ImageDraw.Draw(image).rectangle([10 + 20 * k, 10, 50 + 20 * k, 40], fill="red")
        image.save(images / f"{k}.jpg")
        lines.append({"id": k, "image": f"{k}.jpg", "conversations": [
            {"from": "human", "value": "<image>the red box"},
            {"from": "gpt", "value": f"[{10 + 20 * k}, 10, {50 + 20 * k}, 40]"}]})
    data = tmp_path / "refcoco_train.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return data, images


def trained(out, step=1):
    return json.loads((Path(out) / f"checkpoint-{step}" / "trainer_state.json").read_text())


def run(script, out, model, data, images, *extra):
    train_main(argv(script, out=str(out), model=str(model), data=str(data), images=str(images)) + SMALL + list(extra))


def test_rec_script_trains_with_iou(tiny_qwen25vl_dir, tmp_path):
    data, images = rec_data(tmp_path)
    run("run_grpo_rec.sh", tmp_path / "out", tiny_qwen25vl_dir, data, images)
    logged = trained(tmp_path / "out")["log_history"][0]
    # --is_reward_customized_from_vlm_module True: IoU and the box format, as VLM-R1's Qwen module
    assert "rewards/rec_iou/mean" in logged and "rewards/rec_format/mean" in logged


@pytest.mark.slow  # two more tiny trainings
def test_rec_script_resumes_and_lora_script_trains(tiny_qwen25vl_dir, tmp_path):
    data, images = rec_data(tmp_path)
    out = tmp_path / "out"
    run("run_grpo_rec.sh", out, tiny_qwen25vl_dir, data, images)
    # --resume_from_checkpoint True: the same command with more steps continues from checkpoint-1
    run("run_grpo_rec.sh", out, tiny_qwen25vl_dir, data, images, "--max_steps", "2")
    state = trained(out, 2)
    assert state["global_step"] == 2 and len([h for h in state["log_history"] if "loss" in h]) == 2
    run("run_grpo_rec_lora.sh", tmp_path / "lora", tiny_qwen25vl_dir, data, images)
    assert "rewards/rec_iou/mean" in trained(tmp_path / "lora")["log_history"][0]
    assert (tmp_path / "lora" / "adapter_config.json").is_file()


@pytest.mark.slow
def test_gui_script_trains_with_all_match(tiny_qwen25vl_dir, tmp_path):
    images = tmp_path / "gui"
    shutil.copytree(ROOT / "examples/gui", images)
    run("run_grpo_gui.sh", tmp_path / "out", tiny_qwen25vl_dir, images / "gui_synthetic.jsonl", images)
    logged = trained(tmp_path / "out")["log_history"][0]
    assert "rewards/accuracy/mean" in logged and "rewards/format/mean" in logged
