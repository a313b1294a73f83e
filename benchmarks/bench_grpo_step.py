"""Benchmark: stock ``trl.GRPOTrainer`` versus vlmr1's ``VLMGRPOTrainer`` (``--shared_prefix``) on one GRPO step.

Both trainers are built in this process from the same weights, data, seed and settings. Per repeat (alternating
stock / vlmr1) it times TRL's own generation (``_generate_single_turn``) and the training forward+backward
(``compute_loss`` + ``backward``) on one batch produced by TRL's ``_generate_and_score_completions`` (rows
shuffled as ``_prepare_inputs`` shuffles them), and measures the peak memory of the forward+backward above what
was allocated before it: ``torch.cuda.max_memory_allocated`` on GPU, the resident-set high-water mark on CPU
(``VmHWM``, reset through ``/proc/self/clear_refs``; glibc is told to mmap large blocks so freed tensors leave the
RSS). Prints medians and ratios as a table; where a target is missed, a ``torch.profiler`` summary of both.

    python benchmarks/bench_grpo_step.py            # small CPU case (a ~4M-parameter Qwen2.5-VL)
    python benchmarks/bench_grpo_step.py --threads 1  # the same on cores other processes share (steadier times)
    python benchmarks/bench_grpo_step.py --arch internvl  # the same case for another family (see ARCHS)
    python benchmarks/bench_grpo_step.py --gpu      # Qwen2.5-VL-3B shapes, random weights, bf16, one GPU
    python benchmarks/bench_grpo_step.py --real-width  # Qwen2.5-VL-3B widths, 2 text + 2 vision layers, CPU
    python benchmarks/bench_grpo_step.py --real-width --like qwen3_vl_4b  # another released architecture

On CPU the table also gives process CPU time; it stays close to wall time unless other processes take the cores.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import logging
import os
import statistics
import sys
import tempfile
import time

if sys.platform == "linux" and "MALLOC_MMAP_THRESHOLD_" not in os.environ:  # before torch allocates anything
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "131072"
    os.execv(sys.executable, [sys.executable, *sys.argv])

import numpy as np  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from PIL import Image  # noqa: E402
from trl import GRPOTrainer  # noqa: E402
from trl.trainer.utils import shuffle_sequence_dict, split_pixel_values_by_grid, unsplit_pixel_values_by_grid  # noqa: E402

from vlmr1.models import build_tiny_model, get_family  # noqa: E402
from vlmr1.models.full_size import LIKE, real_width_model  # noqa: E402
from vlmr1.training.config import VLMR1GRPOConfig  # noqa: E402
from vlmr1.training.resident_memory import peak_bytes, reset_peak, settled_resident_bytes  # noqa: E402
from vlmr1.training.trainer import VLMGRPOTrainer  # noqa: E402

QUESTION = ("Look at the picture carefully and count every red shape, every blue shape and every green shape you "
            "can see; then add the three numbers together, explain each step of your reasoning in a few short "
            "sentences, and finally write the total inside answer tags so that it can be checked automatically.")
TARGETS = {"forward+backward": 2.5, "generation": 1.5, "peak memory": 0.5}


@dataclasses.dataclass
class Case:
    """One benchmark shape."""

    name: str
    image_size: tuple[int, int] | None  # (width, height); None: the arch's own (see ``Arch.image_size``)
    prompts: int  # distinct prompts per batch
    group_size: int  # G
    completion_len: int
    device: str
    dtype: torch.dtype


SMALL = Case("small (CPU, ~4M params)", None, 1, 8, 100, "cpu", torch.float32)
GPU = Case("full-size shapes (GPU, bf16)", (640, 480), 1, 8, 256, "cuda", torch.bfloat16)
# released widths with few layers on CPU: a real-size image, a small group (one step takes minutes)
REAL_WIDTH = Case("real width (CPU)", (640, 480), 1, 4, 32, "cpu", torch.float32)
IMAGE_TOKENS = (20, 15)  # the small case's image, in merged tokens: 300 image tokens of a ~400-token prompt


@dataclasses.dataclass(frozen=True)
class Arch:
    """One model family: its small CPU model (``build_tiny_model`` sizes, the same for every family) and, for
    ``--gpu``, a full-size config. A family is added here with one entry.

    Attributes:
        model_type: the family's ``config.model_type`` (it must have a tiny builder).
        vision: vision-config values set before the weights are drawn.
        image_size: the small case's image (width, height); None: ``IMAGE_TOKENS`` at the family's patch and merge
            sizes.
        full_size: the ``vlmr1.models.full_size.LIKE`` name of a released architecture of the family (``--gpu``,
            ``--real-width``), or None.
        tiny: other ``build_tiny_model`` arguments (InternVL's tile size).
    """

    model_type: str
    vision: dict = dataclasses.field(default_factory=dict)
    image_size: tuple[int, int] | None = None
    full_size: str | None = None
    tiny: dict = dataclasses.field(default_factory=dict)

    def small_image_size(self) -> tuple[int, int]:
        if self.image_size is not None:
            return self.image_size
        family = get_family(self.model_type)
        factor = family.patch_size * family.merge_size
        return IMAGE_TOKENS[0] * factor, IMAGE_TOKENS[1] * factor


ARCHS = {
    "qwen2_5_vl": Arch("qwen2_5_vl", full_size="qwen2_5_vl_3b"),
    "qwen2_vl": Arch("qwen2_vl", full_size="qwen2_vl_2b"),
    # DeepStack from three vision blocks into the first three decoder layers, as in the released models
    "qwen3_vl": Arch("qwen3_vl", vision={"deepstack_visual_indexes": [0, 1, 2]}, full_size="qwen3_vl_4b"),
    # 224 px tiles of 64 tokens: a 448 px square is 2 x 2 tiles and a thumbnail, 320 image tokens
    "internvl": Arch("internvl", image_size=(448, 448), tiny={"tile_size": 224}, full_size="internvl3_2b"),
    "glm4v": Arch("glm4v"),
}


def small_model(arch: Arch, workdir: str):
    """A ~4M-parameter model (4 text + 4 vision layers) whose processor keeps the case's image whole."""
    from transformers import AutoConfig, AutoProcessor, GenerationConfig

    width, height = arch.small_image_size()
    path = build_tiny_model(arch.model_type, workdir, text_layers=4, hidden_size=256, num_attention_heads=4,
                            num_key_value_heads=2, intermediate_size=512, vision_layers=4, vision_hidden=128,
                            vision_heads=4, max_pixels=width * height, **arch.tiny)
    family = get_family(arch.model_type)
    if not arch.vision:
        model = family.load(path, dtype=torch.float32, attn_implementation="sdpa")
    else:
        config = AutoConfig.from_pretrained(path)
        for key, value in arch.vision.items():
            setattr(config.vision_config, key, value)
        config._attn_implementation = "sdpa"
        torch.manual_seed(0)
        model = family.model_class(config)
        model.generation_config = GenerationConfig.from_pretrained(path)
    return model, AutoProcessor.from_pretrained(path)


def gpu_model(like: str):
    """A random-weight full-size model in bf16 on the GPU (nothing downloaded) and its processor."""
    return real_width_model(like, text_layers=None, vision_layers=None, dtype=torch.bfloat16, device="cuda")


def varied_reward(completions, **kwargs):
    """Distinct rewards within a group, so the loss has gradients."""
    return [float(i % 3) for i in range(len(completions))]


def make_trainer(cls, model, processor, case: Case, outdir: str, gradient_checkpointing: bool):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (*case.image_size[::-1], 3), dtype=np.uint8))
              for _ in range(case.prompts)]
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": QUESTION}], "image": image}
                                 for image in images])
    batch = case.prompts * case.group_size
    args = VLMR1GRPOConfig(
        output_dir=outdir, per_device_train_batch_size=batch, num_generations=case.group_size,
        max_completion_length=case.completion_len, generation_kwargs={"min_new_tokens": case.completion_len},
        gradient_checkpointing=gradient_checkpointing, bf16=case.dtype == torch.bfloat16, report_to="none", seed=0,
        use_cpu=case.device == "cpu", shared_prefix=True, logging_steps=1)
    trainer = cls(model=model, reward_funcs=[varied_reward], args=args, train_dataset=dataset,
                  processing_class=processor)
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train, read by the loss
    if gradient_checkpointing:
        model.activation_checkpointing_enable(args.gradient_checkpointing_kwargs)
    return trainer, [row for row in dataset for _ in range(case.group_size)]


