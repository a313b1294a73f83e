"""DeepSpeed: the shipped configs parse once the trainer fills their "auto" values, and ZeRO-2/3 train on 2 CPU
processes with a text-only batch on one rank."""

import json
from pathlib import Path

import pytest
from torchrun_helpers import losses, records, torchrun_train

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


# Two CPU processes under DeepSpeed (gloo), one with a text-only batch while the other has images: without
# `vlmr1.training.deepspeed_ranks` the ranks issue different collectives and the run aborts (gloo) or hangs (NCCL).
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MIXED = [EXAMPLES / "counting.jsonl", EXAMPLES / "text_only.jsonl"]


def _assert_mixed_step(record):
    """Some step had images on one rank and only text on the other (else the test proves nothing)."""
    seen = records(record)
    text_only = {(r["step"], rank): all(i.startswith("sum-") for i in r["ids"]) for rank in (0, 1) for r in seen[rank]}
    steps = {step for step, _ in text_only}
    assert any(text_only[(s, 0)] != text_only[(s, 1)] for s in steps), seen


@pytest.mark.slow  # torchrun on 2 CPU processes: `make test-slow`
@pytest.mark.parametrize("config, arch, extra", [
    ("zero2", "qwen2_5_vl", []),
    ("zero3", "qwen2_5_vl", ["--ds3_gather_for_generation", "false"]),
    ("zero3", "qwen3_vl", []),
    ("zero3", "glm4v", []),
    ("zero3", "internvl", ["--ds3_gather_for_generation", "false"]),
], ids=["zero2", "zero3-no-gather-for-generation", "zero3-qwen3vl", "zero3-glm4v",
        "zero3-internvl-no-gather-for-generation"])  # ZeRO-3's default path on Qwen2.5-VL and InternVL: below
def test_deepspeed_trains_with_text_only_batches_on_one_rank(config, arch, extra, tmp_path, request):
    model_dir = request.getfixturevalue({"qwen2_5_vl": "tiny_qwen25vl_dir", "qwen3_vl": "tiny_qwen3vl_dir",
                                         "internvl": "tiny_internvl_dir", "glm4v": "tiny_glm4v_dir"}[arch])
    record = tmp_path / "record"
    record.mkdir()
    done = torchrun_train(model_dir, tmp_path / "run", MIXED, [EXAMPLES / "images"] * 2, record, 3,
                          "--deepspeed", str(CONFIGS / f"{config}.json"), "--save_steps", "100", *extra,
                          batch=2)
    if extra:  # without gathered weights, generation goes through the per-module path that needs the blank image
        assert "ZeRO-3 without --ds3_gather_for_generation" in done.stderr
    elif config == "zero3":  # every forward and rollout on both ranks shares prompts (Qwen3-VL: DeepStack too)
        assert "shared prefix off" not in done.stderr, done.stderr[-4000:]
    _assert_mixed_step(record)
    assert len(losses(tmp_path / "run")) == 3


@pytest.mark.slow  # torchrun on 2 CPU processes: `make test-slow`
@pytest.mark.parametrize("fixture", ["tiny_qwen25vl_dir", "tiny_internvl_dir"])  # M-RoPE grids; 1-D tiles
def test_zero3_shared_prefix_matches_stock_saves_whole_weights_and_resumes(tmp_path, fixture, request):
    """ZeRO-3's default path (shared prefix, generation on gathered weights) learns as TRL's stock path does."""
    from transformers import AutoModelForImageTextToText

    model_dir = request.getfixturevalue(fixture)
    zero3 = ["--deepspeed", str(CONFIGS / "zero3.json"), "--save_steps", "2"]
    runs = {}
    for name, extra in (("shared", []), ("stock", ["--shared_prefix", "false"])):
        record = tmp_path / f"record_{name}"
        record.mkdir()
        torchrun_train(model_dir, tmp_path / name, MIXED, [EXAMPLES / "images"] * 2, record, 2,
                       *zero3, *extra, batch=2)
        _assert_mixed_step(record)
        runs[name] = losses(tmp_path / name)
    assert len(runs["shared"]) == len(runs["stock"]) == 2
    for (loss, norm), (stock_loss, stock_norm) in zip(runs["shared"], runs["stock"]):
        assert float(loss) == pytest.approx(float(stock_loss), abs=1e-5)
        assert float(norm) == pytest.approx(float(stock_norm), rel=1e-3)

    if fixture != "tiny_qwen25vl_dir":  # saving and resuming do not depend on the family: once is enough
        return
    checkpoint = tmp_path / "shared" / "checkpoint-2"
    model = AutoModelForImageTextToText.from_pretrained(checkpoint)  # whole 16-bit weights, gathered at save
    assert all(p.numel() > 0 for p in model.parameters())
    done = torchrun_train(model_dir, tmp_path / "shared", MIXED, [EXAMPLES / "images"] * 2,
                          tmp_path / "record_shared", 3, *zero3, batch=2)
    assert "resuming from" in done.stderr and "checkpoint-2" in done.stderr
    state = json.loads((tmp_path / "shared" / "checkpoint-3" / "trainer_state.json").read_text())
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3]
