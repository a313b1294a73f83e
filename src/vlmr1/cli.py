"""The ``vlmr1`` command: thin subcommands that call into the packages.

    vlmr1 demo --output_dir DIR   the whole pipeline on a CPU in minutes, with a report
    vlmr1 train ...               GRPO training (all TRL GRPOConfig flags, or --config recipe.yaml)
    vlmr1 eval ...                batched evaluation with per-file metrics and a report
    vlmr1 report OUTPUT_DIR       report.html of a training run: curves, rollout pictures, eval metrics
    vlmr1 data <command> ...      make, convert or check datasets (coco, refcoco, shapes, gui-synthetic, check)
    vlmr1 draw JSONL ...          previews: decoded contours/boxes over the images, true mask beside, IoU
    vlmr1 tiny-model ...          write a tiny offline model + processor (tests, demo)
    vlmr1 plan --model ...        expected per-GPU memory of a GRPO run, and whether it fits the card
    vlmr1 rewards                 list the registered reward functions and accuracy methods

A known problem (bad data, a flag out of range, a missing file) prints ``where: kind: what (fix: ...)`` and exits with
status 2; ``vlmr1 --debug <command>`` or ``VLMR1_DEBUG=1`` adds the traceback (:mod:`vlmr1.errors`).
"""

from __future__ import annotations

import sys

from vlmr1.arguments import CommandParser, integer, number
from vlmr1.errors import bad_argument, debug_requested, run_command


def _train(argv: list[str]) -> None:
    from vlmr1.train import main

    main(argv)


