"""The one config system: every recipe parses, recipe keys nothing reads are rejected, flags override recipes."""

import os
from pathlib import Path

import pytest

from vlmr1.rewards import get_reward_functions
from vlmr1.tasks import get_task
from vlmr1.training.config import parse_train_args

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted([*ROOT.glob("recipes/**/*.yaml"), *ROOT.glob("src/vlmr1/**/recipes/*.yaml")])


def test_there_are_recipes_for_each_task():
    assert {p.parent.name for p in RECIPES} >= {"rec", "seg", "gui", "examples"}


def test_the_demo_recipes_ship_inside_the_package():
    from vlmr1.demo.pipeline import RECIPES as DEMO_RECIPES

    assert (DEMO_RECIPES / "seg_sft.yaml").is_file() and (DEMO_RECIPES / "seg_grpo.yaml").is_file()
    assert "vlmr1" in DEMO_RECIPES.parts and "src" in DEMO_RECIPES.parts


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_recipe_parses(recipe, tmp_path):
    if "sft" in recipe.stem:  # the demo's supervised warm start: TRL's SFTConfig, same parser conventions
        from trl import SFTConfig, TrlParser

        (sft_args,) = TrlParser((SFTConfig,)).parse_args_and_config(
            ["--config", str(recipe), "--output_dir", str(tmp_path)])
        assert sft_args.max_steps > 0
        return
    argv = ["--config", str(recipe), "--output_dir", str(tmp_path), "--bf16", "false"]
    try:
        script_args, training_args, model_args = parse_train_args(argv)
    except ValueError as e:  # a recipe for 8 processes (vlm_r1/gui.yaml: 2 prompts per device) read on one
        assert "divisible by num_generations" in str(e)
        script_args, training_args, model_args = parse_train_args([*argv, "--per_device_train_batch_size", "8"])
    task = get_task(script_args.task_type)  # a registered task
    get_reward_functions(script_args.reward_funcs or task.default_rewards)  # registered rewards
    # the demo's recipes get their data from the demo itself, vlm_r1/defaults.yaml goes before a VLM-R1 command line;
    # every other recipe names its data
    assert script_args.data_file_paths or "demo" in recipe.parts or recipe.stem == "defaults"
    assert training_args.num_generations >= 2


def test_unknown_recipe_key_is_an_error(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data_file_paths: a.jsonl\nlearning_rat: 1.0e-5\n")
    with pytest.raises(ValueError, match="learning_rat"):
        parse_train_args(["--config", str(recipe), "--output_dir", str(tmp_path)])


def test_flags_override_the_recipe_and_seed_flags_parse(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data_file_paths: a.jsonl\nlearning_rate: 1.0e-5\nnum_generations: 4\n")
    script_args, training_args, model_args = parse_train_args([
        "--config", str(recipe), "--output_dir", str(tmp_path), "--learning_rate", "3e-4",
        "--model_name_or_path", "m", "--image_folders", "x:y", "--reward_funcs", "accuracy", "format",
        "--reward_method", "mcq", "--task_type", "rec", "--max_pixels", "100352", "--min_pixels", "3136",
        "--freeze_vision_modules", "true", "--use_peft", "true", "--lora_r", "16", "--lora_alpha", "32",
        "--lora_dropout", "0.1", "--lora_target_modules", "q_proj", "v_proj", "--deepspeed",
        str(ROOT / "configs/deepspeed/zero2.json"), "--val_split_ratio", "0.1"])
    assert training_args.learning_rate == 3e-4 and training_args.num_generations == 4
    assert script_args.reward_funcs == ["accuracy", "format"] and script_args.freeze_vision_modules
    assert (script_args.max_pixels, script_args.min_pixels, script_args.val_split_ratio) == (100352, 3136, 0.1)
    assert model_args.use_peft and model_args.lora_target_modules == ["q_proj", "v_proj"]
    assert training_args.deepspeed.endswith("zero2.json")


def test_reading_the_flags_touches_no_process_state(monkeypatch, tmp_path):
    from accelerate import PartialState

    from vlmr1.training.config import build_configs, read_flags

    PartialState._reset_state()
    monkeypatch.setenv("LOCAL_RANK", "0")  # as under torchrun, where DeepSpeed on CPU needs a gloo process group
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data_file_paths: a.jsonl\nenv:\n  VLMR1_TEST_FROM_RECIPE: '1'\n")
    environ = dict(os.environ)
    flags = read_flags(["--config", str(recipe), "--output_dir", str(tmp_path), "--deepspeed",
                        str(ROOT / "configs/deepspeed/zero2.json")])
    assert dict(os.environ) == environ and PartialState._shared_state == {}
    assert flags.deepspeed.endswith("zero2.json") and flags.recipe_env == {"VLMR1_TEST_FROM_RECIPE": "1"}
    with pytest.raises(ValueError, match="pre-configured"):  # the trainer's config needs set_up_processes first
        build_configs(flags)
