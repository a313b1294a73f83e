"""Batched greedy generation: deterministic, and equal to unbatched ``model.generate`` despite left padding."""

from pathlib import Path

import pytest
import torch
from transformers import AutoProcessor

from vlmr1.data.loading import build_dataset, load_sources, pair_sources
from vlmr1.evaluation import TransformersGenerator, evaluate
from vlmr1.evaluation.generation import row_conversation
from vlmr1.models import get_family
from vlmr1.tasks import get_task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MAX_NEW_TOKENS = 10


@pytest.fixture(scope="module")
def setup(tiny_qwen25vl_dir):
    family = get_family(str(tiny_qwen25vl_dir))
    processor = AutoProcessor.from_pretrained(tiny_qwen25vl_dir)
    model = family.load(tiny_qwen25vl_dir, dtype=torch.float32).eval()
    task = get_task("default")
    files = [str(EXAMPLES / f) for f in ("counting.jsonl", "text_only.jsonl", "multi_image.jsonl")]
    data = load_sources(pair_sources(files, [str(EXAMPLES / "images")] * 3), task.name)
    dataset = build_dataset(data, task.format_question, family.coordinate_frame(processor))
    # one-image, text-only (shorter: left-padded in the batch) and two-image prompts together
    rows = [dataset[i] for i in (0, 16, 24, 5, 17)]
    return model, processor, task, rows


def single_generate(model, processor, row, generator):
    """The reference: one prompt, no padding, plain model.generate with the same settings."""
    inputs = processor.apply_chat_template([row_conversation(row)], add_generation_prompt=True, tokenize=True,
                                           return_dict=True, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, **generator.generate_kwargs())
    return out[0, inputs["input_ids"].shape[1]:].tolist()


def until_stop(ids, stops):
    return ids[:next((k for k, t in enumerate(ids) if t in stops), len(ids))]


def test_batched_greedy_equals_unbatched_generate(setup):
    model, processor, _, rows = setup
    generator = TransformersGenerator(model, processor, MAX_NEW_TOKENS)
    inputs = generator.inputs(rows)
    assert "mm_token_type_ids" in inputs and "pixel_values" in inputs
    lengths = inputs["attention_mask"].sum(1)
    assert lengths.min() < lengths.max() and (inputs["attention_mask"][:, -1] == 1).all()  # padded on the left
    with torch.no_grad():
        batched = model.generate(**inputs, **generator.generate_kwargs())[:, inputs["input_ids"].shape[1]:].tolist()
    for row, ids in zip(rows, batched):
        single = single_generate(model, processor, row, generator)
        assert until_stop(ids, generator.stops) == until_stop(single, generator.stops), row["source"]
    texts = generator(rows)
    assert texts == [processor.tokenizer.decode(until_stop(ids, generator.stops), skip_special_tokens=True)
                     for ids in batched]


def test_generation_is_deterministic_and_independent_of_batch_size(setup):
    model, processor, task, rows = setup
    first = evaluate(model, processor, rows, task, batch_size=5, max_new_tokens=MAX_NEW_TOKENS, progress=False)
    again = evaluate(model, processor, rows, task, batch_size=2, max_new_tokens=MAX_NEW_TOKENS, progress=False)
    assert [p["prediction"] for p in first[1]] == [p["prediction"] for p in again[1]]
    assert first[0] == again[0]
    assert [p["source"] for p in first[1]] == [r["source"] for r in rows]


def test_evaluate_restores_training_mode(setup):
    model, processor, task, rows = setup
    model.train()
    try:
        evaluate(model, processor, rows[:1], task, max_new_tokens=2, progress=False)
        assert model.training
    finally:
        model.eval()


def test_stop_tokens_include_end_of_turn(setup):
    model, processor, _, _ = setup
    stops = TransformersGenerator(model, processor).stops
    assert processor.tokenizer.convert_tokens_to_ids("<|im_end|>") in stops
