"""The GPU smoke script runs end to end (here with --tiny on CPU, so it cannot rot between GPU sessions) and prints
exactly one JSON line on stdout, the line a GPU run pastes into the README."""

import importlib.util
import json
import math
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_smoke.py"


def test_gpu_smoke_script_prints_one_json_line_on_cpu_with_a_tiny_model(capfd):
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    returned = module.main(["--tiny", "--steps", "3", "--num_generations", "2", "--max_completion_length", "6"])
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert len(lines) == 1, out  # progress bars, logs and warnings all went to stderr
    assert err  # (there were some)
    result = json.loads(lines[0])
    assert result == returned
    assert result["steps"] == 3 and result["generation"] == "transformers" and result["device"] == "cpu"
    for name in ("", "stock_"):
        assert 0 < result[f"{name}step_time_s"] < 60
        assert result[f"{name}tokens_per_s"] > 0
        assert 0.05 < result[f"{name}peak_memory_gib"] < 64  # the process's RSS on CPU
    speedup = result["shared_prefix_speedup"]
    assert math.isclose(speedup, result["stock_step_time_s"] / result["step_time_s"], rel_tol=0.01)
    assert math.isclose(result["shared_prefix_memory_ratio"],
                        result["peak_memory_gib"] / result["stock_peak_memory_gib"], rel_tol=0.01)
