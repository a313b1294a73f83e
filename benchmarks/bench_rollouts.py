"""Benchmark: what watching a run costs — rollout pictures and the trackio tracker — against the GRPO step time.

Trains the demo's GRPO stage (its tiny Qwen2.5-VL, its recipe: 16 prompts x 4 samples of up to 72 tokens, 56 px
shapes) for a few steps per mode, alternating the modes in this process, and prints seconds per step, the ratio to
the run with nothing on (wall time, and the process's CPU time, which other jobs on the machine disturb less), and the
drawing thread's CPU time per picture and as a share of the training's CPU time:

- ``off``: no pictures (``--log_rollouts_steps 0``), no tracker;
- ``default``: pictures as ``vlmr1 train`` draws them when the flag is unset (at logging steps, within 1% of the time);
- ``every step``: a picture at every step (``--log_rollouts_steps 1``), the most a user can ask for;
- ``trackio``: the default pictures and the trackio tracker (the default of ``vlmr1 train`` when installed).

    python benchmarks/bench_rollouts.py                 # 15 steps per run, 2 runs per mode
    python benchmarks/bench_rollouts.py --steps 30 --repeats 3 --threads 1

The demo's step is the shortest a vlmr1 run takes (a 1.4M-parameter model on CPU), so the shares here are upper
bounds for real runs, whose steps take seconds to minutes on a GPU while a picture takes the same CPU time.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TRACKIO_DIR", tempfile.mkdtemp(prefix="bench-trackio-"))  # before TRL imports trackio

from vlmr1.data.shapes import generate  # noqa: E402
from vlmr1.demo.pipeline import FULL, RECIPES  # noqa: E402
from vlmr1.models import build_tiny_model  # noqa: E402
from vlmr1.training.config import parse_train_args  # noqa: E402
from vlmr1.training.setup import build_trainer, check_data  # noqa: E402

MODES = {
    "off": ["--log_rollouts_steps", "0", "--report_to", "none"],
    "default": ["--report_to", "none"],
    "every step": ["--log_rollouts_steps", "1", "--report_to", "none"],
    "trackio": ["--report_to", "trackio"],
}


def train_once(work: str, model_dir: str, data: dict, steps: int, flags: list[str], tag: str) -> dict:
    """One GRPO run of ``steps`` steps; returns its seconds per step and the pictures' cost."""
    pixels = FULL.image_size ** 2
    script_args, args, model_args = parse_train_args(
        ["--config", str(RECIPES / "seg_grpo.yaml"), "--model_name_or_path", model_dir,
         "--output_dir", os.path.join(work, tag), "--data_file_paths", data["train"], "--image_folders",
         data["image_folder"], "--min_pixels", str(pixels), "--max_pixels", str(pixels), "--max_steps", str(steps),
         "--disable_tqdm", "true", "--run_name", tag, *flags])
    trainer = build_trainer(script_args, args, model_args, check_data(script_args))
    start, cpu_start = time.monotonic(), time.process_time()
    trainer.train()
    elapsed, cpu = time.monotonic() - start, time.process_time() - cpu_start
    pictures = trainer.rollout_pictures
    return {"s_per_step": elapsed / steps, "cpu_per_step": cpu / steps, "pictures": len(pictures.sent),
            "draw_cpu": pictures.cpu_seconds, "elapsed": elapsed, "cpu": cpu}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (1 on a machine other jobs share: spinning threads make every step slower)")
    a = p.parse_args(argv)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    logging.basicConfig(level=logging.WARNING)
    import builtins

    work = tempfile.mkdtemp(prefix="bench-rollouts-")
    model_dir = str(build_tiny_model("qwen2_5_vl", os.path.join(work, "model"), seed=0, rope_theta=FULL.rope_theta,
                                     min_pixels=FULL.image_size ** 2, max_pixels=FULL.image_size ** 2, **FULL.model))
    data = generate(os.path.join(work, "data"), 400, 4, seed=0, image_size=FULL.image_size, max_shapes=1,
                    solo=FULL.solo, background=FULL.background, compact=True, progress=False)
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    quiet = builtins.print
    for repeat in range(a.repeats):
        for mode, flags in MODES.items():
            builtins.print = lambda *x, **k: None  # the per-step console lines
            try:
                results[mode].append(train_once(work, model_dir, data, a.steps, flags, f"{mode}-{repeat}"))
            finally:
                builtins.print = quiet
            r = results[mode][-1]
            print(f"  {mode:10s} run {repeat + 1}: {r['s_per_step']:.3f} s/step, {r['pictures']} pictures",
                  file=sys.stderr)
    base = statistics.median(r["s_per_step"] for r in results["off"])
    base_cpu = statistics.median(r["cpu_per_step"] for r in results["off"])
    print(f"\n{a.steps} GRPO steps of the demo's stage per run, median of {a.repeats} runs per mode, "
          f"{os.cpu_count()} CPUs, {a.threads or 'default'} torch threads, load average {os.getloadavg()[0]:.1f}\n")
    print("| mode | pictures per run | s/step | vs off | CPU s/step | vs off | drawing CPU per picture | "
          "drawing CPU / training CPU |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode, runs in results.items():
        s = statistics.median(r["s_per_step"] for r in runs)
        c = statistics.median(r["cpu_per_step"] for r in runs)
        count = statistics.median(r["pictures"] for r in runs)
        drawn = sum(r["pictures"] for r in runs)
        per = sum(r["draw_cpu"] for r in runs) / drawn * 1000 if drawn else 0.0
        share = sum(r["draw_cpu"] for r in runs) / sum(r["cpu"] for r in runs)
        print(f"| {mode} | {count:g} | {s:.3f} | {s / base:.3f}x | {c:.3f} | {c / base_cpu:.3f}x | {per:.0f} ms | "
              f"{share:.2%} |")

if __name__ == "__main__":
    main()
