"""Helpers for the shared-prefix tests: a tiny trainer, batches shaped as TRL builds them, and one forward(+backward).

A batch is what ``_generate_and_score_completions`` hands to ``_get_per_token_logps_and_entropies``: prompts
left-padded by the processor, completions right-padded after their EOS, ``mm_token_type_ids`` extended with zeros
over the completions, flat ``pixel_values``/``image_grid_thw`` with ``num_images`` per row, rows shuffled as TRL
shuffles them before the training forward.
"""

from __future__ import annotations

import numpy as np
import torch
from datasets import Dataset
from PIL import Image
from transformers import AutoProcessor

from vlmr1.models import get_family
from vlmr1.training import shared_prefix as sp
from vlmr1.training.config import VLMR1GRPOConfig
from vlmr1.training.trainer import VLMGRPOTrainer

# Every family whose ``Family.shared_prefix`` is on, and the conftest fixture of its tiny checkpoint.
FAMILY_DIRS = {"qwen2_5_vl": "tiny_qwen25vl_dir", "qwen2_vl": "tiny_qwen2vl_dir", "qwen3_vl": "tiny_qwen3vl_dir",
               "internvl": "tiny_internvl_dir", "glm4v": "tiny_glm4v_dir"}


def constant_reward(completions, **kwargs):
    return [0.0] * len(completions)


def make_trainer(model_dir, output_dir, *, peft_config=None, freeze_vision=False, **config) -> VLMGRPOTrainer:
    """A VLMGRPOTrainer around the tiny fp32 model in ``model_dir`` (sdpa attention, CPU)."""
    family = get_family(str(model_dir))
    model = family.load(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    if freeze_vision:
        family.freeze_vision(model)
    return trainer_around(model, AutoProcessor.from_pretrained(model_dir), output_dir, peft_config=peft_config,
                          **config)


def trainer_around(model, processor, output_dir, *, peft_config=None, **config) -> VLMGRPOTrainer:
    """A VLMGRPOTrainer around a model object (CPU, fp32 settings; the model keeps its own dtype)."""
    settings = dict(output_dir=str(output_dir), per_device_train_batch_size=4, num_generations=2,
                    max_completion_length=8, report_to="none", gradient_checkpointing=False, bf16=False,
                    temperature=0.7, seed=0)
    args = VLMR1GRPOConfig(**{**settings, **config})
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": "hi"}]}] * 4)
    return VLMGRPOTrainer(model=model, reward_funcs=[constant_reward], args=args, train_dataset=dataset,
                          processing_class=processor, peft_config=peft_config)


def random_image(size: tuple[int, int], seed: int) -> Image.Image:
    width, height = size
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def prompt_inputs(processor, prompts, group_size: int, order=None):
    """The processor's (left-padded) inputs for each prompt repeated ``group_size`` times, rows in ``order``.

    Returns the inputs and each row's images.
    """
    rows = [(text, [random_image(size, image_seed + i) for i, size in enumerate(sizes)])
            for text, sizes, image_seed in prompts for _ in range(group_size)]
    if order is not None:
        rows = [rows[i] for i in order]
    messages = [[{"role": "user", "content": [*[{"type": "image"} for _ in images], {"type": "text", "text": text}]}]
                for text, images in rows]
    texts = [processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in messages]
    images = [images for _, images in rows]
    inputs = processor(text=texts, images=images if any(images) else None, padding=True, return_tensors="pt")
    return inputs, images


def grpo_batch(processor, prompts, group_size: int, completion_len: int, seed: int = 0, shuffle: bool = True) -> dict:
    """A GRPO batch: each prompt (text, [(width, height) per image], image seed) repeated ``group_size`` times.

    Completions are random text tokens ending in EOS at a random place (padding after it), one or two without EOS.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(prompts) * group_size) if shuffle else None
    inputs, images = prompt_inputs(processor, prompts, group_size, order)
    has_images = any(images)

    tokenizer = processor.tokenizer
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    completions = torch.as_tensor(rng.integers(3, min(tokenizer.all_special_ids), (len(images), completion_len)))
    completion_mask = torch.ones_like(completions)
    for row in range(len(images)):
        end = int(rng.integers(0, completion_len + 1))  # == completion_len: truncated, no EOS
        if end < completion_len:
            completions[row, end] = eos
            completions[row, end + 1:] = pad
            completion_mask[row, end + 1:] = 0
    batch = {
        "input_ids": torch.cat([inputs["input_ids"], completions], dim=1),
        "attention_mask": torch.cat([inputs["attention_mask"], completion_mask], dim=1),
        "logits_to_keep": completion_len,
    }
    if "mm_token_type_ids" in inputs:  # M-RoPE families
        batch["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(completions)], dim=1)
    if has_images:
        batch.update(pixel_values=inputs["pixel_values"], num_images=[len(i) for i in images])
        if "image_grid_thw" in inputs:
            batch["image_grid_thw"] = inputs["image_grid_thw"]
        else:  # InternVL's tiles, as TRL passes them (it does not when every image is one tile)
            batch["num_tiles"] = tiles_per_row(processor, inputs["input_ids"])
    return batch


def tiles_per_row(processor, prompt_ids) -> list[int]:
    """InternVL: the tiles of each row's images, counted from its image tokens."""
    image_tokens = (prompt_ids == processor.image_token_id).sum(1)
    return (image_tokens // processor.image_seq_length).tolist()


def forward(trainer, batch: dict, shared: bool, grad: bool = True, batch_size=None, model=None, expect_shared=None):
    """Log-probs, entropies and parameter gradients of a fixed weighted sum of both, with ``--shared_prefix shared``.

    Fails unless the shared path ran exactly when ``expect_shared`` (default: ``shared``).
    """
    trainer.args.shared_prefix = shared
    model = model if model is not None else trainer.model
    model.zero_grad(set_to_none=True)
    batch = dict(batch)
    input_ids, attention_mask, logits_to_keep = batch.pop("input_ids"), batch.pop("attention_mask"), \
        batch.pop("logits_to_keep")
    calls = []
    shared_logps = sp.shared_prefix_logps
    sp.shared_prefix_logps = lambda *a, **k: calls.append(1) or shared_logps(*a, **k)
    try:
        with torch.set_grad_enabled(grad):
            logps, entropies, _ = trainer._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size, compute_entropy=True,
                **batch)
    finally:
        sp.shared_prefix_logps = shared_logps
    expect_shared = shared if expect_shared is None else expect_shared
    assert len(calls) == int(expect_shared), f"the {'shared' if expect_shared else 'stock'} path was expected"
    grads = {}
    if grad:
        weights = torch.randn(logps.shape, generator=torch.Generator().manual_seed(1))
        mask = attention_mask[:, -logits_to_keep:]
        ((logps * weights * mask).sum() + (entropies * weights.flip(0) * mask).sum()).backward()
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return logps.detach(), entropies.detach(), grads


def worst_relative_gradient_error(reference: dict, other: dict) -> float:
    assert reference.keys() == other.keys() and reference
    return max(((reference[n] - other[n]).norm() / reference[n].norm().clamp_min(1e-30)).item() for n in reference)
