"""Family registry, vision freezing and LoRA targets (checked with a real peft `get_peft_model`)."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model

from vlmr1.models import (
    freeze_vision,
    get_family,
    supported_model_types,
    tiny_config,
    vision_module_prefixes,
)
from vlmr1.models.tiny import build_tiny_model

ARCHS = ["glm4v", "internvl", "qwen2_5_vl", "qwen2_vl", "qwen3_vl"]
# The vision tower (and InternVL's separate projector) of each family's model.
VISION = {"internvl": ["model.vision_tower", "model.multi_modal_projector"]}


def _model(arch):
    torch.manual_seed(0)
    config = tiny_config(arch)
    return get_family(arch).model_class(config)


def test_supported_and_lookup_by_type_config_model():
    assert supported_model_types() == ARCHS
    for arch in ARCHS:
        family = get_family(arch)
        assert family.model_type == arch
        config = tiny_config(arch)
        assert get_family(config) is family
        assert get_family(family.model_class(config)) is family


def test_unknown_family_lists_supported():
    with pytest.raises(ValueError) as err:
        get_family("llava")
    assert "llava" in str(err.value)
    for arch in ARCHS:
        assert arch in str(err.value)
    with pytest.raises(ValueError, match="supported"):
        get_family(object())


def test_lookup_by_dir_reads_config_not_path(tmp_path):
    # A misleading directory name must not matter: the config's model_type decides.
    path = build_tiny_model("qwen2_5_vl", tmp_path / "qwen3_vl-looking-name", text_layers=1, vision_layers=1)
    assert get_family(path).model_type == "qwen2_5_vl"
    assert get_family(str(path)).model_type == "qwen2_5_vl"
    model = get_family(path).load(path, dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("arch", ARCHS)
def test_freeze_vision_leaves_only_text_trainable(arch):
    model = _model(arch)
    prefixes = vision_module_prefixes(model)
    assert prefixes == VISION.get(arch, ["model.visual"])
    assert model.get_submodule(prefixes[0]) is get_family(arch).vision_tower(model.model)
    frozen = freeze_vision(model)
    n_vision = sum(p.numel() for prefix in prefixes for p in model.get_submodule(prefix).parameters())
    assert frozen == n_vision > 0
    for name, param in model.named_parameters():
        is_vision = name.startswith(tuple(p + "." for p in prefixes))
        assert param.requires_grad != is_vision, name
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(n.startswith(("model.language_model.", "lm_head.")) for n in trainable)


@pytest.mark.parametrize("arch", ARCHS)
def test_default_lora_targets_only_text(arch):
    family = get_family(arch)
    model = _model(arch)
    config = tiny_config(arch)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=family.lora_target_modules()))
    adapted = [n.removesuffix(".lora_A") for n, _ in peft_model.named_modules() if n.endswith(".lora_A")]
    prefixes = vision_module_prefixes(peft_model)
    assert prefixes == ["base_model.model." + p for p in VISION.get(arch, ["model.visual"])]
    assert adapted and not any(n.startswith(p + ".") for n in adapted for p in prefixes)
    assert all(".language_model.layers." in n for n in adapted)
    # every attention and MLP projection in every text layer (GLM-4.1V: gate and up are one layer)
    assert len(adapted) == len(family.text_projections) * config.text_config.num_hidden_layers
    assert {n.rsplit(".", 1)[1] for n in adapted} == set(family.text_projections)
    lora_params = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert lora_params and not any(n.startswith(tuple(prefixes)) for n in lora_params)
    assert all("lora_" in n for n in lora_params)
    assert get_family(peft_model) is family


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "glm4v"])
def test_bare_projection_names_would_hit_the_vision_tower(arch):
    # Why the default is a regex: Qwen2.5-VL and GLM-4.1V vision blocks also have mlp.{gate,up,down}_proj.
    model = _model(arch)
    names = [n for n, _ in model.named_modules() if n.endswith("gate_proj")]
    assert any(n.startswith("model.visual.") for n in names)
