"""Launch ``vlmr1.train`` with ``torchrun --nproc_per_node 2`` on CPU and read what each rank scored."""

import json
import os
import subprocess
import sys
from pathlib import Path


def torchrun_train(model_dir, out, files, folders, record, steps, *extra, batch=4):
    """Train ``steps`` GRPO steps on 2 CPU processes; the ``record_batch`` reward writes each rank's prompt ids."""
    # keep the caller's PYTHONPATH: from a worktree it names the vlmr1 under test (the venv's may be another checkout)
    python_path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "VLMR1_TEST_RECORD": str(record), "PYTHONPATH": python_path, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           "-m", "vlmr1.train", "--model_name_or_path", str(model_dir), "--output_dir", str(out),
           "--data_file_paths", ":".join(map(str, files)), "--image_folders", ":".join(map(str, folders)),
           "--reward_funcs", "format", "user_rewards:record_batch", "--max_steps", str(steps),
           "--per_device_train_batch_size", str(batch), "--num_generations", "2", "--max_completion_length", "8",
           "--learning_rate", "1e-2", "--logging_steps", "1", "--save_steps", "1", "--gradient_checkpointing",
           "false", "--report_to", "none", "--max_pixels", "12544", "--seed", "0", *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def records(folder) -> dict[int, list[dict]]:
    """{rank: [{"step": ..., "ids": [...]}, ...]} as written by ``user_rewards.record_batch``."""
    out = {}
    for rank in (0, 1):
        lines = (Path(folder) / f"rank{rank}.jsonl").read_text().splitlines()
        out[rank] = [json.loads(line) for line in lines]
    return out


def losses(run_dir) -> list[tuple[float, float]]:
    """(loss, grad_norm) of each logged training step, from the run's ``train_log.jsonl``."""
    lines = (Path(run_dir) / "train_log.jsonl").read_text().splitlines()
    logs = [json.loads(line) for line in lines]
    return [(float(log["loss"]), float(log["grad_norm"])) for log in logs if "loss" in log and "grad_norm" in log]
