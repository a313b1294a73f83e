"""Shared-prefix log-probs, gradients and generation equal TRL's stock path (tiny models, fp32, CPU).

Each case builds a GRPO batch as TRL does and runs ``VLMGRPOTrainer._get_per_token_logps_and_entropies`` twice,
``--shared_prefix false`` (TRL's own method) and ``true``: log-probs and entropies must agree within 1e-5 and every
parameter gradient of a weighted sum of both within 1e-4 relative. Every case runs for each family that opts in
(``Family.shared_prefix``): in ``make test`` for one family per code path (``FULL_IN_FAST``: M-RoPE with image grids,
1-D positions with tiles), the others under the ``slow`` marker; ``make test`` checks every other family with one
compact case (single and multi-image rows, greedy generation logits).
"""

import dataclasses
import logging

import pytest
import torch
from peft import LoraConfig
from shared_prefix_helpers import (
    FAMILY_DIRS,
    forward,
    grpo_batch,
    make_trainer,
    prompt_inputs,
    random_image,
    worst_relative_gradient_error,
)

from vlmr1.models import get_family, register_family, vision_module_prefixes
from vlmr1.training import shared_prefix as sp
from vlmr1.training.shared_prefix_generate import prefill_once_generate

# One family per code path of the shared prefix: M-RoPE positions with image grids (Qwen2.5-VL; GLM-4.1V, Qwen2-VL
# and Qwen3-VL take the same path), and 1-D positions with tiles (InternVL).
FULL_IN_FAST = ("qwen2_5_vl", "internvl")

# (text, image sizes, image seed): two prompts share text and image size but not pixels; lengths differ (padding).
SINGLE = [("How many red shapes are there?", [(112, 84)], 0), ("How many red shapes are there?", [(112, 84)], 10),
          ("Count the blue circles in this picture, then answer with a number.", [(140, 56)], 20)]
MULTI = [("Which image has more shapes?", [(84, 84), (112, 56)], 30), ("What is two plus two?", [], 0),
         ("Describe the first picture.", [(56, 112), (84, 84)], 40)]


@pytest.fixture(scope="module", params=[pytest.param(f, marks=() if f in FULL_IN_FAST else pytest.mark.slow)
                                        for f in sorted(FAMILY_DIRS)])
def model_dir(request):
    """The tiny checkpoint of each family that opts in to the shared prefix."""
    assert get_family(request.param).shared_prefix
    return request.getfixturevalue(FAMILY_DIRS[request.param])


def vision_params(names) -> bool:
    """Whether any of the parameter ``names`` is in the vision tower (or a separate projector)."""
    return any(".visual." in n or ".vision_tower." in n or ".multi_modal_projector." in n for n in names)


@pytest.fixture(scope="module")
def trainer(model_dir, tmp_path_factory):
    return make_trainer(model_dir, tmp_path_factory.mktemp("trainer"))


def assert_same(trainer, batch, batch_size=None, grad=True):
    stock = forward(trainer, batch, shared=False, grad=grad, batch_size=batch_size)
    shared = forward(trainer, batch, shared=True, grad=grad, batch_size=batch_size)
    mask = batch["attention_mask"][:, -batch["logits_to_keep"]:].bool()
    assert (stock[0] - shared[0]).abs().max() <= 1e-5
    assert (stock[1] - shared[1])[mask].abs().max() <= 1e-5
    assert torch.equal(stock[0] == 0, shared[0] == 0)  # padding after EOS scores 0 in both
    if grad:
        assert worst_relative_gradient_error(stock[2], shared[2]) <= 1e-4
    return stock, shared


TEXT = [("What is two plus two?", [], 0), ("Name three colours that appear in a rainbow.", [], 0)]


@pytest.mark.parametrize("prompts", [SINGLE, MULTI, TEXT], ids=["single_image", "multi_image_and_text_only",
                                                                 "text_only"])
