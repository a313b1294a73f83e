"""Tiny checkpoints load back offline with the auto classes, process images, run forward and generate."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

from vlmr1.models import get_family, tiny_config
from vlmr1.models.tokenizer import QWEN_SPECIAL_TOKENS

FIXTURES = {"qwen2_5_vl": "tiny_qwen25vl_dir", "qwen2_vl": "tiny_qwen2vl_dir", "qwen3_vl": "tiny_qwen3vl_dir"}


@pytest.fixture(params=sorted(FIXTURES))
def tiny(request):
    """(model_type, dir, processor, model) for each family."""
    path = request.getfixturevalue(FIXTURES[request.param])
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    return request.param, path, processor, model


def _image(w, h, color=(200, 30, 30)):
    return Image.new("RGB", (w, h), color)


def test_reload_classes_and_ids(tiny):
    model_type, path, processor, model = tiny
    family = get_family(model_type)
    assert type(model) is family.model_class
    assert model.config.model_type == model_type
    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    cfg = model.config
    assert cfg.image_token_id == ids["<|image_pad|>"] == processor.image_token_id
    assert cfg.video_token_id == ids["<|video_pad|>"] == processor.video_token_id
    assert cfg.vision_start_token_id == ids["<|vision_start|>"]
    assert cfg.vision_end_token_id == ids["<|vision_end|>"]
    assert cfg.eos_token_id == ids["<|im_end|>"] == tok.eos_token_id
    assert cfg.pad_token_id == ids["<|endoftext|>"] == tok.pad_token_id
    assert cfg.bos_token_id == ids["<|endoftext|>"]
    assert model.generation_config.eos_token_id == ids["<|im_end|>"]
    assert model.generation_config.pad_token_id == tok.pad_token_id
    assert cfg.get_text_config().vocab_size == len(tok)
    # The tokenizer alone also reloads offline, with the chat template.
    assert AutoTokenizer.from_pretrained(path).chat_template
    assert AutoConfig.from_pretrained(path).model_type == model_type


def test_chat_template_single_image(tiny):
    _, _, processor, model = tiny
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where is the red star?"}]},
    ]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Where is the red star?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    inputs = processor(images=[_image(640, 480)], text=[text], return_tensors="pt")
    merge = processor.image_processor.merge_size
    n_pad = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_pad == int(inputs["image_grid_thw"].prod()) // merge**2
    assert "mm_token_type_ids" in inputs  # needed for 3D (M-RoPE) positions, see families docstring
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits.shape == (1, inputs["input_ids"].shape[1], len(processor.tokenizer))
    assert torch.isfinite(out.logits).all()
    gen = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert gen.shape[1] <= inputs["input_ids"].shape[1] + 5


def test_chat_template_two_images_batched(tiny):
    _, _, processor, model = tiny
    two = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Left image,"}, {"type": "image"}]},
        {"role": "assistant", "content": [{"type": "text", "text": '{"bbox_2d": [1, 2, 3, 4]}'}]},
        {"role": "user", "content": "And now?"},
    ]
    one = [{"role": "user", "content": [{"type": "text", "text": "Only"}, {"type": "image"}]}]
    texts = [processor.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in (two, one)]
    assert texts[0].count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert texts[0].index("<|image_pad|>") < texts[0].index("Left image,") < texts[0].rindex("<|image_pad|>")
    assert texts[1].endswith("Only<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n<|im_start|>assistant\n")
    images = [[_image(640, 480), _image(100, 300)], [_image(333, 222)]]
    inputs = processor(images=images, text=texts, padding=True, return_tensors="pt")
    grids = inputs["image_grid_thw"]
    assert grids.shape == (3, 3)
    merge = processor.image_processor.merge_size
    per_row = (inputs["input_ids"] == model.config.image_token_id).sum(dim=1).tolist()
    expected = [int(grids[:2].prod(-1).sum()) // merge**2, int(grids[2].prod()) // merge**2]
    assert per_row == expected
    assert (inputs["attention_mask"][:, -1] == 1).all()  # left padding for generation
    with torch.no_grad():
        out = model(**inputs)
    assert torch.isfinite(out.logits).all()
    gen = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert gen.shape[0] == 2


def test_tokenizer_properties(tiny):
    _, _, processor, _ = tiny
    tok = processor.tokenizer
    for special in QWEN_SPECIAL_TOKENS:
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1, special
    ids = tok("1234", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["1", "2", "3", "4"]
    assert len(tok("x=3.14159, n=-42", add_special_tokens=False)["input_ids"]) >= 7 + 2
    for text in [
        '<think>The red star is left.</think>\n<answer>[{"bbox_2d": [12, 345, 678, 901], "label": "red star"}]</answer>',
        "café naïve Ünïcödé — 日本語のテキスト 🙂👍 e\u0301 \t tabs\nnewlines\r\n  spaces  ",
        '{"a": [1.5, -2e3, null, true], "b": "q\\"uote\\\\"}',
    ]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    assert 1000 <= len(tok) <= 2100
    assert tok.bos_token is None  # nothing is prepended, as with the Qwen Instruct tokenizers


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen2_vl", "qwen3_vl", "Qwen2.5-VL", "InternVL", "glm4v"])
def test_tiny_config_builds_in_code(arch):
    config = tiny_config(arch, hidden_size=32, num_attention_heads=2, text_layers=1, vision_layers=1)
    family = get_family(config)
    model = family.model_class(config)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params < 500_000
    patch = config.vision_config.patch_size  # InternVL's is (height, width)
    assert (patch if isinstance(patch, int) else patch[0]) == family.patch_size


@pytest.mark.parametrize("arch, family_base", [("qwen2_5_vl", 1e6), ("qwen3_vl", 5e6)])
def test_rope_theta_reaches_the_rotary_frequencies(arch, family_base):
    """A small rotary base makes the position rotations of a tiny head large enough to tell rows apart."""
    def inv_freq(**kw):
        config = tiny_config(arch, hidden_size=64, num_attention_heads=2, text_layers=1, vision_layers=1, **kw)
        model = get_family(config).model_class(config)
        return config.get_text_config().rope_parameters["rope_theta"], model.model.language_model.rotary_emb.inv_freq

    default_base, default_freq = inv_freq()
    base, freq = inv_freq(rope_theta=100)
    assert default_base == family_base and base == 100.0
    assert freq.min() > 100 * default_freq.min()


def test_unknown_arch():
    with pytest.raises(ValueError, match="qwen2_5_vl"):
        tiny_config("llava")


def test_default_system_prompt_template():
    from vlmr1.models import build_qwen_chat_template, train_tiny_tokenizer

    tok = train_tiny_tokenizer(chat_template=build_qwen_chat_template("You are a helpful assistant."))
    user = [{"role": "user", "content": "hi"}]
    assert tok.apply_chat_template(user, tokenize=False) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
    )
    own = [{"role": "system", "content": "S"}, *user]
    assert tok.apply_chat_template(own, tokenize=False).count("<|im_start|>system") == 1
