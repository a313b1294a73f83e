#!/usr/bin/env bash
# Shared by the run_grpo_*.sh scripts: torchrun from the environment, with defaults for one node.
#   NPROC_PER_NODE (default: number of GPUs, or 1)  NNODES (1)  NODE_RANK (0)
#   MASTER_ADDR (127.0.0.1)  MASTER_PORT (12345)
set -euo pipefail
REPO_HOME="${REPO_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
if [ -z "${NPROC_PER_NODE:-}" ]; then
  NPROC_PER_NODE=$(python -c "import torch; print(max(torch.cuda.device_count(), 1))" 2>/dev/null || echo 1)
fi
launch_grpo() {
  torchrun --nproc_per_node="${NPROC_PER_NODE}" \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${MASTER_PORT:-12345}" \
    -m vlmr1.train "$@"
}
