#!/usr/bin/env bash
# Multi-node launch, shown on one machine: two "nodes" (NODE_RANK 0 and 1) rendezvous at MASTER_ADDR:MASTER_PORT
# exactly as two servers would, each starting NPROC_PER_NODE workers. On real nodes run the same
# run_grpo_*.sh line on each machine with its own NODE_RANK and node 0's address:
#   node 0:  NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash run_scripts/run_grpo_rec.sh
#   node 1:  NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 bash run_scripts/run_grpo_rec.sh
# Here: a tiny offline model on the bundled GUI examples, CPU, 2 steps (about a minute).
set -euo pipefail
REPO_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-${REPO_HOME}/runs/multinode_local}"
export PATH="${REPO_HOME}/.venv/bin:${PATH}" NNODES=2 NPROC_PER_NODE=1 MASTER_ADDR=127.0.0.1
export MASTER_PORT="${MASTER_PORT:-29541}" MODEL_PATH="${OUT}/tiny-model" OMP_NUM_THREADS=1
mkdir -p "${OUT}"
vlmr1 tiny-model --arch qwen2_5_vl --output "${MODEL_PATH}" >/dev/null
cpu_args=(--deepspeed "" --bf16 false --gradient_checkpointing false --max_steps 2 --save_steps 2
          --per_device_train_batch_size 2 --num_generations 2 --max_completion_length 8 --max_pixels 12544
          --data_file_paths "${REPO_HOME}/examples/gui/gui_synthetic.jsonl"
          --image_folders "${REPO_HOME}/examples/gui" --output_dir "${OUT}/run")
NODE_RANK=1 bash "${REPO_HOME}/run_scripts/run_grpo_gui.sh" "${cpu_args[@]}" > "${OUT}/node1.log" 2>&1 &
node1=$!
NODE_RANK=0 bash "${REPO_HOME}/run_scripts/run_grpo_gui.sh" "${cpu_args[@]}" 2>&1 | tee "${OUT}/node0.log" | tail -n 3
wait "${node1}"
echo "2 nodes x 1 process trained 2 steps: ${OUT}/run (logs: ${OUT}/node0.log, node1.log)"
