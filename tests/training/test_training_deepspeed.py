"""The shipped DeepSpeed configs are valid for the installed DeepSpeed once the trainer fills their "auto" values."""

from pathlib import Path

import pytest

from vlmr1.training.config import parse_train_args

deepspeed = pytest.importorskip("deepspeed", reason="DeepSpeed is an optional extra: pip install 'vlmr1[deepspeed]'")
from deepspeed.runtime.config import DeepSpeedConfig  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "deepspeed"


@pytest.mark.parametrize("name, stage, offload", [("zero2", 2, False), ("zero3", 3, False),
                                                  ("zero3_offload", 3, True)])
def test_config_parses_with_deepspeeds_own_parser(name, stage, offload, tmp_path, tiny_qwen25vl_dir):
    from transformers import AutoConfig


    _, training_args, _ = parse_train_args([
        "--output_dir", str(tmp_path), "--deepspeed", str(CONFIGS / f"{name}.json"),
        "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2", "--num_generations", "4",
        "--max_grad_norm", "0.5"])
    hf_config = training_args.hf_deepspeed_config
    # the trainer fills the model-size "auto" values once the model is known (the VLM's text hidden size here)
    model = type("Model", (), {"config": AutoConfig.from_pretrained(tiny_qwen25vl_dir)})()
    hf_config.trainer_config_finalize(training_args, model, num_training_steps=10)
    filled = hf_config.config
    assert "auto" not in str(filled)
    parsed = DeepSpeedConfig(filled)
    assert parsed.zero_optimization_stage == stage
    assert parsed.train_micro_batch_size_per_gpu == 4 and parsed.gradient_accumulation_steps == 2
    assert parsed.gradient_clipping == 0.5
    assert (parsed.zero_config.offload_param is not None) == offload
