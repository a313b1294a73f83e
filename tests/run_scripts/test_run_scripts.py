"""The seed's launch scripts run as written (torchrun, recipe, env-driven topology), here on CPU with a tiny model."""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CPU_OVERRIDES = ["--deepspeed", "", "--bf16", "false", "--gradient_checkpointing", "false", "--max_steps", "1",
                 "--per_device_train_batch_size", "2", "--num_generations", "2", "--max_completion_length", "8",
                 "--max_pixels", "12544", "--save_steps", "1"]


def run_script(name, model_dir, out, data, images, port):
    env = {**os.environ, "NPROC_PER_NODE": "1", "MASTER_PORT": str(port), "MODEL_PATH": str(model_dir),
           "OMP_NUM_THREADS": "1", "PATH": f"{Path(os.sys.executable).parent}:{os.environ['PATH']}"}
    cmd = ["bash", str(ROOT / "run_scripts" / name), *CPU_OVERRIDES, "--output_dir", str(out),
           "--data_file_paths", str(data), "--image_folders", str(images)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "checkpoint-1" / "trainer_state.json").read_text())


@pytest.mark.slow  # the real launch scripts, through torchrun
@pytest.mark.parametrize("script, port", [("run_grpo_gui.sh", 29531), ("run_grpo_rec.sh", 29532)])  # -n 2 runs both
def test_run_script_trains_one_step(script, port, tiny_qwen25vl_dir, tmp_path):
    if script == "run_grpo_gui.sh":
        data, images = ROOT / "examples/gui/gui_synthetic.jsonl", ROOT / "examples/gui"
    else:
        data, images = tmp_path / "rec.jsonl", ROOT / "examples/images"
        line = {"id": 1, "image": "shapes_00.png", "bbox": [10, 10, 60, 60], "conversations": [
            {"from": "human", "value": "<image>the red shape"}, {"from": "gpt", "value": "[10, 10, 60, 60]"}]}
        data.write_text(json.dumps(line) + "\n" + json.dumps({**line, "id": 2}) + "\n")
    state = run_script(script, tiny_qwen25vl_dir, tmp_path / "out", data, images, port)
    reward_keys = [k for k in state["log_history"][0] if k.startswith("rewards/")]
    expected = "rewards/accuracy/mean" if script == "run_grpo_gui.sh" else "rewards/rec_iou/mean"
    assert state["global_step"] == 1 and expected in reward_keys
