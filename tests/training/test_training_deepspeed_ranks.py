"""``vision_in_every_forward`` on one process: what each forward runs, and that results do not change."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoProcessor

from vlmr1.models import get_family
from vlmr1.training.deepspeed_ranks import encode_blank_image, vision_in_every_forward


# InternVL runs its blank tile; GLM-4.1V takes the Qwen grid path (slow only)
@pytest.fixture(scope="module", params=["tiny_qwen25vl_dir", "tiny_qwen3vl_dir", "tiny_internvl_dir",
                                        pytest.param("tiny_glm4v_dir", marks=pytest.mark.slow)])
def model_and_processor(request):
    path = request.getfixturevalue(request.param)
    model = get_family(AutoConfig.from_pretrained(path)).load(str(path), dtype=torch.float32)
    return model.eval(), AutoProcessor.from_pretrained(path)


def _inputs(processor, with_image: bool):
    content = [{"type": "text", "text": "What is 2 + 3?"}]
    images = None
    if with_image:
        content = [{"type": "image"}] + content
        images = [Image.new("RGB", (56, 56), (200, 40, 40))]
    text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    return processor(text=[text], images=images, return_tensors="pt")


def _count_vision_calls(model):
    calls = []
    handle = get_family(model).vision_tower(model.model).register_forward_hook(lambda *a: calls.append(1))
    return calls, handle


@pytest.mark.parametrize("with_image", [False, True])
def test_every_forward_runs_the_vision_tower_once_and_the_result_is_unchanged(model_and_processor, with_image):
    model, processor = model_and_processor
    inputs = _inputs(processor, with_image)
    plain = model(**inputs).logits
    calls, handle = _count_vision_calls(model)
    with vision_in_every_forward(model.model):
        hooked = model(**inputs).logits
        model(**inputs)
    handle.remove()
    assert calls == [1, 1]  # once per forward: the blank image only where the batch had none
    torch.testing.assert_close(hooked, plain, rtol=0, atol=0)
    model(**inputs)
    assert calls == [1, 1]  # the hooks are gone after the block


def test_text_only_backward_reaches_the_vision_weights(model_and_processor):
    model, processor = model_and_processor
    model.zero_grad()
    with vision_in_every_forward(model.model):
        model(**_inputs(processor, False)).logits.sum().backward()
    prefixes = get_family(model).vision_module_prefixes(model)  # InternVL: its projector too
    grads = [p.grad for prefix in prefixes for p in model.get_submodule(prefix).parameters() if p.requires_grad]
    assert grads and all(g is not None and not g.any() for g in grads)  # reached, and zero
    model.zero_grad()


def test_encode_blank_image_runs_the_vision_tower(model_and_processor):
    model, _ = model_and_processor
    calls, handle = _count_vision_calls(model)
    encode_blank_image(model.model)
    handle.remove()
    assert calls == [1]
