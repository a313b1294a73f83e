#!/usr/bin/env bash
# GRPO for referring segmentation as text (8-term Chebyshev contours), Qwen2.5-VL-3B, DeepSpeed ZeRO-3.
# Settings: recipes/seg/qwen2_5_vl_3b_grpo.yaml; any flag given here or after the script name overrides it:
#   bash run_scripts/run_grpo_seg.sh --learning_rate 2e-6 --per_device_train_batch_size 4
# Multi-node: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=<node 0 address> bash run_scripts/run_grpo_seg.sh
source "$(dirname "$0")/_launch.sh"

data_paths="path/to/data_dir/train.jsonl"
image_folders="path/to/data_dir"
model_path="${MODEL_PATH:-Qwen/Qwen2.5-VL-3B-Instruct}"
RUN_NAME="${RUN_NAME:-Qwen2.5-VL-3B-GRPO-SEG}"

launch_grpo \
  --config "${REPO_HOME}/recipes/seg/qwen2_5_vl_3b_grpo.yaml" \
  --output_dir "${REPO_HOME}/output/${RUN_NAME}" \
  --model_name_or_path "${model_path}" \
  --deepspeed "${REPO_HOME}/configs/deepspeed/zero3.json" \
  --data_file_paths "${data_paths}" \
  --image_folders "${image_folders}" \
  ${REPORT_TO:+--report_to "$REPORT_TO"} \
  --run_name "${RUN_NAME}" \
  "$@"
