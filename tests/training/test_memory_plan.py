"""`vlmr1 plan`: the arithmetic moves the way the libraries hold memory, released architectures are read from
``vlmr1.models.full_size``, bad inputs stop with a clear message before anything loads, and the plan matches a
measured peak on CPU. Parameter counts against the transformers classes: ``test_model_shape.py``."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest

from vlmr1.errors import UserError
from vlmr1.training.memory_plan import ModelShape, RunShape, plan_memory
from vlmr1.training.memory_report import main, parse_gpu_memory, read_deepspeed

ROOT = Path(__file__).resolve().parents[2]
QWEN_3B = {"model_type": "qwen2_5_vl", "tie_word_embeddings": True,
           "text_config": {"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 11008,
                           "num_hidden_layers": 36, "num_attention_heads": 16, "num_key_value_heads": 2},
           "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "out_hidden_size": 2048,
                             "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3}}
SHAPE = ModelShape.from_config(QWEN_3B)
RUN = RunShape(num_generations=8, batch=8, prompt_text=64, image_patches=1564, completion=512, nproc=8)


def plan(**change):
    return plan_memory(SHAPE, dataclasses.replace(RUN, **change))


def test_qwen25_vl_3b_has_its_published_size():
    assert SHAPE.total_params() == 3_754_622_976


def test_zero_stages_divide_the_states_by_the_processes():
    none, z1, z2, z3 = (plan(zero_stage=s).terms for s in (0, 1, 2, 3))
    assert z1["optimizer"] == pytest.approx(SHAPE.total_params() * 12 / 8)  # fp32 master + m + v, partitioned
    assert z2["gradients"] == pytest.approx(none["gradients"] / 8) and z1["gradients"] == none["gradients"]
    assert z3["weights"] == pytest.approx(none["weights"] / 8) and z2["weights"] == none["weights"]
    assert plan(zero_stage=3, offload_optimizer=True, offload_params=True).terms["optimizer"] == 0
    assert z3["generation_weights"] == pytest.approx(none["weights"] * 7 / 8)  # gathered to generate


def test_bf16_halves_the_weights_and_activations():
    fp32, bf16 = plan(bf16=False).terms, plan(bf16=True).terms
    assert bf16["weights"] * 2 == fp32["weights"]
    assert 0.4 < bf16["act_completion"] / fp32["act_completion"] < 0.75  # RMSNorm keeps an fp32 copy


def test_gradient_checkpointing_keeps_one_tensor_per_layer():
    off, on = plan(), plan(gradient_checkpointing=True)
    assert on.terms["act_completion"] < off.terms["act_completion"] / 20
    assert on.train_peak < off.train_peak


def test_shared_prefix_runs_the_prompt_once_per_group():
    stock, shared = plan(shared_prefix=False).terms, plan(shared_prefix=True).terms
    # the prompt pass feeds the completions through keys/values only: its last layer keeps just the input norm
    assert stock["act_prompt"] / shared["act_prompt"] == pytest.approx(8 * 36 / 35, rel=0.01)
    checkpointed = [plan(shared_prefix=s, gradient_checkpointing=True).terms["act_prompt"] for s in (False, True)]
    assert checkpointed[0] / checkpointed[1] == pytest.approx(8)  # layer inputs only, the last layer's too
    assert stock["act_vision"] / shared["act_vision"] == pytest.approx(8, rel=0.01)
    assert shared["act_completion"] > stock["act_completion"]  # rows hold their prompt's keys/values


def test_each_pass_adds_a_dense_embedding_gradient():
    """The shared prefix embeds twice (prompt pass, completion pass): the second dense (vocab x hidden) gradient is a
    transient added to the first; the stock forward embeds once (measured on CPU: bench_memory_plan.py)."""
    untied = dataclasses.replace(SHAPE, tied=False)
    tiny_batch = dict(batch=8, prompt_text=8, image_patches=0, completion=1, nproc=1)
    embedding = untied.vocab * untied.hidden * 2
    for shared, extra in ((True, embedding), (False, 0)):
        planned = plan_memory(untied, dataclasses.replace(RUN, shared_prefix=shared, **tiny_batch))
        held = planned.terms["weights"] + planned.terms["optimizer"] + planned.terms["gradients"]
        assert planned.train_peak - held == pytest.approx(extra, abs=0.02 * embedding), shared


def test_reference_model_only_with_beta_and_without_lora():
    assert plan(beta=0.0).terms["reference_model"] == 0
    assert plan(beta=0.04).terms["reference_model"] == plan().terms["weights"] * 1
    assert plan(beta=0.04, lora_r=64).terms["reference_model"] == 0
    lora = plan(lora_r=64).terms
    assert lora["gradients"] == SHAPE.lora_params(64) * 4 and lora["gradients"] < plan().terms["gradients"] / 10


def test_more_completion_tokens_more_memory_and_the_verdict(capsys):
    assert plan(completion=1024).train_peak > plan(completion=256).train_peak
    main(["--model", _config_dir(), "--gpu_memory", "24GB", "--per_device_train_batch_size", "8", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["fits"] is False and result["suggestions"][0]["saves_gib"] > 0
    main(["--model", _config_dir(), "--gpu_memory", "H200", "--gradient_checkpointing", "true",
          "--deepspeed", str(ROOT / "configs/deepspeed/zero3.json"), "--nproc", "8"])
    out = capsys.readouterr().out
    assert "FITS: peak" in out and "ZeRO-3" in out


_DIR = None


def _config_dir() -> str:
    global _DIR
    if _DIR is None:
        import tempfile

        _DIR = tempfile.mkdtemp()
        Path(_DIR, "config.json").write_text(json.dumps(QWEN_3B))
    return _DIR


@pytest.mark.parametrize("argv, words", [
    (["--gpu_memory", "H1000"], "unknown card"),
    (["--deepspeed", "missing.json"], "no such file"),
    (["--num_generations", "0"], "at least 1"),
    (["--image_size", "640by480"], "WIDTHxHEIGHT"),
    (["--per_device_train_batch_size", "3"], "multiple of --num_generations"),
])
def test_bad_inputs_stop_with_a_clear_message(argv, words):
    with pytest.raises(UserError, match=words):
        main(["--model", _config_dir(), *argv])


def test_bad_deepspeed_file_and_card_names(tmp_path):
    bad = tmp_path / "ds.json"
    bad.write_text('{"zero_optimization": {"stage": 5}}')
    with pytest.raises(UserError, match="stage must be 0-3"):
        read_deepspeed(str(bad))
    assert read_deepspeed(str(ROOT / "configs/deepspeed/zero3_offload.json")) == {
        "zero_stage": 3, "offload_optimizer": True, "offload_params": True}
    assert parse_gpu_memory("a100-40gb") == ("A100-40GB", 40 * 10**9)
    assert parse_gpu_memory("24GiB")[1] == 24 * 2**30


def test_released_architectures_by_their_like_names(capsys):
    """``--model`` takes exactly ``full_size.LIKE``'s names; InternVL3-2B's 640x480 image is 12 tiles and a
    thumbnail of 256 tokens each, and its InternViT runs once per group under the shared prefix."""
    from vlmr1.models.full_size import LIKE

    main(["--model", "internvl3_2b", "--image_size", "640x480", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["image_tokens"] == 13 * 256 and round(result["params"] / 1e9, 2) == 2.09
    assert result["terms_gib"]["act_vision"] > result["terms_gib"]["act_prompt"]  # 13 tiles x 1025 positions
    main(["--model", "internvl3_2b", "--image_size", "640x480", "--max_anyres_num", "1", "--json"])
    assert json.loads(capsys.readouterr().out)["image_tokens"] == 256
    main(["--model", "qwen2_5_vl_3b", "--image_size", "640x480", "--json"])
    assert json.loads(capsys.readouterr().out)["params"] == SHAPE.total_params()
    with pytest.raises(UserError, match="neither a local folder") as error:
        main(["--model", "internvl3_8b"])  # neither a name nor a folder with a config.json
    assert all(name in str(error.value) for name in LIKE)


# zai-org/GLM-4.1V-9B-Thinking config.json sizes (the Hub page gives 10.3B parameters)
GLM_41V_9B = {"model_type": "glm4v", "tie_word_embeddings": False,
              "text_config": {"vocab_size": 151552, "hidden_size": 4096, "intermediate_size": 13696,
                              "num_hidden_layers": 40, "num_attention_heads": 32, "num_key_value_heads": 2},
              "vision_config": {"depth": 24, "hidden_size": 1536, "intermediate_size": 13696, "out_hidden_size": 4096,
                                "num_heads": 12, "image_size": 336, "patch_size": 14, "spatial_merge_size": 2,
                                "temporal_patch_size": 2, "in_channels": 3, "attention_bias": False}}


def test_glm41v_from_a_local_config(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps(GLM_41V_9B))
    main(["--model", str(tmp_path), "--image_size", "640x480", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert round(result["params"] / 1e9, 1) == 10.3 and result["image_tokens"] == 391  # 644x476, as Qwen2-VL
    glm = ModelShape.from_config(GLM_41V_9B)
    qwen_like = dataclasses.replace(glm, text_norms=2)  # the two extra norms per layer save tensors too
    run = dataclasses.replace(RUN, nproc=1)
    assert plan_memory(glm, run).terms["act_completion"] > plan_memory(qwen_like, run).terms["act_completion"]


def bench_module():
    spec = importlib.util.spec_from_file_location("bench_memory_plan", ROOT / "benchmarks/bench_memory_plan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_plan_matches_the_measured_peak_on_cpu():
    """One real forward+backward (shared prefix, small widths) in one fresh process: the plan within 15% of its
    resident-memory peak and of the gradients it leaves."""
    bench = bench_module()
    (case,) = bench.cases(tiny=True, depths=[2], threads=1, only="shared")
    plan, measured = bench.planned(case), bench.measure(case)
    for term in ("gradients", "forward_backward"):
        assert plan[term] / measured[term] == pytest.approx(1, abs=0.15), (term, plan, measured)
    assert plan["params"] == measured["params"]
