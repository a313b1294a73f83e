#!/usr/bin/env bash
# GRPO for referring segmentation as text (8-term Chebyshev contours), Qwen2.5-VL-3B, DeepSpeed ZeRO-3.
# Multi-node: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=<node 0 address> bash run_scripts/run_grpo_seg.sh
source "$(dirname "$0")/_launch.sh"

data_paths="path/to/data_dir/train.jsonl"
image_folders="path/to/data_dir"
model_path="${MODEL_PATH:-Qwen/Qwen2.5-VL-3B-Instruct}"
RUN_NAME="${RUN_NAME:-Qwen2.5-VL-3B-GRPO-SEG}"

launch_grpo \
  --output_dir "${REPO_HOME}/output/${RUN_NAME}" \
  --model_name_or_path "${model_path}" \
  --deepspeed "${REPO_HOME}/configs/deepspeed/zero3.json" \
  --data_file_paths "${data_paths}" \
  --image_folders "${image_folders}" \
  --task_type seg \
  --reward_funcs seg_iou seg_format \
  --per_device_train_batch_size 8 \
  --gradient_accumulation_steps 2 \
  --gradient_checkpointing true \
  --num_generations 8 \
  --max_completion_length 1024 \
  --learning_rate 1e-6 \
  --beta 0.04 \
  --num_train_epochs 2 \
  --bf16 true \
  --logging_steps 1 \
  --save_steps 100 \
  --save_only_model true \
  --report_to "${REPORT_TO:-none}" \
  --run_name "${RUN_NAME}" \
  "$@"
