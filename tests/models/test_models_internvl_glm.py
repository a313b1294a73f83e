"""The InternVL and GLM-4.1V adapters: tiny checkpoints reload offline as the real classes with the family's tokens and
chat format, and the run's image limits (``--max_anyres_num`` tiles, ``--max_pixels`` area) reach the processor."""

from __future__ import annotations

import logging

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from vlmr1.models import get_family
from vlmr1.models.loading import load_processor

FIXTURES = {"internvl": "tiny_internvl_dir", "glm4v": "tiny_glm4v_dir"}
# A single-image prompt as each family's released chat template renders it.
RENDERED = {
    "internvl": "<|im_start|>user\n<IMG_CONTEXT>\nWhere is the red star?<|im_end|>\n<|im_start|>assistant\n",
    "glm4v": "[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>Where is the red star?<|assistant|>\n",
}
CLASSES = {"internvl": ("InternVLForConditionalGeneration", "InternVLProcessor", "GotOcr2ImageProcessor"),
           "glm4v": ("Glm4vForConditionalGeneration", "Glm4vProcessor", "Glm4vImageProcessor")}


@pytest.fixture(scope="module", params=sorted(FIXTURES))
def tiny(request):
    """(model_type, dir, processor, model) for each family."""
    path = request.getfixturevalue(FIXTURES[request.param])
    return request.param, path, AutoProcessor.from_pretrained(path), AutoModelForImageTextToText.from_pretrained(path)


def _image(w, h):
    return Image.new("RGB", (w, h), (200, 30, 30))


def test_reloads_as_the_real_classes_with_the_familys_tokens(tiny):
    model_type, _, processor, model = tiny
    assert (type(model).__name__, type(processor).__name__, type(processor.image_processor).__name__) == \
        CLASSES[model_type]
    assert model.config.model_type == model_type and get_family(model).model_type == model_type
    tokenizer = processor.tokenizer
    assert model.config.image_token_id == processor.image_token_id
    assert model.config.get_text_config().vocab_size == len(tokenizer)
    assert tokenizer.eos_token_id in torch.tensor(model.generation_config.eos_token_id).flatten().tolist()
    for token in get_family(model_type).chat_tokens().special:
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1, token
    text = '<think>so</think><answer>[{"bbox_2d": [12, 345, 678, 901]}]</answer>'
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_chat_template_image_tokens_forward_and_generate(tiny):
    model_type, _, processor, model = tiny
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where is the red star?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == RENDERED[model_type]
    images = [[_image(112, 84), _image(56, 112)], []]
    texts = [processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "image"},
                                                                            {"type": "text", "text": "Two?"}]}],
                                           tokenize=False, add_generation_prompt=True),
             processor.apply_chat_template([{"role": "user", "content": "Text only."}], tokenize=False,
                                           add_generation_prompt=True)]
    inputs = processor(text=texts, images=images, padding=True, return_tensors="pt")
    image_tokens = (inputs["input_ids"] == model.config.image_token_id).sum(1).tolist()
    if model_type == "internvl":  # tiles of image_seq_length tokens each
        assert image_tokens[0] == inputs["pixel_values"].shape[0] * processor.image_seq_length and image_tokens[1] == 0
    else:  # merged patches, with M-RoPE token types
        assert image_tokens == [int(inputs["image_grid_thw"].prod(-1).sum()) // 4, 0]
        assert inputs["mm_token_type_ids"].sum() == image_tokens[0]
    assert (inputs["attention_mask"][:, -1] == 1).all()  # left padding for generation
    with torch.no_grad():
        assert torch.isfinite(model(**inputs).logits).all()
    assert model.generate(**inputs, max_new_tokens=3, do_sample=False).shape[0] == 2


def test_internvl_max_anyres_num_sets_the_tile_limit(tiny_internvl_dir, caplog):
    _, default = load_processor(str(tiny_internvl_dir))
    with caplog.at_level(logging.INFO, logger="vlmr1.models.families"):
        family, processor = load_processor(str(tiny_internvl_dir), max_pixels=12544, max_tiles=2)
    assert "mean nothing for InternVL" in caplog.text  # pixel limits are said to do nothing, once
    assert family.image_settings(processor) == {"max_tiles": 2, "tile_size": 56}
    wide = [_image(224, 56)]  # 4:1: four tiles and a thumbnail at the default limit, two and a thumbnail at 2
    count = lambda p: int(p(text=["<IMG_CONTEXT>"], images=wide, return_tensors="pt")["pixel_values"].shape[0])  # noqa: E731
    assert (count(default), count(processor)) == (5, 3)
    assert family.coordinate_frame(processor).input_size((640, 480)) == (1000.0, 1000.0)
    with pytest.raises(ValueError, match="at least 1 tile"):
        load_processor(str(tiny_internvl_dir), max_tiles=0)


def test_glm_max_pixels_bounds_the_image_area_as_for_qwen(tiny_glm4v_dir, caplog):
    # GLM-4.1V's processor counts its size limits over two frames; --max_pixels still means the image's area
    with caplog.at_level(logging.INFO, logger="vlmr1.models.families"):
        family, processor = load_processor(str(tiny_glm4v_dir), min_pixels=3136, max_pixels=12544, max_tiles=3)
    assert "--max_anyres_num means nothing for glm4v" in caplog.text
    assert family.image_settings(processor) == {"min_pixels": 3136, "max_pixels": 12544}
    grid = processor.image_processor(images=[_image(640, 480)], return_tensors="pt")["image_grid_thw"][0]
    area = int(grid[1] * grid[2]) * 14 * 14
    assert 12544 / 2 < area <= 12544  # the full budget, not half of it
    assert family.coordinate_frame(processor).kind == "norm1000"
    with pytest.raises(ValueError, match="--min_pixels: bad_argument: 20000 is above --max_pixels 12544"):
        load_processor(str(tiny_glm4v_dir), min_pixels=20000, max_pixels=12544)
