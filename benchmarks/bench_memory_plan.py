"""Benchmark: `vlmr1 plan`'s memory terms against the measured peak memory of a training forward+backward on CPU.

Each case runs in a fresh process (``--child``): it builds a Qwen2.5-VL model from a config (random weights, fp32),
adds TRL's fused log-prob head as ``GRPOTrainer`` does, and runs one GRPO training forward+backward of one prompt
(one image: a patch grid, or InternVL tiles) and its G completions, through TRL's stock forward or vlmr1's shared prefix, with or without gradient
checkpointing. Memory is the process's resident set: the rise while building the model (weights), what is held
between the forward and the backward (activations), the high-water mark of the forward+backward above what was
resident before it (``VmHWM``, reset through ``/proc/self/clear_refs``), and what stays after it (gradients). glibc
is told to hand every block of 64 KiB or more back to the system when freed (``MALLOC_MMAP_THRESHOLD_``), so the
resident set follows the live tensors instead of glibc's free lists, and one warm-up step on one row comes first
(autograd and oneDNN set up their state once per process); torch has no allocator statistics for CPU memory, and
``tracemalloc`` does not see torch's allocations.

    python benchmarks/bench_memory_plan.py                 # real widths (Qwen2.5-VL-3B) at 1, 2 and 4 text layers
    python benchmarks/bench_memory_plan.py --tiny          # a small model, seconds (what the test runs)
    python benchmarks/bench_memory_plan.py --json          # one JSON line per case

Prints, per case, the plan and the measurement of each term and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

MMAP_THRESHOLD = "65536"
MiB = 2**20




def model_config(case: dict):
    """The case's config: a released architecture (``real_config`` of ``case["like"]``, cut to the case's depths;
    Qwen2.5-VL keeps its released full-attention blocks below the cut) or the small Qwen2.5-VL test widths."""
    from vlmr1.models import get_family, tiny_config, train_tiny_tokenizer
    from vlmr1.models.full_size import LIKE, real_config

    if case["tiny"]:
        return tiny_config("qwen2_5_vl", text_layers=case["text_layers"], vision_layers=case["vision_layers"],
                           hidden_size=512, intermediate_size=2048, num_attention_heads=8, num_key_value_heads=2,
                           vision_hidden=128, vision_heads=2)
    like = case.get("like") or "qwen2_5_vl_3b"  # older --json lines have no "like": Qwen2.5-VL-3B
    tokenizer = train_tiny_tokenizer(tokens=get_family(LIKE[like].model_type).chat_tokens())
    return real_config(like, tokenizer, text_layers=case["text_layers"], vision_layers=case["vision_layers"])


def image_tokens_and_pixels(config, case: dict):
    """The image's tokens in the prompt and its pixel rows: a ``grid`` of patches (Qwen) or ``tiles`` whole tiles
    (InternVL: ``image_seq_length`` tokens each)."""
    import torch

    if config.model_type == "internvl":
        side = config.vision_config.image_size[0]
        return config.image_seq_length * case["tiles"], torch.randn(case["tiles"], 3, side, side)
    vision = config.vision_config
    grid_h, grid_w = case["grid"]
    patch = vision.in_channels * vision.temporal_patch_size * vision.patch_size**2
    return grid_h * grid_w // vision.spatial_merge_size**2, torch.randn(grid_h * grid_w, patch)


def batch(config, case: dict):
    """One prompt (text, one image) repeated G times, completions of ``completion`` tokens (the last row ends early:
    padding, as GRPO batches have), as TRL hands them to the log-prob forward."""
    import torch

    torch.manual_seed(0)
    rows, completion = case["rows"], case["completion"]
    image_tokens, pixels = image_tokens_and_pixels(config, case)
    tiles = config.model_type == "internvl"
    if tiles:  # <img> and </img> around the tiles' tokens
        from vlmr1.models import get_family, train_tiny_tokenizer

        tokenizer = train_tiny_tokenizer(tokens=get_family("internvl").chat_tokens())
        start, end = tokenizer.convert_tokens_to_ids(["<img>", "</img>"])
    else:
        start, end = config.vision_start_token_id, config.vision_end_token_id
    text = list(range(10, 10 + case["prompt_text"] - 3))
    prompt = [start] + [config.image_token_id] * image_tokens + [end] + text[:-1] + [text[-1] + 1]
    completions = torch.randint(10, 500, (rows, completion))
    input_ids = torch.cat([torch.tensor(prompt).expand(rows, -1), completions], dim=1)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[-1, -completion // 4:] = 0
    inputs = dict(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixels.repeat(rows, *[1] * (
        pixels.dim() - 1)), num_images=[1] * rows)
    if not tiles:
        types = torch.zeros_like(input_ids)
        types[:, 1:1 + image_tokens] = 1
        grid = [1, *case["grid"]]
        inputs.update(mm_token_type_ids=types, image_grid_thw=torch.tensor([grid] * rows))
    return inputs


def forward_backward(model, inputs: dict, completion: int, shared: bool, after_forward=None) -> None:
    """The GRPO training forward (log-probs and entropies of the completions, TRL's fused head) and its backward;
    ``after_forward()`` is called between them."""
    import torch

    from vlmr1.training import shared_prefix as sp

    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    if shared:
        prompt_len = ids.size(1) - completion
        types = inputs.get("mm_token_type_ids")
        images = sp.BatchImages.of(model.config, ids[:, :prompt_len], inputs["pixel_values"],
                                   inputs.get("image_grid_thw"), inputs["num_images"])
        groups = sp.find_prompt_groups(ids[:, :prompt_len], mask[:, :prompt_len], types, images)
        logps, _ = sp.shared_prefix_logps(model, sp.backbone_of(model), ids, mask, completion, groups,
                                          compute_entropy=True, images=images, mm_token_type_ids=types)
    else:
        labels = ids.masked_fill(mask == 0, -100)
        labels[:, :-completion] = -100
        model_inputs = {k: v for k, v in inputs.items() if k != "num_images"}
        logps = model(**model_inputs, labels=labels, fused_lm_head=True).log_probs[:, -completion:]
    completion_mask = mask[:, -completion:]
    loss = -(logps * completion_mask).sum() / completion_mask.sum()
    if after_forward is not None:
        after_forward()
    loss.backward()
    del loss, logps
    torch.cuda.empty_cache() if torch.cuda.is_available() else None


def child(case: dict) -> dict:
    """Measure one case in this (fresh) process; returns bytes per phase."""
    import torch
    from trl.trainer.utils import add_fused_lm_head

    from vlmr1.models import get_family
    from vlmr1.training.resident_memory import peak_bytes, reset_peak, settled_resident_bytes

    torch.set_num_threads(case["threads"])
    config = model_config(case)
    config.get_text_config()._attn_implementation = "sdpa"
    inputs = batch(config, case)
    start = settled_resident_bytes()
    torch.manual_seed(0)
    model = get_family(config.model_type).model_class(config)
    model.config._attn_implementation = "sdpa"
    model.train()
    weights = settled_resident_bytes() - start
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    if case["gradient_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    # warm-up on one row: autograd and oneDNN set up their own state once per process, which a run has long done
    small = batch(config, {**case, "rows": 1})
    forward_backward(model, small, case["completion"], False)
    model.zero_grad(set_to_none=True)
    del small
    before = settled_resident_bytes()
    reset_peak()
    held = []
    forward_backward(model, inputs, case["completion"], case["shared_prefix"],
                     after_forward=lambda: held.append(settled_resident_bytes() - before))
    peak = peak_bytes() - before
    gradients = settled_resident_bytes() - before
    params = sum(p.numel() for p in model.parameters())
    return {"weights": weights, "gradients": gradients, "activations": held[0], "forward_backward": peak,
            "params": params}


def planned(case: dict) -> dict:
    """The plan's numbers for the case (fp32, one process, CPU head)."""
    from vlmr1.training.memory_plan import ModelShape, RunShape, plan_memory

    shape = ModelShape.from_config(model_config(case))
    patches = case["tiles"] * shape.tile_patches if shape.tile else case["grid"][0] * case["grid"][1]
    run = RunShape(num_generations=case["rows"], batch=case["rows"], prompt_text=case["prompt_text"],
                   image_patches=patches, completion=case["completion"], bf16=False,
                   gradient_checkpointing=case["gradient_checkpointing"], shared_prefix=case["shared_prefix"],
                   device="cpu")
    plan = plan_memory(shape, run)
    t = plan.terms
    # held after the forward: the layers' saved tensors and the head's saved input (the final norm's output)
    head_input = 4 * shape.hidden * run.batch * (run.completion if run.shared_prefix else
                                                 run.prompt_tokens(shape) + run.completion - 1)
    activations = t["act_vision"] + t["act_prompt"] + t["act_completion"] + head_input
    return {"weights": t["weights"], "gradients": t["gradients"], "activations": activations,
            "forward_backward": plan.train_peak - t["weights"] - t["optimizer"], "params": shape.total_params()}


def measure(case: dict) -> dict:
    """Run ``child`` in a fresh interpreter (so the high-water mark and glibc's settings are its own)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD, "OMP_NUM_THREADS": str(case["threads"])}
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(case)], env=env, capture_output=True,
                         text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


VARIANTS = {"stock": (False, False), "shared": (True, False), "ckpt": (True, True)}  # (shared prefix, grad ckpt)


def cases(tiny: bool, depths: list[int], threads: int, only: str | None = None,
          like: str = "qwen2_5_vl_3b") -> list[dict]:
    """Real widths: 8 rows of 128 completion tokens after one 448x448 image (Qwen: 32x32 patches, 256 image tokens;
    InternVL: one tile, 256 tokens), so activations weigh next to the weights and gradients; Qwen2.5-VL with 4
    vision blocks (3 windowed, 1 full attention), InternVL with 2."""
    base = dict(tiny=tiny, like=None if tiny else like, vision_layers=2 if tiny or like == "internvl3_2b" else 4,
                rows=8, prompt_text=40, completion=64 if tiny else 128, grid=(24, 32) if tiny else (32, 32), tiles=1,
                threads=threads)
    variants = [VARIANTS[name] for name in (only or ",".join(VARIANTS)).split(",")]
    return [{**base, "text_layers": depth, "shared_prefix": shared, "gradient_checkpointing": gc_on}
            for depth in depths for shared, gc_on in variants]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tiny", action="store_true", help="small Qwen2.5-VL widths (seconds) instead of --like's")
    parser.add_argument("--like", default="qwen2_5_vl_3b", help="the released architecture whose widths to measure "
                        "(a vlmr1.models.full_size.LIKE name)")
    parser.add_argument("--depths", default=None, help="text layers per case, comma-separated (default 1,2,4)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON line per case")
    parser.add_argument("--only", help="variants, comma-separated: stock, shared (shared prefix), ckpt (shared prefix "
                        "and gradient checkpointing); default all three")
    parser.add_argument("--replan", help="a --json output: print its measurements against the current plan")
    args = parser.parse_args()
    from vlmr1.models.full_size import LIKE

    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if args.like not in LIKE:
        parser.error(f"--like: one of {', '.join(LIKE)}")
    depths = [int(d) for d in (args.depths or "1,2,4").split(",")]
    if not args.json:
        print(f"{'case':58s} {'term':17s} {'plan MiB':>9s} {'measured MiB':>13s} {'plan/measured':>14s}")
    if args.replan:
        with open(args.replan) as f:
            runs = [(r["case"], r["measured"]) for r in map(json.loads, f)]
    else:
        runs = [(case, None) for case in cases(args.tiny, depths, args.threads, args.only, args.like)]
    for case, got in runs:
        plan, got = planned(case), got or measure(case)
        name = (f"{'small' if case['tiny'] else case.get('like', 'qwen2_5_vl_3b')}, {case['text_layers']} text layers, {'shared prefix' if case['shared_prefix'] else 'stock'}"
                f"{', grad ckpt' if case['gradient_checkpointing'] else ''}")
        if args.json:
            print(json.dumps({"case": case, "plan": plan, "measured": got}), flush=True)
            continue
        for term in [t for t in ("weights", "gradients", "activations", "forward_backward") if t in got]:
            print(f"{name:58s} {term:17s} {plan[term] / MiB:9.0f} {got[term] / MiB:13.0f} "
                  f"{plan[term] / max(got[term], 1):14.2f}", flush=True)


if __name__ == "__main__":
    main()
