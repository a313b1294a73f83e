"""VLM-R1's run scripts as data: the flags each passes to ``grpo_jsonl.py`` (VLM-R1's ``run_scripts/``), with the
model, the paths, the run name and ``--deepspeed`` as placeholders (what a user changes), everything else verbatim."""

COMMON = """--use_vllm False --output_dir {out} --resume_from_checkpoint True --model_name_or_path {model}
--data_file_paths {data} --image_folders {images}"""

REC = COMMON + """ --is_reward_customized_from_vlm_module True --task_type rec --per_device_train_batch_size 8
--gradient_accumulation_steps 2 --gradient_checkpointing true --logging_steps 1 --num_train_epochs 2 --bf16
--attn_implementation flash_attention_2 --run_name {run} --data_seed 42 --save_steps 100 --num_generations 8
--max_completion_length 2048 --reward_funcs accuracy format --beta 0.04 --report_to wandb
--dataset-name this_is_not_used --deepspeed {deepspeed}"""

SCRIPTS = {
    "run_grpo_rec.sh": REC,
    "run_grpo_rec_lora.sh": REC + """ --learning_rate 1e-5 --use_peft true --lora_r 64 --lora_alpha 128
--lora_dropout 0.05 --lora_task_type CAUSAL_LM --freeze_vision_modules true""",
    "run_grpo_rec_more_params.sh": REC.replace("--beta 0.04", "--beta 0.04 --epsilon_high 0.28"),
    "run_grpo_rec_internvl.sh": REC.replace("--task_type rec", "--task_type rec --max_anyres_num 6"),
    "run_grpo_gui.sh": COMMON + """ --is_reward_customized_from_vlm_module False --reward_method all_match
--task_type gui --per_device_train_batch_size 2 --gradient_accumulation_steps 2 --gradient_checkpointing true
--logging_steps 1 --num_train_epochs 2 --max_steps 1200 --bf16 --attn_implementation flash_attention_2
--run_name {run} --save_steps 400 --num_generations 8 --max_completion_length 2048 --reward_funcs accuracy format
--beta 0.04 --report_to wandb --dataset-name not_used --deepspeed {deepspeed}""",
}

# VLM-R1's run_scripts/multinode_training_args.yaml (read as a recipe), paths as placeholders
MULTINODE_YAML = """output_dir: {out}
model_name_or_path: {model}
dataset_name: Idefics-ai2d
data_file_paths: {data}
image_folders: {images}
max_prompt_length: 1024
per_device_train_batch_size: 1
gradient_accumulation_steps: 2
logging_steps: 1
bf16: true
report_to: wandb
gradient_checkpointing: false
deepspeed: {deepspeed}
attn_implementation: flash_attention_2
max_pixels: 401408
max_steps: 500
run_name: multinode
save_steps: 100
save_total_limit: 3
save_only_model: true
num_generations: 8
"""


def argv(script: str, **values: str) -> list[str]:
    """The script's flags with the placeholders filled (``deepspeed`` "" turns DeepSpeed off)."""
    values = {"out": "out", "model": "model", "data": "a.jsonl", "images": "images", "run": "run",
              "deepspeed": "", **values}
    return [part.format(**values) for part in SCRIPTS[script].split()]