class PeakMemory:
    """Peak memory of a block above what was in use when it started, in MiB."""

    def __init__(self, device: str):
        self.device, self.mib = device, 0.0

    def __enter__(self):
        gc.collect()
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            self.start = settled_resident_bytes()
            reset_peak()
        return self

    def __exit__(self, *exc):
        if self.device == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = peak_bytes()
        self.mib = (peak - self.start) / 2**20


def timed(fn, device: str) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    if device == "cuda":
        torch.cuda.synchronize()
    start, cpu_start = time.perf_counter(), time.process_time()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu_start


def generation(trainer, rows, case: Case):
    prompts = [[{"role": "user", "content": [{"type": "image", "image": row["image"]},
                                             {"type": "text", "text": QUESTION}]}] for row in rows]
    prompt_ids, images, fields = trainer._tokenize_prompts(prompts)

    def run():
        torch.manual_seed(0)
        trainer.model.eval()
        return trainer._generate_single_turn(prompt_ids, images, fields, case.group_size)

    return run, len(prompt_ids[0])


def forward_backward(trainer, inputs):
    def run():
        trainer.model.train()
        loss = trainer.compute_loss(trainer.model, inputs)
        loss.backward()
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        grad_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
        trainer.model.zero_grad(set_to_none=True)
        return loss.item(), grad_norm.item()

    return run


