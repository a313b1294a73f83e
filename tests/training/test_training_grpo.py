"""GRPO training of the tiny offline models through `vlmr1.train.main`, as a user runs `vlmr1 train`."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoProcessor

from vlmr1.data.schema import DataError
from vlmr1.train import main as train_main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
REWARDS = ["accuracy", "format", "user_rewards:text_length"]


def train(model_dir, output_dir, data_files, image_folders, *extra, steps=2):
    argv = [
        "--model_name_or_path", str(model_dir), "--output_dir", str(output_dir),
        "--data_file_paths", ":".join(map(str, data_files)), "--image_folders", ":".join(map(str, image_folders)),
        "--reward_funcs", *REWARDS, "--max_steps", str(steps), "--per_device_train_batch_size", "4",
        "--num_generations", "2", "--max_completion_length", "12", "--learning_rate", "1e-2",
        "--logging_steps", "1", "--save_steps", "1", "--gradient_checkpointing", "false", "--report_to", "none",
        "--max_pixels", "12544", "--seed", "0", "--temperature", "1.5", *extra,
    ]
    train_main(argv)
    state = json.loads((Path(output_dir) / f"checkpoint-{steps}" / "trainer_state.json").read_text())
    return state


def weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(Path(folder) / "model.safetensors"))


def is_text(name):  # checkpoints are saved in the original Qwen layout
    return name.startswith("model.layers.")


def is_vision(name):
    return name.startswith("visual.")


def changed(before, after, predicate):
    names = [n for n in before if predicate(n)]
    assert names
    return {n for n in names if not torch.equal(before[n], after[n])}


def assert_trained(state, steps=2):
    assert state["global_step"] == steps
    logged = [h for h in state["log_history"] if "loss" in h]
    assert len(logged) == steps
    assert all("rewards/user_rewards:text_length/mean" in h or "rewards/text_length/mean" in h for h in logged)


def test_single_image_two_files_two_folders(tiny_qwen25vl_dir, tmp_path):
    rows = (EXAMPLES / "counting.jsonl").read_text().splitlines()
    folders = [tmp_path / "images_a", tmp_path / "images_b"]
    files = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for folder, file, part in zip(folders, files, (rows[:8], rows[8:])):
        folder.mkdir()
        for row in part:
            shutil.copy(EXAMPLES / "images" / json.loads(row)["image"], folder)
        file.write_text("\n".join(part) + "\n")
    out = tmp_path / "run"
    assert_trained(train(tiny_qwen25vl_dir, out, files, folders))
    assert changed(weights(tiny_qwen25vl_dir), weights(out), is_text)
    assert AutoProcessor.from_pretrained(out).image_processor.size["longest_edge"] == 12544  # the run's --max_pixels


def test_multi_image_and_text_only_rows_in_one_batch(tiny_qwen25vl_dir, tmp_path):
    # One multi-image line and one text-only line: every batch of 4 (2 prompts x 2 generations) mixes them.
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text((EXAMPLES / "multi_image.jsonl").read_text().splitlines()[0] + "\n"
                     + (EXAMPLES / "text_only.jsonl").read_text().splitlines()[0] + "\n")
    state = train(tiny_qwen25vl_dir, tmp_path / "run", [mixed], [EXAMPLES / "images"])
    assert_trained(state)


def test_frozen_vision_trains_text_only(tiny_qwen25vl_dir, tmp_path):
    out = tmp_path / "run"
    train(tiny_qwen25vl_dir, out, [EXAMPLES / "counting.jsonl"], [EXAMPLES / "images"],
          "--freeze_vision_modules", "true")
    before, after = weights(tiny_qwen25vl_dir), weights(out)
    assert not changed(before, after, is_vision)
    assert changed(before, after, is_text)


def test_lora_adapts_the_language_model_only(tiny_qwen25vl_dir, tmp_path):
    out = tmp_path / "run"
    train(tiny_qwen25vl_dir, out, [EXAMPLES / "counting.jsonl"], [EXAMPLES / "images"],
          "--use_peft", "true", "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj", "v_proj",
          "down_proj")
    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert adapter and all("language_model" in n and "visual" not in n for n in adapter)
    assert any("down_proj" in n for n in adapter) and any("q_proj" in n for n in adapter)
    # lora_B starts at zero: a non-zero B shows the adapters were trained
    assert any(t.abs().sum() > 0 for n, t in adapter.items() if "lora_B" in n)


def test_resume_continues_from_the_last_checkpoint(tiny_qwen25vl_dir, tmp_path, caplog):
    out = tmp_path / "run"
    args = (tiny_qwen25vl_dir, out, [EXAMPLES / "counting.jsonl"], [EXAMPLES / "images"])
    train(*args, steps=2)
    shutil.rmtree(out / "checkpoint-2")  # as if the run died after its first checkpoint
    with caplog.at_level("INFO", logger="vlmr1.train"):
        state = train(*args, steps=3)
    assert "resuming from" in caplog.text and "checkpoint-1" in caplog.text
    assert state["global_step"] == 3
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3]


def test_qwen2_vl_family_trains(tiny_qwen2vl_dir, tmp_path):
    out = tmp_path / "run"
    assert_trained(train(tiny_qwen2vl_dir, out, [EXAMPLES / "counting.jsonl"], [EXAMPLES / "images"]))
    assert changed(weights(tiny_qwen2vl_dir), weights(out), is_text)


def test_bad_data_stops_before_the_model_loads(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "image": "x.png", "conversations": []}\n')
    with pytest.raises(DataError, match=f"{bad}:1"):
        train(tmp_path / "no-such-model", tmp_path / "run", [bad], [tmp_path])


def test_too_little_data_for_one_generation_batch_is_refused(tmp_path):
    one = tmp_path / "one.jsonl"
    one.write_text((EXAMPLES / "counting.jsonl").read_text().splitlines()[0] + "\n")
    with pytest.raises(ValueError, match="1 training prompt\\(s\\), but one generation batch takes 2"):
        train(tmp_path / "no-such-model", tmp_path / "run", [one], [EXAMPLES / "images"])
