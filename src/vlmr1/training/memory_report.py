"""``vlmr1 plan``: will a GRPO run fit the GPU? Reads the model's config, the DeepSpeed file and the flags, prints the
per-GPU memory of :mod:`vlmr1.training.memory_plan` as a table (or ``--json``) with a verdict and what to change.

Everything is checked before anything heavy is imported; no model is built and nothing is downloaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from vlmr1.arguments import CommandParser, integer, number
from vlmr1.errors import UserError, bad_argument
from vlmr1.training.memory_plan import CUDA_RESERVE, TERM_HELP, GiB, ModelShape, RunShape, plan_memory

CARDS_GB = {"H200": 141, "H100": 80, "H800": 80, "A100-80GB": 80, "A100-40GB": 40, "A800": 80, "L40S": 48,
            "A6000": 48, "A40": 48, "L40": 48, "RTX6000-ADA": 48, "V100-32GB": 32, "V100-16GB": 16, "4090": 24,
            "3090": 24, "A10G": 24, "A10": 24, "L4": 24, "T4": 16, "5090": 32, "MI300X": 192, "GH200": 96}


def parse_gpu_memory(text: str) -> tuple[str, int]:
    """(name, bytes) of ``--gpu_memory``: a card name (``H100``, ``a100-40gb``) or a size (``80GB``, ``24GiB``).

    Raises:
        UserError: neither (``bad_argument``, listing the cards).
    """
    name = text.strip().upper().replace("_", "-")
    if name in CARDS_GB:
        return name, CARDS_GB[name] * 10**9
    size = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(GB|GIB|G)?", name)
    if size and float(size.group(1)) > 0:
        unit = GiB if size.group(2) == "GIB" else 10**9
        return f"{size.group(1)} {size.group(2) or 'GB'}", int(float(size.group(1)) * unit)
    raise bad_argument("--gpu_memory", f"unknown card or size {text!r}",
                       f"a size such as 80GB or 24GiB, or one of {', '.join(CARDS_GB)}")


def read_deepspeed(path: str | None) -> dict:
    """Stage and offload settings of a DeepSpeed json (None: no DeepSpeed).

    Raises:
        UserError: a missing or unreadable file, or a stage outside 0-3.
    """
    if path is None:
        return {"zero_stage": 0, "offload_optimizer": False, "offload_params": False}
    file = Path(path)
    if not file.is_file():
        raise bad_argument("--deepspeed", f"no such file {path}", "configs/deepspeed/ has zero2.json, zero3.json "
                           "and zero3_offload.json")
    try:
        zero = json.loads(file.read_text()).get("zero_optimization", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
        raise UserError(f"not a DeepSpeed json object ({e})", where=path, kind="bad_deepspeed_config",
                        fix="start from configs/deepspeed/zero3.json") from None
    stage = zero.get("stage", 0)
    if stage not in (0, 1, 2, 3):
        raise UserError(f"zero_optimization.stage must be 0-3, got {stage!r}", where=path,
                        kind="bad_deepspeed_config")

    def offloaded(key: str) -> bool:
        return str((zero.get(key) or {}).get("device", "none")).lower() in ("cpu", "nvme")

    return {"zero_stage": stage, "offload_optimizer": offloaded("offload_optimizer"),
            "offload_params": offloaded("offload_param")}


def model_config(model: str) -> dict:
    """The config dict of ``--model``: a local folder's ``config.json``, or a released architecture of
    ``vlmr1.models.full_size.LIKE`` at its full depth (no download; the token ids, which the plan does not use, come
    from vlmr1's local tokenizer).

    Raises:
        UserError: neither a folder with a config.json nor a ``LIKE`` name.
    """
    folder = Path(model)
    if (folder / "config.json").is_file():
        return json.loads((folder / "config.json").read_text())
    from vlmr1.models import get_family, train_tiny_tokenizer
    from vlmr1.models.full_size import LIKE, real_config

    if model not in LIKE:
        raise bad_argument("--model", f"{model!r} is neither a local folder with a config.json nor a released "
                           "architecture", f"pass the downloaded model's folder, or one of {', '.join(LIKE)}")
    tokenizer = train_tiny_tokenizer(tokens=get_family(LIKE[model].model_type).chat_tokens())
    return real_config(model, tokenizer).to_dict()


def _image_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)[xX](\d+)", text.strip())
    if not match or 0 in (int(match.group(1)), int(match.group(2))):
        raise bad_argument("--image_size", f"expected WIDTHxHEIGHT such as 640x480, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise ValueError(text)


def build_parser() -> CommandParser:
    parser = CommandParser(prog="vlmr1 plan", description="Expected per-GPU memory of a GRPO run, and whether it "
                           "fits the card. Nothing is loaded or downloaded.")
    add = parser.add_argument
    add("--model", required=True, help="local model folder (its config.json) or a released architecture by "
        "its vlmr1 tiny-model --like name, e.g. qwen2_5_vl_3b (an unknown name lists them)")
    add("--num_generations", type=integer(1), default=8)
    add("--per_device_train_batch_size", type=integer(1), default=8)
    add("--steps_per_generation", type=integer(1), default=1)
    add("--prompt_tokens", type=integer(1), default=64, help="text tokens of a prompt, chat template included")
    add("--image_size", default="640x480", help="WIDTHxHEIGHT of each image, or 'none' for text-only")
    add("--images_per_prompt", type=integer(0), default=1)
    add("--min_pixels", type=integer(1), default=3136)
    add("--max_pixels", type=integer(1), default=12845056)
    add("--max_anyres_num", type=integer(1), default=12, help="InternVL: most tiles per image (a thumbnail is added)")
    add("--max_completion_length", type=integer(1), default=256)
    add("--deepspeed", default=None, help="a DeepSpeed json (its ZeRO stage and offload are read)")
    add("--nproc", type=integer(1), default=1, help="processes (GPUs) in the run")
    add("--bf16", type=_bool, default=True)
    add("--gradient_checkpointing", type=_bool, default=False)
    add("--shared_prefix", type=_bool, default=True)
    add("--use_peft", type=_bool, default=False)
    add("--lora_r", type=integer(1), default=64)
    add("--freeze_vision_modules", type=_bool, default=False)
    add("--beta", type=number(0), default=0.0, help="KL coefficient; above 0 keeps a reference model")
    add("--gpu_memory", default="H100", help=f"card ({', '.join(CARDS_GB)}) or size (80GB, 24GiB)")
    add("--json", action="store_true", help="print the plan as one JSON object")
    return parser


def plan_from_args(args) -> tuple[ModelShape, RunShape, dict]:
    """Check every input, then the shapes (no model is built)."""
    gpu_name, gpu_bytes = parse_gpu_memory(args.gpu_memory)
    deepspeed = read_deepspeed(args.deepspeed)
    if args.min_pixels > args.max_pixels:
        raise bad_argument("--min_pixels", f"{args.min_pixels} is above --max_pixels {args.max_pixels}")
    if (args.per_device_train_batch_size * args.nproc * args.steps_per_generation) % args.num_generations:
        raise bad_argument("--per_device_train_batch_size", "per-device batch x processes x steps per generation "
                           f"must be a multiple of --num_generations ({args.num_generations})")
    size = None if args.image_size.lower() == "none" else _image_size(args.image_size)
    try:
        shape = ModelShape.from_config(model_config(args.model))
    except (KeyError, ValueError) as e:
        raise bad_argument("--model", f"cannot read the model's sizes: {e}") from None
    patches = 0 if size is None else args.images_per_prompt * shape.image_patches(
        size, args.min_pixels, args.max_pixels, args.max_anyres_num)
    run = RunShape(num_generations=args.num_generations, batch=args.per_device_train_batch_size,
                   prompt_text=args.prompt_tokens, image_patches=patches, completion=args.max_completion_length,
                   nproc=args.nproc, bf16=args.bf16, gradient_checkpointing=args.gradient_checkpointing,
                   shared_prefix=args.shared_prefix, lora_r=args.lora_r if args.use_peft else 0, beta=args.beta,
                   freeze_vision=args.freeze_vision_modules, steps_per_generation=args.steps_per_generation,
                   **deepspeed)
    return shape, run, {"gpu": gpu_name, "gpu_bytes": gpu_bytes}


LEVERS = [("--gradient_checkpointing true", {"gradient_checkpointing": True}),
          ("--shared_prefix true", {"shared_prefix": True}),
          ("--deepspeed configs/deepspeed/zero3.json", {"zero_stage": 3}),
          ("--use_peft true", {"lora_r": 64}),
          ("--freeze_vision_modules true", {"freeze_vision": True}),
          ("--deepspeed configs/deepspeed/zero3_offload.json", {"zero_stage": 3, "offload_optimizer": True,
                                                                "offload_params": True})]


def suggestions(shape: ModelShape, run: RunShape) -> list[tuple[str, float]]:
    """Flags that lower the peak, with the bytes each saves alone, largest first."""
    import dataclasses

    peak = plan_memory(shape, run).peak
    saved = []
    for flag, change in LEVERS:
        if all(getattr(run, k) == v for k, v in change.items()) or (run.lora_r and "lora_r" in change):
            continue
        if run.zero_stage == 3 and change.get("zero_stage") == 3 and "offload_params" not in change:
            continue
        gain = peak - plan_memory(shape, dataclasses.replace(run, **change)).peak
        if gain > 0:
            saved.append((flag, gain))
    if run.batch > 1:
        smaller = dataclasses.replace(run, batch=run.batch // 2)
        saved.append((f"--per_device_train_batch_size {run.batch // 2}", peak - plan_memory(shape, smaller).peak))
    return sorted(saved, key=lambda s: -s[1])


def report(shape: ModelShape, run: RunShape, card: dict) -> dict:
    """The plan as a dict: terms in GiB, peaks, the verdict, the largest term and what to change."""
    plan = plan_memory(shape, run)
    usable = card["gpu_bytes"] - CUDA_RESERVE
    shown = {k: v for k, v in plan.terms.items() if k != "head_gradient"}
    largest = max(shown, key=shown.get)
    return {"params": shape.total_params(), "prompt_tokens": run.prompt_tokens(shape),
            "image_tokens": run.image_tokens(shape), "terms_gib": {k: v / GiB for k, v in shown.items()},
            "train_peak_gib": plan.train_peak / GiB, "generation_peak_gib": plan.generation_peak / GiB,
            "peak_gib": plan.peak / GiB, "gpu": card["gpu"], "usable_gib": usable / GiB,
            "fits": plan.peak <= usable, "largest_term": largest,
            "suggestions": [{"flag": f, "saves_gib": s / GiB} for f, s in suggestions(shape, run)]}


def render(result: dict, run: RunShape) -> str:
    lines = [f"model: {result['params'] / 1e9:.2f}B parameters; prompt {result['prompt_tokens']} tokens "
             f"({result['image_tokens']} image), completion {run.completion}; {run.batch} rows per GPU, G = "
             f"{run.num_generations}, {run.nproc} GPU(s), ZeRO-{run.zero_stage}"
             f"{' + offload' if run.offload_optimizer or run.offload_params else ''}, "
             f"{'bf16' if run.bf16 else 'fp32'}, gradient checkpointing {'on' if run.gradient_checkpointing else 'off'}, "
             f"shared prefix {'on' if run.shared_prefix else 'off'}{f', LoRA r={run.lora_r}' if run.lora_r else ''}",
             "", f"{'term':20s} {'GiB':>8s}  what"]
    for term, gib in result["terms_gib"].items():
        lines.append(f"{term:20s} {gib:8.2f}  {TERM_HELP[term]}")
    lines += ["", f"{'training peak':20s} {result['train_peak_gib']:8.2f}  states + one micro-batch forward+backward",
              f"{'generation peak':20s} {result['generation_peak_gib']:8.2f}  states + gathered weights + KV cache",
              f"{result['gpu']}: {result['usable_gib']:.1f} GiB usable "
              f"({CUDA_RESERVE / GiB:.1f} GiB kept for the CUDA context and buffers)"]
    verdict = "FITS" if result["fits"] else "DOES NOT FIT"
    lines.append(f"{verdict}: peak {result['peak_gib']:.1f} GiB; largest term: {result['largest_term']}")
    for s in result["suggestions"][:3]:
        lines.append(f"  {s['flag']} saves {s['saves_gib']:.1f} GiB")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    shape, run, card = plan_from_args(args)
    result = report(shape, run, card)
    print(json.dumps(result) if args.json else render(result, run))
