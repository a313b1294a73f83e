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


@pytest.mark.parametrize("script", ["run_grpo_rec.sh", "run_grpo_rec_lora.sh"])
def test_rec_scripts_train_with_iou(script, tiny_qwen25vl_dir, tmp_path):
    data, images = rec_data(tmp_path)
    out = tmp_path / "out"
    train_main(argv(script, out=str(out), model=str(tiny_qwen25vl_dir), data=str(data), images=str(images)) + SMALL)
    logged = trained(out)["log_history"][0]
    # --is_reward_customized_from_vlm_module True: IoU and the box format, as VLM-R1's Qwen module
    assert "rewards/rec_iou/mean" in logged and "rewards/rec_format/mean" in logged
    if script == "run_grpo_rec.sh":  # --resume_from_checkpoint True: the same command continues the run
        train_main(argv(script, out=str(out), model=str(tiny_qwen25vl_dir), data=str(data), images=str(images))
                   + SMALL + ["--max_steps", "2"])
        assert trained(out, 2)["global_step"] == 2
    else:
        assert (out / "adapter_config.json").is_file()


def test_gui_script_trains_with_all_match(tiny_qwen25vl_dir, tmp_path):
    images = tmp_path / "gui"
    shutil.copytree(ROOT / "examples/gui", images)
    out = tmp_path / "out"
    train_main(argv("run_grpo_gui.sh", out=str(out), model=str(tiny_qwen25vl_dir),
                    data=str(images / "gui_synthetic.jsonl"), images=str(images)) + SMALL)
    logged = trained(out)["log_history"][0]
    assert "rewards/accuracy/mean" in logged and "rewards/format/mean" in logged