def _tiny_model(argv: list[str]) -> None:
    import torch

    from vlmr1.models import TINY_ARCHS, build_tiny_model
    from vlmr1.models.full_size import (
        DEFAULT_TEXT_LAYERS,
        DEFAULT_VISION_LAYERS,
        LIKE,
        build_real_width_model,
        real_architecture,
    )

    parser = CommandParser(prog="vlmr1 tiny-model", description="Write a tiny model with a real processor, or a "
                           "released architecture (--like) at its real widths with fewer layers.")
    parser.add_argument("--arch", default=None, choices=sorted(TINY_ARCHS), help="tiny model family (default "
                        "qwen2_5_vl)")
    parser.add_argument("--like", default=None, metavar="NAME", help="a released architecture at real width, random "
                        f"weights, real vocabulary and image settings: {', '.join(LIKE)}")
    parser.add_argument("--output", "--output_dir", dest="output", required=True,
                        help="folder to write (config, weights, processor)")
    parser.add_argument("--text_layers", type=integer(1), default=None,
                        help="decoder layers (--like: default 2; the released depth gives the whole model)")
    parser.add_argument("--vision_layers", type=integer(1), default=None,
                        help="vision blocks (--like: default 2, enough for a window and a full-attention block)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="dtype of the saved weights")
    parser.add_argument("--seed", type=integer(0, 2**32 - 1), default=0)
    parser.add_argument("--rope_theta", type=number(0, low_open=True), default=None,
                        help="rotary base of the text decoder (default: the family's; the demo uses 100)")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    layers = {k: v for k, v in (("text_layers", args.text_layers), ("vision_layers", args.vision_layers))
              if v is not None}
    if args.like is None:
        arch = args.arch or "qwen2_5_vl"
        path = build_tiny_model(arch, args.output, seed=args.seed, rope_theta=args.rope_theta, dtype=dtype, **layers)
        print(f"wrote a tiny {arch} model to {path}")
        return
    real_architecture(args.like)  # an unknown name fails here, before anything is built
    if args.arch is not None or args.rope_theta is not None:
        flag = "--arch" if args.arch is not None else "--rope_theta"
        raise bad_argument(flag, f"does not apply to --like {args.like} (the released architecture sets it)",
                           f"leave out {flag}")
    path = build_real_width_model(args.like, args.output, seed=args.seed, dtype=dtype, **layers)
    depth = (layers.get("text_layers", DEFAULT_TEXT_LAYERS), layers.get("vision_layers", DEFAULT_VISION_LAYERS))
    print(f"wrote {args.like} at real width ({depth[0]} text layer{'s' * (depth[0] != 1)}, {depth[1]} vision "
          f"block{'s' * (depth[1] != 1)}) to {path}")


DATA_COMMANDS = {
    "coco": ("vlmr1.data.coco", "download COCO and convert instance masks to Chebyshev-contour jsonl"),
    "refcoco": ("vlmr1.data.refcoco", "convert RefCOCO/+/g refer annotations to REC jsonl"),
    "shapes": ("vlmr1.data.shapes", "generate synthetic referring-segmentation data (the demo's)"),
    "gui-synthetic": ("vlmr1.data.gui_synthetic", "generate synthetic before/after GUI screenshot pairs"),
    "check": ("vlmr1.data.check", "check jsonl data and images: every problem with file:line, exit 1 if any"),
}


def _data(argv: list[str]) -> None:
    import importlib

    if not argv or argv[0] in ("-h", "--help") or argv[0] not in DATA_COMMANDS:
        lines = [f"  {name:14s} {help_}" for name, (_, help_) in DATA_COMMANDS.items()]
        print("usage: vlmr1 data <command> [args]\n\ncommands:\n" + "\n".join(lines))
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nvlmr1 data: unknown command {argv[0]!r}", file=sys.stderr)
            sys.exit(2)
        return
    module, _ = DATA_COMMANDS[argv[0]]
    importlib.import_module(module).main(argv[1:])


def _eval(argv: list[str]) -> None:
    from vlmr1.eval import main

    main(argv)


def _report(argv: list[str]) -> None:
    from vlmr1.viz.report import main

    main(argv)


def _draw(argv: list[str]) -> None:
    from vlmr1.viz.draw import main

    main(argv)


def _demo(argv: list[str]) -> None:
    from vlmr1.demo import main

    main(argv)


def _plan(argv: list[str]) -> None:
    from vlmr1.training.memory_report import main

    main(argv)


def _rewards(argv: list[str]) -> None:
    from vlmr1.rewards import REWARD_REGISTRY, list_accuracy_methods, list_rewards

    CommandParser(prog="vlmr1 rewards", description="List reward functions.").parse_args(argv)
    for name in list_rewards():  # the built-in tasks' rewards included
        doc = (REWARD_REGISTRY[name].__doc__ or "").strip().splitlines()
        print(f"{name:16s} {doc[0] if doc else ''}")
    print("\naccuracy methods (--reward_method / accu_reward_method): " + ", ".join(list_accuracy_methods()))


COMMANDS = {
    "demo": (_demo, "the main job on a CPU: shapes data, SFT, GRPO, evaluation and an HTML report"),
    "train": (_train, "GRPO training on jsonl data (every TRL GRPOConfig flag; --config recipe.yaml)"),
    "data": (_data, "make, convert or check datasets: coco, refcoco, shapes, gui-synthetic, check"),
    "eval": (_eval, "evaluate a model on jsonl data: metrics.json, predictions.jsonl, report.md"),
    "report": (_report, "report.html of a training run (finished or running): curves, rollouts, eval metrics"),
    "draw": (_draw, "draw contours/boxes of a jsonl (or eval predictions) over its images, with IoU"),
    "tiny-model": (_tiny_model, "write a tiny offline model and processor for tests and the demo"),
    "plan": (_plan, "expected per-GPU memory of a GRPO run and whether it fits the card (nothing loaded)"),
    "rewards": (_rewards, "list reward functions and accuracy methods"),
}


def main(argv: list[str] | None = None) -> None:
    """Dispatch ``vlmr1 <command> ...``; every command's known problems go through :func:`vlmr1.errors.run_command`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = argv[:1] == ["--debug"]  # `vlmr1 --debug <command> ...`
    argv, debug = debug_requested(argv[first:])
    debug = debug or first
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        lines = [f"  {name:{width}s}  {help_}" for name, (_, help_) in COMMANDS.items()]
        print("usage: vlmr1 <command> [args]\n\ncommands:\n" + "\n".join(lines)
              + "\n\nRun `vlmr1 <command> --help` for a command's flags.")
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nvlmr1: unknown command {argv[0]!r}", file=sys.stderr)
            sys.exit(2)
        return
    handler, _ = COMMANDS[argv[0]]
    run_command(handler, argv[1:], debug)


if __name__ == "__main__":
    main()
