"""The GPU smoke script runs end to end (here with --tiny on CPU, so it cannot rot between GPU sessions)."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_smoke.py"


def test_gpu_smoke_script_runs_on_cpu_with_a_tiny_model():
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--tiny", "--steps", "2", "--num_generations", "2", "--max_completion_length", "6"])
    assert result["steps"] == 2 and len(result["step_time_s"]) == 2 and result["generation"] == "transformers"