def test_logps_and_gradients_match_stock(trainer, prompts):
    batch = grpo_batch(trainer.processing_class, prompts, group_size=3, completion_len=8)
    assert batch["attention_mask"][:, 0].min() == 0  # prompts of different lengths: left padding
    stock, _ = assert_same(trainer, batch)
    assert any("language_model" in n for n in stock[2])
    assert vision_params(stock[2]) == (prompts is not TEXT)
    if getattr(trainer.model.config.vision_config, "deepstack_visual_indexes", None) and prompts is not TEXT:
        # Qwen3-VL: DeepStack features reach the completions only through the prompt's keys/values
        assert any("deepstack_merger" in n for n in stock[2])


def test_chunked_no_grad_call_matches_stock(trainer):
    # Old/ref log-probs: no grad, chunks of whole groups of at most batch_size rows. With groups of 2 and
    # batch_size 3 each group is a chunk, one of them text-only (TRL's own 3-row chunks all hold an image: TRL
    # 1.16 fails on an image-less chunk of an image batch).
    batch = grpo_batch(trainer.processing_class, SINGLE + MULTI, group_size=2, completion_len=6, seed=3,
                       shuffle=False)
    assert_same(trainer, batch, batch_size=3, grad=False)


def test_gradient_checkpointing_matches_stock(model_dir, tmp_path):
    trainer = make_trainer(model_dir, tmp_path)
    trainer.model.activation_checkpointing_enable()  # what Trainer.train does; non-reentrant by default
    trainer.model.train()  # checkpointing only acts in training mode
    assert_same(trainer, grpo_batch(trainer.processing_class, SINGLE, group_size=3, completion_len=8))


def test_frozen_vision_matches_stock(model_dir, tmp_path):
    trainer = make_trainer(model_dir, tmp_path, freeze_vision=True)
    stock, _ = assert_same(trainer, grpo_batch(trainer.processing_class, MULTI, group_size=3, completion_len=8))
    assert stock[2] and not vision_params(stock[2])
    assert vision_module_prefixes(trainer.model)  # the tower is there, only frozen


def test_lora_matches_stock(model_dir, tmp_path):
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=get_family(str(model_dir)).lora_target_modules(),
                      task_type="CAUSAL_LM", init_lora_weights=False)  # non-zero B: the adapters change the outputs
    trainer = make_trainer(model_dir, tmp_path, peft_config=lora)
    stock, _ = assert_same(trainer, grpo_batch(trainer.processing_class, SINGLE, group_size=3, completion_len=8))
    assert stock[2] and all("lora_" in n for n in stock[2])


def test_generation_prefills_each_prompt_once_and_samples_as_stock(trainer, monkeypatch):
    prefixes = []
    run_prefix = sp.run_prefix
    monkeypatch.setattr(sp, "run_prefix", lambda backbone, ids, *a, **k: prefixes.append(ids.shape) or
                        run_prefix(backbone, ids, *a, **k))
    prompts = [[{"role": "user", "content": [{"type": "image", "image": random_image(sizes[0], seed)},
                                             {"type": "text", "text": text}]}]
               for text, sizes, seed in SINGLE for _ in range(4)]
    prompt_ids, images, fields = trainer._tokenize_prompts(prompts)
    results = {}
    for shared in (False, True):
        trainer.args.shared_prefix = shared
        torch.manual_seed(7)
        results[shared] = trainer._generate_single_turn(prompt_ids, images, fields, num_generations=4)
    assert len(prefixes) == 1 and prefixes[0][0] == 3  # three distinct prompts, prefilled once each
    assert results[True] == results[False]  # same logits, same RNG draws: the same completions
    assert len({tuple(c) for c in results[True][0][:4]}) > 1  # and they are sampled, not copies


def test_generation_logits_match_stock(trainer):
    assert_same_greedy_logits(trainer)


