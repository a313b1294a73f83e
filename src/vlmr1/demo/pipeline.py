"""``vlmr1 demo``: referring segmentation learned end to end on a CPU, offline, in minutes.

Stages, top to bottom (each one timed, with a progress bar):

1. model     a tiny Qwen2.5-VL built offline (random weights, locally trained tokenizer)
2. data      synthetic shapes with referring phrases and Chebyshev answers (``vlmr1 data shapes``)
3. eval      greedy validation before any training (vlmr1's evaluator, the seg task's gIoU / cIoU / parse rate)
4. sft       supervised warm start, TRL's SFTTrainer (``vlmr1/demo/recipes/seg_sft.yaml``)
5. eval      after SFT
6. grpo      GRPO with ``seg_iou`` + ``seg_format`` through vlmr1's trainer (``vlmr1/demo/recipes/seg_grpo.yaml``)
7. eval      after GRPO
8. report    ``DIR/report.html`` and ``DIR/metrics.json``

``--quick`` runs a few steps of each stage on a handful of lines (for tests); the numbers then mean nothing.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from vlmr1.arguments import CommandParser, integer, number
from vlmr1.tasks.base import Task
from vlmr1.tasks.seg import SEG_DEMO

logger = logging.getLogger(__name__)

RECIPES = Path(__file__).resolve().parent / "recipes"  # shipped inside the package (package data)

DEMO_TASK: Task = SEG_DEMO  # `seg` with the question alone (see vlmr1.tasks.seg)


@dataclass(frozen=True)
class DemoSettings:
    """Everything the demo chooses besides the two training recipes (the report says why).

    Attributes:
        model: ``build_tiny_model`` sizes.
        rope_theta: rotary base of the language model. Qwen2.5-VL's 1,000,000 suits 32k-token contexts and
            128-dim heads; in a 32-dim head it leaves M-RoPE's height and width sections with rotations of 1e-2 to
            1e-6 radians per image row or column, i.e. no usable 2-D position for the image tokens; a base of 100
            spreads them over 0.01-0.3 radians, and localisation is learnt about a third sooner (measured on the
            demo's data).
        image_size, num_train, num_val, min_shapes, max_shapes, solo, background: the synthetic data
            (:func:`vlmr1.data.shapes.generate`).
        sft_args, grpo_args: flags appended to the recipes (they win over the YAML).
        minutes: wall time of the whole demo. The two training stages share what the other stages leave
            (``sft_share`` of it to SFT, measured as the demo runs), so a slower machine trains fewer steps
            instead of running longer. None: the recipes' step counts.
        sft_share: SFT's part of the training time.
        eval_batch_size, max_new_tokens: greedy validation.
        examples: validation rows drawn in the report.
        seed: data, weights and training seed.
    """

    model: dict[str, int] = field(default_factory=lambda: {
        "text_layers": 4, "hidden_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 384, "vision_layers": 3, "vision_hidden": 64, "vision_heads": 4})
    rope_theta: float = 100.0
    image_size: int = 56
    num_train: int = 5000
    num_val: int = 300
    min_shapes: int = 1
    max_shapes: int = 1
    solo: float = 0.3
    background: int = 225
    sft_args: tuple[str, ...] = ()
    grpo_args: tuple[str, ...] = ()
    minutes: float | None = 9.5
    sft_share: float = 0.68
    eval_batch_size: int = 100
    max_new_tokens: int = 72
    examples: int = 6
    seed: int = 0


FULL = DemoSettings()
QUICK = replace(FULL, num_train=32, num_val=8, examples=4, eval_batch_size=8, max_new_tokens=24,
                model={**FULL.model, "text_layers": 1, "vision_layers": 1, "hidden_size": 64, "intermediate_size": 128,
                       "num_attention_heads": 2, "num_key_value_heads": 1, "vision_hidden": 32, "vision_heads": 2},
                sft_args=("--max_steps", "3", "--logging_steps", "1", "--per_device_train_batch_size", "4"),
                grpo_args=("--max_steps", "2", "--per_device_train_batch_size", "4", "--num_generations", "4",
                           "--max_completion_length", "24"),
                minutes=None)


class StageClock:
    """Numbered stage headers and wall time per stage (``seconds`` feeds the report).

    ``started_at`` (epoch seconds) moves the start back, e.g. to when ``make demo`` began setting up ``.venv``:
    the time budget then covers the setup too, and ``seconds["setup"]`` records it.
    """

    def __init__(self, total: int, started_at: float | None = None):
        self.total, self.count, self.seconds, self.start = total, 0, {}, time.monotonic()
        if started_at is not None:
            self.seconds["setup"] = max(0.0, time.time() - started_at)
            self.start -= self.seconds["setup"]

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    @contextmanager
    def stage(self, key: str, title: str):
        self.count += 1
        print(f"\n[{self.count}/{self.total}] {title}", flush=True)
        start = time.monotonic()
        yield
        self.seconds[key] = self.seconds.get(key, 0.0) + time.monotonic() - start
        print(f"    ({self.seconds[key]:.1f} s)", flush=True)


def _recipe(name: str) -> str:
    return str(RECIPES / name)


def _load_rows(jsonl: str, image_folder: str, frame) -> list[dict[str, Any]]:
    """Validation rows exactly as training builds them (lazy loader, task template, model frame), decoded."""
    from vlmr1.data.loading import build_dataset, load_sources, pair_sources

    data = load_sources(pair_sources(jsonl, image_folder), task_type=DEMO_TASK.name)
    dataset = build_dataset(data, DEMO_TASK.format_question, frame)
    return [dataset[i] for i in range(len(dataset))]


def _evaluate(model, processor, rows, settings: DemoSettings, output_dir: str,
              sources) -> tuple[dict[str, float], list[dict]]:
    """Greedy validation with vlmr1's evaluator; its usual files (metrics, predictions, report.md) go to
    ``output_dir``, so ``vlmr1 draw --predictions`` can draw any stage."""
    from vlmr1.evaluation import evaluate, write_outputs

    per_file, predictions = evaluate(model, processor, rows, DEMO_TASK, batch_size=settings.eval_batch_size,
                                     max_new_tokens=settings.max_new_tokens)
    write_outputs(output_dir, per_file, predictions, sources=sources, task=DEMO_TASK.name)
    (metrics,) = per_file.values()
    summary = {k: float(metrics[k]) for k in ("gIoU", "cIoU", "parse_rate")}
    print("    " + "  ".join(f"{k} {v:.3f}" for k, v in summary.items()), flush=True)
    return summary, predictions


def run(output_dir: str, settings: DemoSettings = FULL, started_at: float | None = None) -> dict[str, Any]:
    """Run every stage and write the report.

    Args:
        output_dir: where the model, data, checkpoints and the report go (created).
        settings: :data:`FULL` or :data:`QUICK` (or your own).
        started_at: epoch seconds the time budget counts from (default: now); see :class:`StageClock`.
    Returns:
        The content of ``metrics.json`` plus ``"report"``: the report's path.
    """
    import torch
    from trl import SFTConfig, TrlParser

    from vlmr1.data.loading import load_sources, pair_sources
    from vlmr1.data.shapes import generate
    from vlmr1.demo.report import paired_gain, write_json, write_report
    from vlmr1.demo.sft import sft_dataset, train_sft
    from vlmr1.models import build_tiny_model
    from vlmr1.models.loading import load_model, load_processor
    from vlmr1.training.config import parse_train_args
    from vlmr1.training.setup import build_trainer, check_data

    out = os.path.abspath(output_dir)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(settings.seed)
    clock = StageClock(8, started_at)
    pixels = settings.image_size * settings.image_size
    with clock.stage("model", "model: tiny Qwen2.5-VL, built offline"):
        model_dir = str(build_tiny_model("qwen2_5_vl", os.path.join(out, "model-init"), seed=settings.seed,
                                         min_pixels=pixels, max_pixels=pixels, rope_theta=settings.rope_theta,
                                         **settings.model))
        family, processor = load_processor(model_dir)
        model = load_model(family, model_dir, dtype="float32")
        frame = family.coordinate_frame(processor)
        params_m = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"    {params_m:.1f}M parameters; images {settings.image_size} px = the model's frame "
              f"{frame.input_size((settings.image_size, settings.image_size))}")
    with clock.stage("data", "data: synthetic shapes with referring phrases and Chebyshev answers"):
        data_dir = os.path.join(out, "data")
        paths = generate(data_dir, settings.num_train, settings.num_val, seed=settings.seed,
                         image_size=settings.image_size, min_shapes=settings.min_shapes,
                         max_shapes=settings.max_shapes, solo=settings.solo,
                         background=settings.background, compact=True)
        val_rows = _load_rows(paths["val"], data_dir, frame)
        val_sources = pair_sources(paths["val"], data_dir)
        print(f"    {paths['train']} ({settings.num_train} lines), {paths['val']} ({settings.num_val} lines)")
    stages, predictions = {}, {}
    with clock.stage("eval_before", "eval: before training"):
        stages["before"], predictions["before"] = _evaluate(model, processor, val_rows, settings,
                                                            os.path.join(out, "eval", "before"), val_sources)

    with clock.stage("sft", "sft: supervised warm start (TRL SFTTrainer)"):
        (sft_args,) = TrlParser((SFTConfig,)).parse_args_and_config(
            args=["--config", _recipe("seg_sft.yaml"), "--output_dir", os.path.join(out, "sft"),
                  "--seed", str(settings.seed), *settings.sft_args])
        train = load_sources(pair_sources(paths["train"], data_dir), task_type=DEMO_TASK.name)
        # what is left after the stages still to come (two evals, GRPO's setup, the report), shared
        sft_budget = None
        if settings.minutes is not None:
            left = settings.minutes * 60 - clock.elapsed() - 2 * clock.seconds["eval_before"] - 20
            sft_budget = max(10.0, settings.sft_share * left)
            print(f"    {sft_budget:.0f} s or {sft_args.max_steps} steps of training, whichever comes first (warm-up "
                  "and cosine decay over that)")
        sft_trainer, _ = train_sft(model, processor, sft_dataset(train, DEMO_TASK.format_question, frame),
                                        sft_args, sft_budget)
        sft_dir = os.path.join(out, "sft-model")
        sft_trainer.save_model(sft_dir)
        processor.save_pretrained(sft_dir)
        sft_steps = sft_trainer.state.global_step
        print(f"    {sft_steps} steps")
    with clock.stage("eval_sft", "eval: after SFT"):
        stages["sft"], predictions["sft"] = _evaluate(model, processor, val_rows, settings,
                                                      os.path.join(out, "eval", "sft"), val_sources)

    with clock.stage("grpo", "grpo: seg_iou + seg_format rewards (vlmr1 trainer)"):
        script_args, grpo_args, model_args = parse_train_args(
            ["--config", _recipe("seg_grpo.yaml"), "--model_name_or_path", sft_dir,
             "--output_dir", os.path.join(out, "grpo"), "--data_file_paths", paths["train"],
             "--image_folders", data_dir, "--seed", str(settings.seed), "--min_pixels", str(pixels),
             "--max_pixels", str(pixels), *settings.grpo_args])
        grpo_trainer = build_trainer(script_args, grpo_args, model_args, check_data(script_args))
        from vlmr1.demo.sft import TimeBudget

        grpo_budget = None
        if settings.minutes is not None:
            grpo_budget = max(10.0, settings.minutes * 60 - clock.elapsed() - clock.seconds["eval_before"] - 10)
            print(f"    {grpo_budget:.0f} s or {grpo_args.max_steps} steps of training, whichever comes first")
        grpo_trainer.add_callback(TimeBudget(grpo_budget))
        grpo_trainer.train()
        grpo_trainer.save_model(os.path.join(out, "grpo-model"))
        processor.save_pretrained(os.path.join(out, "grpo-model"))
        print(f"    {grpo_trainer.state.global_step} steps")
    with clock.stage("eval_grpo", "eval: after GRPO"):
        stages["grpo"], predictions["grpo"] = _evaluate(grpo_trainer.model, processor, val_rows, settings,
                                                        os.path.join(out, "eval", "grpo"), val_sources)

    with clock.stage("report", "report"):
        metrics = {
            "stages": stages,
            "seconds": {**clock.seconds, "total": clock.elapsed()},
            "steps": {"sft": sft_steps, "grpo": grpo_trainer.state.global_step},
            "gain": paired_gain(predictions["sft"], predictions["grpo"]),
            "model_parameters_m": round(params_m, 2),
            "num_train": settings.num_train,
            "num_val": settings.num_val,
            "settings": {**asdict(settings), "sft_recipe": _recipe("seg_sft.yaml"),
                         "grpo_recipe": _recipe("seg_grpo.yaml")},
        }
        report = write_report(out, metrics, sft_trainer.state.log_history, os.path.join(out, "grpo"),
                              val_rows, predictions, settings.examples)
    # the report's own seconds, and the total including them
    metrics["seconds"] = {**clock.seconds, "total": clock.elapsed()}
    write_json(os.path.join(out, "metrics.json"), metrics)
    return {**metrics, "report": report}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``vlmr1 demo --output_dir DIR [--quick]``: run the demo and print where the report is.

    Args:
        argv: the flags (without ``demo``); None reads ``sys.argv[1:]``.
    Returns:
        What :func:`run` returns.
    """
    p = CommandParser(prog="vlmr1 demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--output_dir", default="runs/demo")
    p.add_argument("--quick", action="store_true", help="a few steps of each stage (seconds; for tests)")
    p.add_argument("--seed", type=integer(0, 2**32 - 1), default=0)
    p.add_argument("--minutes", type=number(0, low_open=True), default=FULL.minutes,
                   help="wall time of the whole demo; SFT and GRPO share what the other stages leave "
                        f"(default {FULL.minutes:g}; more time, better scores)")
    p.add_argument("--started_at", type=number(0), default=None,
                   help="epoch seconds the time budget counts from (make demo passes when it began, so that "
                        "setting up .venv counts too)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = QUICK if a.quick else replace(FULL, minutes=a.minutes)
    result = run(a.output_dir, replace(settings, seed=a.seed), started_at=a.started_at)
    s = result["stages"]
    print("\n" + "\n".join(f"{k:>7}: gIoU {v['gIoU']:.3f}  cIoU {v['cIoU']:.3f}  parse rate {v['parse_rate']:.3f}"
                           for k, v in s.items()))
    print(f"\ndemo finished in {result['seconds']['total'] / 60:.1f} min; report: {result['report']}")
    return result
