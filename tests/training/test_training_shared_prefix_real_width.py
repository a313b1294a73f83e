"""Shared-prefix log-probs equal TRL's stock path at the released widths, on real-size images (CPU).

The tiny models of ``test_training_shared_prefix.py`` leave out what only real sizes exercise: Qwen2.5-VL-3B's
width 2048 with 16 query / 2 key-value heads, its 1280-wide vision tower attending in 112-px windows and in full
(``vlmr1.models.full_size``: the released config with 2 text layers and 2 vision blocks, one of each kind), the
151936-row vocabulary, a 640x480 image's 391 image tokens on an M-RoPE grid, and bf16. One GRPO group of a
two-image prompt (640x480 and 320x240) runs through ``VLMGRPOTrainer._get_per_token_logps_and_entropies`` with
``--shared_prefix`` off (TRL's own method) and on: within 1e-5 in fp32; in bf16, no further from the fp32 result
than the stock bf16 path is. Qwen3-VL-4B (width 2560, 32 / 8 heads, DeepStack) and InternVL3-2B (a 448-px tile of
256 tokens) are checked in fp32 on one 640x480 image. Log-probs only (no backward): at these widths a forward of a group takes seconds.
"""

import copy

import pytest
import torch
from shared_prefix_helpers import forward, grpo_batch, trainer_around

from vlmr1.models import get_family
from vlmr1.models.full_size import real_width_model

pytestmark = pytest.mark.slow

# (text, image sizes, image seed): a real-size photo and a thumbnail-size second image in one prompt
TWO_IMAGES = [("Which of the two pictures shows more red shapes? Count them in each picture first.",
               [(640, 480), (320, 240)], 0)]
ONE_IMAGE = [("How many red shapes are there in this picture?", [(640, 480)], 1)]


def logps(trainer, batch, shared: bool, model=None) -> torch.Tensor:
    return forward(trainer, batch, shared=shared, grad=False, model=model)[0].float()


def completion_mask(batch) -> torch.Tensor:
    return batch["attention_mask"][:, -batch["logits_to_keep"]:].bool()


@pytest.fixture(scope="module")
def qwen25_3b(tmp_path_factory):
    """Qwen2.5-VL-3B's widths with 2 text layers and vision blocks [window, full] in fp32, a trainer around it, the
    two-image group, and the stock fp32 log-probs of that group (the reference of both tests)."""
    model, processor = real_width_model("qwen2_5_vl_3b", text_layers=2, vision_layers=2, seed=0)
    vision = model.config.vision_config
    assert vision.fullatt_block_indexes == [1] and vision.window_size == 112 and vision.hidden_size == 1280
    assert model.config.text_config.num_key_value_heads == 2
    trainer = trainer_around(model.eval(), processor, tmp_path_factory.mktemp("real_width"))
    batch = grpo_batch(processor, TWO_IMAGES, group_size=2, completion_len=8)
    image_tokens = (batch["input_ids"][0] == model.config.image_token_id).sum()
    assert image_tokens == 391 + 99  # 644x476 and 308x252 after the real resize, 2x2 patches a token
    return trainer, batch, logps(trainer, batch, shared=False)


def test_qwen25_3b_fp32_log_probs_match_stock_within_1e5(qwen25_3b):
    trainer, batch, stock = qwen25_3b
    shared = logps(trainer, batch, shared=True)
    assert torch.equal(stock == 0, shared == 0)  # padding after EOS scores 0 in both
    assert stock[completion_mask(batch)].min() < -5  # log-probs over 151936 tokens, not zeros
    assert (stock - shared).abs().max() <= 1e-5


def test_qwen25_3b_bf16_log_probs_as_close_to_fp32_as_stock(qwen25_3b):
    trainer, batch, reference = qwen25_3b
    bf16 = copy.deepcopy(trainer.model).to(torch.bfloat16)
    stock, shared = logps(trainer, batch, False, model=bf16), logps(trainer, batch, True, model=bf16)
    mask = completion_mask(batch)
    stock_error, shared_error = (stock - reference)[mask].abs(), (shared - reference)[mask].abs()
    assert 0 < stock_error.max() < 0.5  # bf16 rounding shows, and stays small
    assert shared_error.max() <= 1.5 * stock_error.max() and shared_error.mean() <= 1.5 * stock_error.mean()


@pytest.mark.parametrize("like, prompts, max_tiles", [("qwen3_vl_4b", ONE_IMAGE, None),
                                                      ("internvl3_2b", ONE_IMAGE, 1)])
def test_other_families_fp32_log_probs_match_stock_within_1e5(like, prompts, max_tiles, tmp_path):
    """Qwen3-VL-4B (300 image tokens, DeepStack into both layers) and InternVL3-2B (one 448-px tile of 256 tokens:
    the released tile size; more tiles per image run in the tiny tests) on one 640x480 image."""
    model, processor = real_width_model(like, text_layers=2, vision_layers=2, seed=0)
    assert getattr(model.config.vision_config, "deepstack_visual_indexes", [0, 1]) == [0, 1]
    if max_tiles is not None:
        get_family(model).set_image_limits(processor, max_tiles=max_tiles)
    trainer = trainer_around(model.eval(), processor, tmp_path)
    batch = grpo_batch(processor, prompts, group_size=2, completion_len=8)
    image_tokens = (batch["input_ids"][0] == model.config.image_token_id).sum()
    assert image_tokens == {"qwen3_vl_4b": 300, "internvl3_2b": 256}[like]
    stock, shared = logps(trainer, batch, shared=False), logps(trainer, batch, shared=True)
    assert stock[completion_mask(batch)].min() < -5
    assert (stock - shared).abs().max() <= 1e-5
