"""GPU smoke check: 3 GRPO steps of a Qwen2.5-VL-3B-shaped model (random weights, nothing downloaded).

Runs vlmr1's own path (data checks, lazy dataset, coordinate frames, ``VLMGRPOTrainer``) with bf16 and gradient
checkpointing on one GPU, with vLLM colocate rollouts when vllm is importable, and prints the step time and the
peak GPU memory. ``--tiny`` runs the same script on CPU with a tiny model (the test suite does, so the script
cannot rot).

    bash scripts/gpu_smoke.sh                     # or: python scripts/gpu_smoke.py --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time

import torch
from PIL import Image, ImageDraw


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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--num_generations", type=int, default=8)
    parser.add_argument("--max_completion_length", type=int, default=256)
    parser.add_argument("--tiny", action="store_true", help="tiny model on CPU (a check that the script runs)")
    parser.add_argument("--no_vllm", action="store_true", help="transformers generation even if vllm is installed")
    args = parser.parse_args(argv)

    from vlmr1.models import get_family
    from vlmr1.training.config import VLMR1Arguments, VLMR1GRPOConfig
    from vlmr1.training.setup import check_data, make_datasets
    from vlmr1.training.trainer import VLMGRPOTrainer

    gpu = not args.tiny
    if gpu and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --tiny for the CPU check")
    use_vllm = gpu and not args.no_vllm and _vllm_importable()
    workdir = tempfile.mkdtemp(prefix="vlmr1_gpu_smoke_")
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
    trainer = VLMGRPOTrainer(model=model, reward_funcs=checked.reward_funcs, args=training_args,
                             train_dataset=train_dataset, processing_class=processor)
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    step_times = [h["step_time"] for h in trainer.state.log_history if "step_time" in h]
    result = {
        "device": torch.cuda.get_device_name() if gpu else "cpu",
        "model": "Qwen2.5-VL-3B shapes, random weights" if gpu else "tiny",
        "steps": args.steps, "num_generations": args.num_generations,
        "max_completion_length": args.max_completion_length, "generation": "vLLM colocate" if use_vllm else "transformers",
        "step_time_s": step_times, "median_step_time_s": statistics.median(step_times) if step_times else None,
        "wall_s": round(wall, 1),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if gpu else None,
    }
    print(json.dumps(result, indent=2))
    return result


def _vllm_importable() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
