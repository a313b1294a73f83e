"""``vlmr1 train`` and ``vlmr1 eval`` on the tiny InternVL and GLM-4.1V, as a user runs them (the Qwen families:
``test_training_grpo.py``): single-image, multi-image and text-only rows in one run with frozen vision, resume, LoRA,
and evaluation. The shared prefix must serve every forward and rollout of these runs."""

import json
import logging
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file
from test_training_grpo import EXAMPLES, assert_trained, train

from vlmr1.eval import main as eval_main

FAMILIES = {"internvl": "tiny_internvl_dir", "glm4v": "tiny_glm4v_dir"}
# Checkpoints keep each family's own key layout: InternVL "language_model.model.layers.", "vision_tower.",
# "multi_modal_projector."; GLM-4.1V "model.language_model.layers.", "model.visual.".
VISION_KEYS = ("vision_tower.", "multi_modal_projector.", "model.visual.")


@pytest.fixture(params=sorted(FAMILIES))
def model_dir(request):
    return request.getfixturevalue(FAMILIES[request.param])


def weights(folder) -> dict:
    return load_file(str(Path(folder) / "model.safetensors"))


def changed(before, after, vision: bool) -> set[str]:
    names = [n for n in before if n.startswith(VISION_KEYS) == vision and (vision or ".layers." in n)]
    assert names
    return {n for n in names if not (before[n] == after[n]).all()}


def mixed_rows(tmp_path) -> Path:
    """Two single-image, one two-image and one text-only line: each batch of 2 prompts x 2 generations mixes them."""
    lines = [*(EXAMPLES / "counting.jsonl").read_text().splitlines()[:2],
             (EXAMPLES / "multi_image.jsonl").read_text().splitlines()[0],
             (EXAMPLES / "text_only.jsonl").read_text().splitlines()[0]]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_single_multi_image_and_text_only_rows_frozen_vision_and_resume(model_dir, tmp_path, caplog):
    out, data = tmp_path / "run", mixed_rows(tmp_path)
    with caplog.at_level(logging.INFO, logger="vlmr1.training.trainer"):
        assert_trained(train(model_dir, out, [data], [EXAMPLES / "images"], "--freeze_vision_modules", "true"))
    assert "shared prefix off" not in caplog.text  # log-probs, training forwards and rollouts all shared prompts
    before, after = weights(model_dir), weights(out / "checkpoint-2")
    assert not changed(before, after, vision=True)
    assert changed(before, after, vision=False)

    shutil.rmtree(out / "checkpoint-2")  # as if the run died after its first checkpoint
    with caplog.at_level("INFO", logger="vlmr1.train"):
        state = train(model_dir, out, [data], [EXAMPLES / "images"], "--freeze_vision_modules", "true", steps=3)
    assert "resuming from" in caplog.text and "checkpoint-1" in caplog.text
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3]


def test_lora_adapts_the_language_model_only(model_dir, tmp_path):
    out = tmp_path / "run"
    train(model_dir, out, [EXAMPLES / "counting.jsonl"], [EXAMPLES / "images"], "--use_peft", "true", "--lora_r", "4",
          "--lora_alpha", "8", steps=1)
    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert adapter and all("language_model" in n and not any(k in n for k in VISION_KEYS) for n in adapter)
    assert any("down_proj" in n for n in adapter) and any("q_proj" in n for n in adapter)
    assert any(t.abs().sum() > 0 for n, t in adapter.items() if "lora_B" in n)  # trained (B starts at zero)


def test_eval_writes_metrics_with_the_familys_image_settings(model_dir, tmp_path):
    out = tmp_path / "eval"
    metrics = eval_main(["--model", str(model_dir), "--data_file_paths", str(mixed_rows(tmp_path)),
                         "--image_folders", str(EXAMPLES / "images"), "--output_dir", str(out),
                         "--max_new_tokens", "4", "--batch_size", "4", "--dtype", "float32", "--max_pixels", "12544"])
    (scores,) = metrics.values()
    assert scores["num_samples"] == 4 and 0 <= scores["accuracy"] <= 1
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    if "internvl" in str(model_dir):  # tiles: --max_pixels means nothing
        assert settings["max_tiles"] == 4 and settings["tile_size"] == 56 and "max_pixels" not in settings
    else:
        assert settings["max_pixels"] == 12544
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 4 and all(isinstance(p["prediction"], str) for p in predictions)