def training_inputs(trainer, rows):
    """One shuffled training batch, exactly as TRL's ``_prepare_inputs`` hands it to ``compute_loss``."""
    trainer.model.train()
    torch.manual_seed(0)
    batch = trainer._generate_and_score_completions(rows)
    return unsplit_pixel_values_by_grid(shuffle_sequence_dict(split_pixel_values_by_grid(batch)))


def profile(label: str, fn, device: str):
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        fn()
    sort = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    print(f"\n--- torch.profiler: {label} ---")
    print(prof.key_averages().table(sort_by=sort, row_limit=12))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=sorted(ARCHS), default="qwen2_5_vl", help="model family")
    parser.add_argument("--gpu", action="store_true", help="full-size shapes (Qwen2.5-VL-3B), bf16, on one GPU")
    parser.add_argument("--real-width", dest="real_width", action="store_true",
                        help="a released architecture's widths with few layers (--text_layers, --vision_layers), "
                        "random weights, a 640x480 image, fp32 on CPU")
    parser.add_argument("--like", choices=sorted(LIKE), default=None,
                        help="released architecture of --gpu / --real-width (default: the --arch family's)")
    parser.add_argument("--text_layers", type=int, default=2, help="--real-width: decoder layers")
    parser.add_argument("--vision_layers", type=int, default=2, help="--real-width: vision blocks")
    parser.add_argument("--prompts", type=int, default=None, help="distinct prompts per batch (default: 1)")
    parser.add_argument("--group_size", type=int, default=None, help="G (default: 8; --real-width: 4)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per trainer and phase, median kept (default 2; --real-width 1)")
    parser.add_argument("--gradient_checkpointing", action=argparse.BooleanOptionalAction, default=None,
                        help="checkpoint layers in both trainers (default: on for --gpu, off for the CPU case)")
    parser.add_argument("--profile", action="store_true", help="print the profiler summaries even when on target")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("vlmr1").setLevel(logging.INFO)  # shows any fallback to the stock path
    arch = ARCHS[args.arch]
    like = args.like or arch.full_size
    if (args.gpu or args.real_width) and like is None:
        parser.error(f"--gpu / --real-width: no released architecture for {args.arch}; give --like")
    if args.gpu and args.real_width:
        parser.error("--gpu and --real-width are two different cases: give one")
    if args.gpu:
        case = dataclasses.replace(GPU, name=f"{like} shapes (GPU, bf16)")
    elif args.real_width:
        case = dataclasses.replace(REAL_WIDTH, name=f"{like} widths, {args.text_layers} text layers, "
                                   f"{args.vision_layers} vision blocks (CPU, fp32)")
    else:
        case = dataclasses.replace(SMALL, name=f"{SMALL.name}, {args.arch}", image_size=arch.small_image_size())
    if args.prompts:
        case = dataclasses.replace(case, prompts=args.prompts)
    if args.group_size:
        case = dataclasses.replace(case, group_size=args.group_size)
    repeats = args.repeats or (1 if args.real_width else 2)
    checkpointing = args.gpu if args.gradient_checkpointing is None else args.gradient_checkpointing
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as workdir:
        if args.gpu:
            model, processor = gpu_model(like)
        elif args.real_width:
            model, processor = real_width_model(like, text_layers=args.text_layers, vision_layers=args.vision_layers)
        else:
            model, processor = small_model(arch, os.path.join(workdir, "model"))
        twin = copy.deepcopy(model)  # same weights; each trainer patches its own model
        stock, rows = make_trainer(GRPOTrainer, model, processor, case, os.path.join(workdir, "stock"), checkpointing)
        ours, _ = make_trainer(VLMGRPOTrainer, twin, processor, case, os.path.join(workdir, "ours"), checkpointing)
        inputs = training_inputs(stock, rows)

        runs = {}
        for name, trainer in (("stock", stock), ("vlmr1", ours)):
            gen, prompt_len = generation(trainer, rows, case)
            runs[name] = {"generation": gen, "forward+backward": forward_backward(trainer, inputs)}
        image_tokens = int((inputs["prompt_ids"][0] == model.config.image_token_id).sum())
        params = sum(p.numel() for p in model.parameters())
        print(f"case: {case.name}; {params / 1e6:.1f}M parameters, {case.dtype}, device {case.device}, "
              f"{torch.get_num_threads()} CPU threads, gradient checkpointing {'on' if checkpointing else 'off'}")
        print(f"batch: {case.prompts} prompts x G={case.group_size}; prompt {prompt_len} tokens "
              f"({image_tokens} image tokens), completions {inputs['completion_ids'].size(1)} tokens")

        times = {name: {phase: [] for phase in runs[name]} for name in runs}
        memory, losses = {}, {}
        for name in runs:  # warm-up (also checks both compute the same loss)
            losses[name] = runs[name]["forward+backward"]()
            runs[name]["generation"]()
        for _ in range(repeats):
            for phase in ("generation", "forward+backward"):
                for name in runs:
                    times[name][phase].append(timed(runs[name][phase], case.device))
        for name in runs:
            with PeakMemory(case.device) as peak:
                runs[name]["forward+backward"]()
            memory[name] = peak.mib

    report(times, memory, losses, runs, case, args.profile)


