"""The sizes `vlmr1 plan` reads from a config: parameter counts equal the transformers classes' (built on the meta
device from ``real_config`` and the tiny configs), and image sizes become the vision patches the real processors
make (Qwen's resize, InternVL's tiles)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch
from PIL import Image

from vlmr1.models import get_family, tiny_config, train_tiny_tokenizer
from vlmr1.models.full_size import LIKE, real_config, real_processor
from vlmr1.training.model_shape import ModelShape, internvl_tiles


@cache
def tokenizer_for(model_type: str):
    return train_tiny_tokenizer(tokens=get_family(model_type).chat_tokens())


def meta_count(config, model_type: str) -> int:
    with torch.device("meta"):
        model = get_family(model_type).model_class._from_config(config)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("like", sorted(LIKE))
@pytest.mark.parametrize("depths", [(2, 2), (None, None)], ids=["cut", "released"])
def test_parameter_count_is_the_real_models(like, depths):
    model_type = LIKE[like].model_type
    config = real_config(like, tokenizer_for(model_type), text_layers=depths[0], vision_layers=depths[1])
    assert ModelShape.from_config(config).total_params() == meta_count(config, model_type)
    # a config.json read back as a dict gives the same shape as the config object
    assert ModelShape.from_config(config.to_dict()) == ModelShape.from_config(config)


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "internvl", "glm4v"])
@pytest.mark.parametrize("tied", [False, True])
def test_parameter_count_of_tiny_configs(arch, tied):
    config = tiny_config(arch, tokenizer=tokenizer_for(arch), text_layers=2, vision_layers=2, tie_word_embeddings=tied)
    assert ModelShape.from_config(config).total_params() == meta_count(config, arch)


def test_internvit_variants_with_rms_norm_and_qk_norm():
    """InternViT-6B's settings (RMSNorm, q/k norms, no q/k/v bias) are counted too."""
    config = real_config("internvl3_2b", tokenizer_for("internvl"), text_layers=1, vision_layers=2)
    config.vision_config.norm_type, config.vision_config.use_qk_norm = "rms_norm", True
    config.vision_config.attention_bias = False
    assert ModelShape.from_config(config).total_params() == meta_count(config, "internvl")


def test_unmodelled_family_names_what_is():
    with pytest.raises(ValueError, match="'llava' is not modelled yet.*internvl, glm4v"):
        ModelShape.from_config({"model_type": "llava"})


def image(width: int, height: int) -> Image.Image:
    return Image.fromarray(np.zeros((height, width, 3), dtype=np.uint8))


SIZES = [(640, 480), (1280, 720), (300, 1000), (448, 448), (100, 60), (2000, 500)]


@pytest.mark.parametrize("like", ["qwen2_5_vl_3b", "qwen3_vl_4b"])
def test_qwen_patches_are_the_processors(like):
    processor = real_processor(like)
    shape = ModelShape.from_config(real_config(like, tokenizer_for(LIKE[like].model_type), text_layers=1,
                                               vision_layers=2))
    settings = LIKE[like].image_settings
    for size in SIZES:
        grid = processor.image_processor(images=[image(*size)], return_tensors="pt")["image_grid_thw"][0]
        patches = shape.image_patches(size, settings["min_pixels"], settings["max_pixels"], max_tiles=1)
        assert patches == int(grid[1] * grid[2]), size


@pytest.mark.parametrize("max_tiles", [12, 6, 1])
def test_internvl_tiles_are_the_processors(max_tiles):
    processor = real_processor("internvl3_2b")
    get_family("internvl").set_image_limits(processor, max_tiles=max_tiles)
    for size in SIZES:
        # crop_to_patches: what InternVLProcessor passes its image processor
        tiles = processor.image_processor(images=[image(*size)], crop_to_patches=True,
                                          return_tensors="pt")["pixel_values"].shape[0]
        assert internvl_tiles(size, max_tiles) == tiles, size
    assert internvl_tiles((640, 480), 12) == 13  # 4 x 3 tiles and a thumbnail: 3328 image tokens


def test_glm4v_patches_are_the_processors():
    from vlmr1.models import tiny_processor

    shape = ModelShape.from_config(tiny_config("glm4v", tokenizer=tokenizer_for("glm4v"), text_layers=1,
                                               vision_layers=1))
    processor = tiny_processor("glm4v", min_pixels=112 * 112, max_pixels=28 * 28 * 2000)
    for size in [*SIZES, (300, 20)]:
        grid = processor.image_processor(images=[image(*size)], return_tensors="pt")["image_grid_thw"][0]
        assert shape.image_patches(size, 112 * 112, 28 * 28 * 2000, max_tiles=1) == int(grid[1] * grid[2]), size
