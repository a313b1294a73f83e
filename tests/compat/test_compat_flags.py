"""VLM-R1's run-script command lines parse, every flag with VLM-R1's meaning; nothing here loads a model."""

import importlib.util
import logging

import pytest
import torch
from vlm_r1_scripts import MULTINODE_YAML, SCRIPTS, argv

from vlmr1.training.config import build_configs, read_flags
from vlmr1.training.vlm_r1_flags import log_notes

ON_CPU = not torch.cuda.is_available()
# run_grpo_gui.sh's 2 prompts per device x 2 steps fill a generation batch of 8 on its 8 GPUs; on this one process
# 4 steps do (TRL refuses a batch that does not divide into groups of num_generations, as VLM-R1 does)
ONE_PROCESS = {"run_grpo_gui.sh": ["--gradient_accumulation_steps", "4"]}


def parse(args):
    flags = read_flags(args)
    return flags, *build_configs(flags)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_run_script_parses(script, tmp_path):
    flags, script_args, training_args, model_args = parse(argv(script, out=str(tmp_path)) + ONE_PROCESS.get(script, []))
    assert training_args.resume_from_checkpoint is None  # True: the newest checkpoint if there is one
    assert training_args.num_generations == 8 and training_args.max_completion_length == 2048
    assert training_args.beta == 0.04 and training_args.logging_steps == 1
    notes = "\n".join(flags.vlm_r1_notes)
    assert "--dataset_name" in notes and "means nothing here" in notes
    if ON_CPU:  # one message and a fallback each, not a traceback
        assert training_args.bf16 is False and model_args.attn_implementation == "sdpa"
        assert "--bf16" in notes and "flash_attention_2" in notes
    if importlib.util.find_spec("wandb") is None:
        assert training_args.report_to == ["trackio"] and "--report_to wandb" in notes  # the local default instead
    assert "recipes/vlm_r1/defaults.yaml" in notes  # TRL's defaults are not VLM-R1's: said once


def test_rec_scripts_use_the_model_module_rewards():
    for script in ("run_grpo_rec.sh", "run_grpo_rec_lora.sh", "run_grpo_rec_more_params.sh"):
        flags, script_args, _, _ = parse(argv(script))
        assert script_args.task_type == "rec" and script_args.reward_funcs == ["rec_iou", "rec_format"]
        assert any("accuracy -> rec_iou, format -> rec_format" in n for n in flags.vlm_r1_notes)


def test_script_specific_flags():
    _, script_args, training_args, model_args = parse(argv("run_grpo_rec_lora.sh"))
    assert model_args.use_peft and (model_args.lora_r, model_args.lora_alpha, model_args.lora_dropout) == (64, 128, 0.05)
    assert model_args.lora_task_type == "CAUSAL_LM" and script_args.freeze_vision_modules
    assert training_args.learning_rate == 1e-5
    _, _, training_args, _ = parse(argv("run_grpo_rec_more_params.sh"))
    assert training_args.epsilon_high == 0.28
    flags, script_args, *_ = parse(argv("run_grpo_rec_internvl.sh"))
    assert script_args.max_anyres_num == 6  # read by the InternVL family (tests/models/test_models_internvl_glm.py)
    flags, script_args, training_args, _ = parse(argv("run_grpo_gui.sh") + ONE_PROCESS["run_grpo_gui.sh"])
    assert script_args.reward_funcs == ["accuracy", "format"] and script_args.reward_method == "all_match"
    assert script_args.task_type == "gui" and training_args.max_steps == 1200 and training_args.save_steps == 400
    assert not any("is_reward_customized" in n for n in flags.vlm_r1_notes)  # False: the generic rewards


def test_the_multinode_args_yaml_reads_as_a_recipe(tmp_path):
    recipe = tmp_path / "multinode_training_args.yaml"
    recipe.write_text(MULTINODE_YAML.format(out=tmp_path / "out", model="m", data="a.jsonl", images="i",
                                            deepspeed="''"))
    flags, script_args, training_args, _ = parse(["--config", str(recipe), "--gradient_accumulation_steps", "8"])
    assert (script_args.max_pixels, training_args.save_total_limit, training_args.save_only_model) == (401408, 3, True)
    notes = "\n".join(flags.vlm_r1_notes)
    assert "--max_prompt_length 1024: means nothing here" in notes and "--dataset_name Idefics-ai2d" in notes


@pytest.mark.parametrize("value,expected", [("True", None), ("true", None), ("False", False), ("false", False),
                                            ("out/checkpoint-100", "out/checkpoint-100")])
def test_resume_from_checkpoint_true_false_or_a_path(value, expected):
    _, _, training_args, _ = parse(["--output_dir", "out", "--resume_from_checkpoint", value])
    assert training_args.resume_from_checkpoint == expected


def test_resume_in_a_recipe_and_no_resume_flag(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("resume_from_checkpoint: false\n")
    assert parse(["--config", str(recipe), "--output_dir", "out"])[2].resume_from_checkpoint is False
    flags, _, training_args, _ = parse(["--output_dir", "out"])
    assert training_args.resume_from_checkpoint is None and flags.vlm_r1_notes == []  # vlmr1's flags: no notes


def test_bare_boolean_flags_and_renamed_flags():
    flags, _, training_args, model_args = parse(["--output_dir", "out", "--ddp_find_unused_parameters", "--disable_tqdm",
                                                "--torch_dtype", "bfloat16", "--vllm_max_model_len", "4096",
                                                "--vllm_guided_decoding_regex", "<answer>.*"])
    assert training_args.disable_tqdm is True and training_args.ddp_find_unused_parameters is True
    assert model_args.dtype == "bfloat16"
    assert training_args.vllm_max_model_length == 4096 and training_args.vllm_structured_outputs_regex == "<answer>.*"
    assert sum("in TRL 1.16" in n for n in flags.vlm_r1_notes) == 3


def test_customized_rewards_for_a_task_vlm_r1_has_none_for():
    flags, script_args, _, _ = parse(["--output_dir", "out", "--task_type", "gui",
                                      "--is_reward_customized_from_vlm_module", "True"])
    assert script_args.reward_funcs is None  # the task's own rewards stay
    assert any("rec only" in n for n in flags.vlm_r1_notes)


def test_notes_are_logged_one_line_each(caplog):
    flags = read_flags(argv("run_grpo_rec.sh"))
    with caplog.at_level(logging.INFO, logger="vlmr1.training.vlm_r1_flags"):
        log_notes(flags)
    assert len(caplog.records) == len(flags.vlm_r1_notes) >= 4
