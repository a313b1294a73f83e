#!/usr/bin/env bash
# GPU smoke check: 7 GRPO steps of a Qwen2.5-VL-3B-shaped random model, bf16 + gradient checkpointing, one GPU;
# vLLM colocate rollouts when vllm is installed. Prints one JSON line on stdout (step time, tokens/s, peak memory,
# shared-prefix vs stock ratios); everything else goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
exec "$PYTHON" scripts/gpu_smoke.py "$@"
