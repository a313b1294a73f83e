"""GPU smoke check: GRPO steps of a Qwen2.5-VL-3B-shaped model (random weights, nothing downloaded), one JSON line.

Runs vlmr1's own path (data checks, lazy dataset, coordinate frames, ``VLMGRPOTrainer``) with bf16 and gradient
checkpointing on one GPU, with vLLM colocate rollouts when vllm is importable. After a warm-up step, steps alternate
between TRL's stock forward and ``--shared_prefix`` (same model, data and process), and the script prints exactly
one JSON line on stdout (everything else goes to stderr): median step time, tokens per second and peak memory of the
shared-prefix steps, the same for the stock steps, and their ratios (``shared_prefix_speedup`` = stock step time /
shared step time; ``shared_prefix_memory_ratio`` = shared peak / stock peak). ``--tiny`` runs the same script on
CPU with a tiny model (the test suite does, so the script cannot rot).

    bash scripts/gpu_smoke.sh > smoke.json        # or: python scripts/gpu_smoke.py --steps 7
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time

import torch
from PIL import Image, ImageDraw
from transformers import TrainerCallback

from vlmr1.training import resident_memory


def write_data(folder: str, num: int, size: tuple[int, int]) -> str:
    """``num`` images of coloured rectangles and a counting jsonl in the seed's format."""
    rng = random.Random(0)
    path = os.path.join(folder, "smoke.jsonl")
    with open(path, "w") as f:
        for i in range(num):
            img = Image.new("RGB", size, (240, 240, 240))
            draw = ImageDraw.Draw(img)
            count = rng.randint(1, 5)
            for _ in range(count):
                x, y = rng.randint(0, size[0] - 60), rng.randint(0, size[1] - 60)
                draw.rectangle([x, y, x + 50, y + 50], fill=(200, 30, 30))
            img.save(os.path.join(folder, f"{i}.png"))
            f.write(json.dumps({"id": i, "image": f"{i}.png", "accu_reward_method": "numeric", "conversations": [
                {"from": "human", "value": "<image>How many red squares are there?"},
                {"from": "gpt", "value": str(count)}]}) + "\n")
    return path


def build_model(tiny: bool, device: str, dtype: torch.dtype):
    """The model object and its processor: Qwen2.5-VL-3B's architecture (or tiny sizes), random weights, the offline
    tokenizer and the released image settings."""
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    from vlmr1.models import build_qwen_chat_template, tiny_config, tiny_processor, train_tiny_tokenizer
    from vlmr1.models.full_size import real_width_model

    if not tiny:
        return real_width_model("qwen2_5_vl_3b", text_layers=None, vision_layers=None, dtype=dtype, device=device)
    tokenizer = train_tiny_tokenizer(chat_template=build_qwen_chat_template())
    config = tiny_config("qwen2_5_vl", tokenizer=tokenizer)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    model.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                                               pad_token_id=config.pad_token_id)
    return model, tiny_processor("qwen2_5_vl", tokenizer=tokenizer, max_pixels=640 * 480)


class AlternateSharedPrefix(TrainerCallback):
    """Step 1 warms up with ``--shared_prefix``; later steps alternate stock (even steps) and shared (odd steps), so
    both paths run on the same model, data and process. Records each step's mode and peak memory."""

    def __init__(self, gpu: bool):
        self.gpu, self.shared, self.peak_gib = gpu, [], []

    def on_step_begin(self, args, state, control, **kwargs):
        args.shared_prefix = state.global_step % 2 == 0  # global_step: steps done; the trainer reads it per call
        self.shared.append(args.shared_prefix)
        reset_peak_memory(self.gpu)

    def on_step_end(self, args, state, control, **kwargs):
        self.peak_gib.append(peak_memory_gib(self.gpu))


def reset_peak_memory(gpu: bool) -> None:
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    else:
        resident_memory.reset_peak()


def peak_memory_gib(gpu: bool) -> float:
    """Peak since the last reset: allocated GPU memory, or the process's resident-set high-water mark on CPU."""
    if gpu:
        return torch.cuda.max_memory_allocated() / 2**30
    return resident_memory.peak_bytes() / 2**30