def assert_same_greedy_logits(trainer):
    # Sampling hides small logit errors; greedy decoding's per-step logits do not (padded, multi-image, text-only).
    model = trainer.model
    inputs, images = prompt_inputs(trainer.processing_class, SINGLE + MULTI, group_size=2)
    settings = dict(max_new_tokens=6, do_sample=False, output_logits=True, return_dict_in_generate=True)
    stock = model.generate(**inputs, **settings)
    fallbacks = []
    with prefill_once_generate(model, [len(i) for i in images], note=fallbacks.append):
        shared = model.generate(**inputs, **settings)
    assert not fallbacks
    assert torch.equal(stock.sequences, shared.sequences)
    assert max((a - b).abs().max().item() for a, b in zip(stock.logits, shared.logits)) <= 1e-5


@pytest.mark.parametrize("family", sorted(set(FAMILY_DIRS) - set(FULL_IN_FAST)))
def test_every_other_family_matches_stock(family, request, tmp_path):
    """One compact case per family outside ``FULL_IN_FAST``: single- and multi-image (and text-only) rows in one
    batch, log-probs and gradients, then greedy generation logits. The whole matrix runs under ``slow``."""
    trainer = make_trainer(request.getfixturevalue(FAMILY_DIRS[family]), tmp_path)
    stock, _ = assert_same(trainer, grpo_batch(trainer.processing_class, SINGLE[1:] + MULTI, group_size=2,
                                               completion_len=6))
    assert vision_params(stock[2])
    if getattr(trainer.model.config.vision_config, "deepstack_visual_indexes", None):
        assert any("deepstack_merger" in n for n in stock[2])  # Qwen3-VL: DeepStack reaches the completions
    assert_same_greedy_logits(trainer)


def opt_out(family: str, request) -> None:
    """Register ``family`` as not supporting the shared prefix for this test."""
    registered = get_family(family)
    register_family(dataclasses.replace(registered, shared_prefix=False))
    request.addfinalizer(lambda: register_family(registered))


@pytest.mark.parametrize("settings, reason", [
    ({"gradient_checkpointing_kwargs": {"use_reentrant": True}}, "reentrant"),
    ({}, "'qwen2_5_vl' family does not support it"),
], ids=["reentrant_checkpointing", "family_opts_out"])
def test_unsupported_settings_fall_back_with_one_log_line(settings, reason, tiny_qwen25vl_dir, request, tmp_path,
                                                          caplog):
    trainer = make_trainer(tiny_qwen25vl_dir, tmp_path, **settings)
    if settings:
        trainer.model.activation_checkpointing_enable(trainer.args.gradient_checkpointing_kwargs)
        trainer.model.train()
    else:
        opt_out("qwen2_5_vl", request)
    batch = grpo_batch(trainer.processing_class, SINGLE, group_size=2, completion_len=4)
    with caplog.at_level(logging.INFO, logger="vlmr1.training.trainer"):
        for _ in range(2):
            forward(trainer, batch, shared=True, expect_shared=False)
    lines = [r.getMessage() for r in caplog.records if reason in r.getMessage()]
    assert len(lines) == 1 and "stock path" in lines[0]


def test_preallocated_generation_cache_grows_as_the_dynamic_cache():
    from transformers.cache_utils import DynamicLayer

    from vlmr1.training.shared_prefix_generate import _PreallocatedLayer

    gen = torch.Generator().manual_seed(0)
    keys, values = torch.randn(3, 2, 5, 4, generator=gen), torch.randn(3, 2, 5, 4, generator=gen)
    ours, stock = _PreallocatedLayer(keys, values, capacity=2), DynamicLayer()
    stock.update(keys, values)
    for step in range(5):  # beyond the capacity: a fresh buffer
        if step == 3:  # reordered from outside, as beam search does
            for layer in (ours, stock):
                layer.batch_select_indices(torch.tensor([2, 0, 1]))
        new = torch.randn(3, 2, 1, 4, generator=gen), torch.randn(3, 2, 1, 4, generator=gen)
        assert all(torch.equal(a, b) for a, b in zip(ours.update(*new), stock.update(*new)))
    assert ours.get_seq_length() == stock.get_seq_length() == 10