def report(times, memory, losses, runs, case: Case, always_profile: bool):
    rows = []
    for phase in ("forward+backward", "generation"):
        stock, ours = (statistics.median(t[0] for t in times[name][phase]) for name in ("stock", "vlmr1"))
        rows.append((f"{phase} time per step", f"{stock:.3f} s", f"{ours:.3f} s", stock / ours, "x faster",
                     TARGETS[phase], stock / ours >= TARGETS[phase]))
    cpu_rows = []
    for phase in ("forward+backward", "generation"):
        stock, ours = (statistics.median(t[1] for t in times[name][phase]) for name in ("stock", "vlmr1"))
        cpu_rows.append(f"{'  ' + phase + ' CPU time':32} {stock:>10.3f} s {ours:>10.3f} s {stock / ours:>8.2f} x faster")
    ratio = memory["vlmr1"] / memory["stock"]
    rows.append(("peak memory, forward+backward", f"{memory['stock']:.0f} MiB", f"{memory['vlmr1']:.0f} MiB", ratio,
                 "x of stock", TARGETS["peak memory"], ratio <= TARGETS["peak memory"]))
    print(f"\n{'measure':32} {'stock TRL':>12} {'vlmr1':>12} {'ratio':>8}            target")
    for label, stock, ours, value, unit, target, ok in rows:
        bound = ">=" if unit == "x faster" else "<="
        print(f"{label:32} {stock:>12} {ours:>12} {value:>8.2f} {unit:10} {bound} {target} {'ok' if ok else 'MISSED'}")
    if case.device == "cpu":  # process CPU time: what the step costs when other processes share the cores
        print("\n".join(cpu_rows))
    (loss_a, norm_a), (loss_b, norm_b) = losses["stock"], losses["vlmr1"]
    print(f"same batch, same weights: loss {loss_a:.6g} / {loss_b:.6g}, gradient norm {norm_a:.6g} / {norm_b:.6g}")
    missed = {"generation" if label.startswith("generation") else "forward+backward" for label, *_, ok in rows
              if not ok}
    for phase in sorted(missed | ({"generation", "forward+backward"} if always_profile else set())):
        for name in runs:
            profile(f"{name} {phase}", runs[name][phase], case.device)


if __name__ == "__main__":
    main()