def summarize(log_history: list[dict], shared: list[bool], peak_gib: list[float]) -> dict:
    """Median step time, tokens per second and peak memory of the shared and the stock steps (step 1 left out)."""
    steps = [h for h in log_history if "step_time" in h]
    tokens = [h["num_tokens"] for h in steps]
    per_step = [(h["step_time"], tokens[i] - (tokens[i - 1] if i else 0)) for i, h in enumerate(steps)]
    result = {}
    for name, mode in (("", True), ("stock_", False)):
        chosen = [i for i in range(1, len(per_step)) if shared[i] == mode]
        times = [per_step[i][0] for i in chosen]
        result[f"{name}step_time_s"] = round(statistics.median(times), 4)
        result[f"{name}tokens_per_s"] = round(sum(per_step[i][1] for i in chosen) / sum(times), 1)
        result[f"{name}peak_memory_gib"] = round(max(peak_gib[i] for i in chosen), 3)
    result["shared_prefix_speedup"] = round(result["stock_step_time_s"] / result["step_time_s"], 3)
    result["shared_prefix_memory_ratio"] = round(result["peak_memory_gib"] / result["stock_peak_memory_gib"], 3)
    return result


@contextlib.contextmanager
def stdout_to_stderr():
    """Everything written to stdout (Python or C level: progress, logs) goes to stderr, so the caller's stdout gets
    only the result line."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: list[str] | None = None) -> dict:
    """Run the smoke check; print its one JSON line on stdout (everything else on stderr) and return it as a dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=7, help="GRPO steps: 1 warm-up, then stock and shared in turn")
    parser.add_argument("--num_generations", type=int, default=8)
    parser.add_argument("--max_completion_length", type=int, default=256)
    parser.add_argument("--tiny", action="store_true", help="tiny model on CPU (a check that the script runs)")
    parser.add_argument("--no_vllm", action="store_true", help="transformers generation even if vllm is installed")
    args = parser.parse_args(argv)
    if args.steps < 3:
        parser.error("--steps: give 3 or more (a warm-up step, then at least one stock and one shared step)")
    with stdout_to_stderr(), tempfile.TemporaryDirectory(prefix="vlmr1_gpu_smoke_") as workdir:
        result = run(args, workdir)
    print(json.dumps(result), flush=True)
    return result


def run(args: argparse.Namespace, workdir: str) -> dict:
    from vlmr1.models import get_family
    from vlmr1.training.config import VLMR1Arguments, VLMR1GRPOConfig
    from vlmr1.training.setup import check_data, make_datasets
    from vlmr1.training.trainer import VLMGRPOTrainer

    gpu = not args.tiny
    if gpu and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --tiny for the CPU check")
    use_vllm = gpu and not args.no_vllm and _vllm_importable()
    data = write_data(workdir, 4 * args.steps, (640, 480))
    model, processor = build_model(args.tiny, "cuda" if gpu else "cpu", torch.bfloat16 if gpu else torch.float32)
    if use_vllm:  # vLLM loads weights from a folder
        model.save_pretrained(os.path.join(workdir, "model"))
        processor.save_pretrained(os.path.join(workdir, "model"))
        model.name_or_path = os.path.join(workdir, "model")

    script_args = VLMR1Arguments(data_file_paths=data, image_folders=workdir, reward_funcs=["accuracy", "format"],
                                 max_pixels=640 * 480)
    checked = check_data(script_args)
    train_dataset, _ = make_datasets(checked, get_family("qwen2_5_vl").coordinate_frame(processor), 0.0, 0)
    training_args = VLMR1GRPOConfig(
        output_dir=os.path.join(workdir, "out"), max_steps=args.steps, per_device_train_batch_size=args.num_generations,
        num_generations=args.num_generations, max_completion_length=args.max_completion_length,
        bf16=gpu, gradient_checkpointing=gpu, logging_steps=1, save_strategy="no", report_to="none",
        use_vllm=use_vllm, vllm_mode="colocate", vllm_gpu_memory_utilization=0.3, remove_unused_columns=False)
    alternate = AlternateSharedPrefix(gpu)
    trainer = VLMGRPOTrainer(model=model, reward_funcs=checked.reward_funcs, args=training_args,
                             train_dataset=train_dataset, processing_class=processor, callbacks=[alternate])
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    return {
        "device": torch.cuda.get_device_name() if gpu else "cpu",
        "model": "Qwen2.5-VL-3B shapes, random weights" if gpu else "tiny",
        "steps": args.steps, "num_generations": args.num_generations,
        "max_completion_length": args.max_completion_length, "generation": "vLLM colocate" if use_vllm else "transformers",
        **summarize(trainer.state.log_history, alternate.shared, alternate.peak_gib),
        "memory": "torch.cuda.max_memory_allocated" if gpu else "process RSS high-water mark",
        "wall_s": round(wall, 1),
    }


def _vllm_importable() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
