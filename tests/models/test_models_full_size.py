"""Released architectures at real width (``vlmr1.models.full_size``): the numbers, the depth cut, the processor's image
tokens and coordinate frames at real image sizes, and ``vlmr1 tiny-model --like``. Configs and processors only, or
models on the meta device: no weights are drawn here (``tests/training/test_training_shared_prefix_real_width.py``
runs the models)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

from vlmr1.cli import main
from vlmr1.errors import UserError
from vlmr1.models import AnswerScale, get_family, train_tiny_tokenizer
from vlmr1.models.full_size import LIKE, real_config, real_processor

# Parameter counts the Hub model pages give for the released checkpoints (safetensors metadata), in billions.
RELEASED_PARAMETERS = {"qwen2_5_vl_3b": 3.75, "qwen2_vl_2b": 2.21, "qwen3_vl_4b": 4.44, "internvl3_2b": 2.09}
# Image tokens of a 640x480 image in the released processors: Qwen2(.5)-VL resize it to 644x476 (28-px steps),
# 23x17 merged tokens; Qwen3-VL keeps 640x480 (32-px steps), 20x15; InternVL3 cuts 4x3 448-px tiles and a
# thumbnail, 256 tokens each.
TOKENS_640X480 = {"qwen2_5_vl_3b": 391, "qwen2_vl_2b": 391, "qwen3_vl_4b": 300, "internvl3_2b": 13 * 256}


def tokenizer_for(like):
    return train_tiny_tokenizer(tokens=get_family(LIKE[like].model_type).chat_tokens())


@pytest.mark.parametrize("like", sorted(LIKE))
def test_full_depth_has_the_released_parameter_count(like):
    family = get_family(LIKE[like].model_type)
    config = real_config(like, tokenizer_for(like))
    with torch.device("meta"):
        model = family.model_class._from_config(config)
    assert round(sum(p.numel() for p in model.parameters()) / 1e9, 2) == RELEASED_PARAMETERS[like]
    text = config.get_text_config()
    assert text.vocab_size == LIKE[like].text["vocab_size"] > max(tokenizer_for(like).all_special_ids)
    tied = model.lm_head.weight is model.get_input_embeddings().weight
    assert tied == LIKE[like].tie_word_embeddings == (like != "internvl3_2b")


def test_cut_keeps_every_width_and_moves_the_special_blocks():
    tokenizer = tokenizer_for("qwen2_5_vl_3b")
    full, cut = real_config("qwen2_5_vl_3b", tokenizer), real_config("qwen2_5_vl_3b", tokenizer, text_layers=2,
                                                                      vision_layers=8)
    assert (cut.text_config.num_hidden_layers, cut.vision_config.depth) == (2, 8)
    for name in ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "vocab_size"):
        assert getattr(cut.text_config, name) == getattr(full.text_config, name)
    assert (cut.text_config.hidden_size, cut.text_config.num_attention_heads, cut.text_config.num_key_value_heads) \
        == (2048, 16, 2)
    assert cut.text_config.rope_parameters["mrope_section"] == [16, 24, 24]
    assert (cut.vision_config.hidden_size, cut.vision_config.window_size) == (1280, 112)
    assert full.vision_config.fullatt_block_indexes == [7, 15, 23, 31]
    assert cut.vision_config.fullatt_block_indexes == [7]  # the released first 8 blocks: 7 windowed, 1 full
    two = real_config("qwen2_5_vl_3b", tokenizer, vision_layers=2)
    assert two.vision_config.fullatt_block_indexes == [1]  # one window block, one full-attention block
    with pytest.raises(UserError, match="--vision_layers.*window-attention block and a full-attention"):
        real_config("qwen2_5_vl_3b", tokenizer, vision_layers=1)

    qwen3 = tokenizer_for("qwen3_vl_4b")
    assert real_config("qwen3_vl_4b", qwen3).vision_config.deepstack_visual_indexes == [5, 11, 17]
    assert real_config("qwen3_vl_4b", qwen3, vision_layers=12).vision_config.deepstack_visual_indexes == [2, 5, 8]
    assert real_config("qwen3_vl_4b", qwen3, vision_layers=2).vision_config.deepstack_visual_indexes == [0, 1]
    # DeepStack feeds one decoder layer per index: no more indexes than layers
    one = real_config("qwen3_vl_4b", qwen3, text_layers=1, vision_layers=2)
    assert one.vision_config.deepstack_visual_indexes == [0]
    assert one.text_config.rope_parameters["mrope_section"] == [24, 20, 20] and one.text_config.head_dim == 128


def test_token_ids_come_from_the_local_tokenizer():
    tokenizer = tokenizer_for("internvl3_2b")
    config = real_config("internvl3_2b", tokenizer, text_layers=1, vision_layers=1)
    assert config.image_token_id == tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    assert (config.eos_token_id, config.pad_token_id) == (tokenizer.eos_token_id, tokenizer.pad_token_id)
    assert config.text_config.num_hidden_layers == 1 and config.vision_config.num_hidden_layers == 1
    with pytest.raises(UserError, match="<IMG_CONTEXT>"):  # a Qwen tokenizer lacks InternVL's tokens
        real_config("internvl3_2b", tokenizer_for("qwen2_5_vl_3b"))
    with pytest.raises(UserError, match=r"--like.*qwen2_5_vl_3b, qwen2_vl_2b, qwen3_vl_4b, internvl3_2b"):
        real_config("qwen2_5_vl_7b", tokenizer)


def image(width, height):
    return Image.fromarray(np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize("like", sorted(LIKE))
def test_processor_makes_the_released_image_token_count(like):
    processor = real_processor(like)
    family = get_family(LIKE[like].model_type)
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text",
                                                                                         "text": "hi"}]}],
                                         add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[[image(640, 480)]], return_tensors="pt")
    assert int((inputs["input_ids"] == processor.image_token_id).sum()) == TOKENS_640X480[like]
    if family.image_layout == "grid":
        assert processor.image_processor.patch_size == family.patch_size


@pytest.mark.parametrize("like", ["qwen2_5_vl_3b", "qwen3_vl_4b", "internvl3_2b"])
@pytest.mark.parametrize("size", [(640, 480), (1280, 720)])
def test_answers_map_back_to_original_pixels_at_real_sizes(like, size):
    """The frame the data layer stores (``CoordinateFrame.input_size``) is the image the real processor makes, and
    ``AnswerScale`` maps a box in that frame back onto the original image exactly."""
    processor = real_processor(like)
    family = get_family(LIKE[like].model_type)
    frame = family.coordinate_frame(processor)
    extent = frame.input_size(size)
    if frame.kind == "resized_pixels":  # the resized image the model saw: the processor's patch grid
        grid = processor.image_processor(images=[image(*size)], return_tensors="pt")["image_grid_thw"][0]
        assert extent == (int(grid[2]) * frame.patch_size, int(grid[1]) * frame.patch_size)
        assert extent != size and all(e % 28 == 0 for e in extent)
    else:
        assert extent == (1000, 1000)
    width, height = size
    scale = AnswerScale.of_row({"original_sizes": [list(size)], "frame_sizes": [list(extent)]})
    assert scale.box([0, 0, *extent]) == pytest.approx([0, 0, width, height], abs=1e-9)
    original = [width * 0.1, height * 0.25, width * 0.7, height * 0.9]
    in_frame = [original[0] * extent[0] / width, original[1] * extent[1] / height, original[2] * extent[0] / width,
                original[3] * extent[1] / height]
    assert scale.box(in_frame) == pytest.approx(original, rel=1e-12)


def test_tiny_model_like_rejects_unknown_names_before_building(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["tiny-model", "--like", "qwen2_5_vl_72b", "--output_dir", str(tmp_path / "m")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--like" in err and all(name in err for name in LIKE) and not (tmp_path / "m").exists()
    with pytest.raises(SystemExit):
        main(["tiny-model", "--like", "qwen2_vl_2b", "--rope_theta", "100", "--output_dir", str(tmp_path / "m")])
    assert "--rope_theta" in capsys.readouterr().err and not (tmp_path / "m").exists()


@pytest.mark.slow
def test_tiny_model_like_saves_a_folder_that_loads_back(tmp_path, capsys):
    main(["tiny-model", "--like", "qwen2_vl_2b", "--text_layers", "1", "--vision_layers", "1", "--dtype", "bfloat16",
          "--output_dir", str(tmp_path / "m")])
    assert "qwen2_vl_2b at real width (1 text layer, 1 vision block)" in capsys.readouterr().out
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["text_config"]["hidden_size"] == 1536 and config["text_config"]["vocab_size"] == 151936
    assert AutoConfig.from_pretrained(tmp_path / "m").vision_config.depth == 1
    processor = AutoProcessor.from_pretrained(tmp_path / "m")
    inputs = processor(text=["<|vision_start|><|image_pad|><|vision_end|>"], images=[image(640, 480)])
    assert sum(i == processor.image_token_id for i in inputs["input_ids"][0]) == TOKENS_640X480["qwen2_vl_2b"]
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "m")
    assert model.dtype == torch.bfloat16 and model.get_input_embeddings().weight.shape == (151936, 1536)
    small = processor(text=["<|vision_start|><|image_pad|><|vision_end|>hi"], images=[image(56, 56)],
                      return_tensors="pt")
    with torch.no_grad():
        logits = model(**small).logits
    assert logits.shape[-1] == 151936 and torch.isfinite(logits).all()
