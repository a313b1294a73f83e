"""Flags of ``vlmr1 eval``: one dataclass, parsed by TRL's parser (so ``--config eval.yaml`` works as for training).

Example::

    vlmr1 eval --model runs/rec --data_file_paths refcoco_val.jsonl:refcocog_val.jsonl \\
        --image_folders coco:coco --task_type rec --batch_size 16 --output_dir runs/rec/eval
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from vlmr1.arguments import out_of_range, range_text, trl_parser
from vlmr1.errors import UserError, bad_argument

# flag -> (low, high, low_open, high_open); unset (None) flags are not checked
RANGES = {"batch_size": (1, None, False, False), "max_new_tokens": (1, None, False, False),
          "num_samples": (1, None, False, False), "min_pixels": (1, None, False, False),
          "max_pixels": (1, None, False, False), "vllm_gpu_memory_utilization": (0, 1, True, False),
          "vllm_max_model_len": (1, None, False, False)}


@dataclass
class EvalArguments:
    """What to evaluate, on which data, and how to generate."""

    model: str = field(metadata={
        "help": "checkpoint folder or Hub id holding config, weights and the processor",
        "aliases": ["--model_name_or_path"]})
    data_file_paths: str = field(metadata={"help": "jsonl files, ':'-separated: a.jsonl:b.jsonl (one metric entry each)"})
    image_folders: str = field(
        default=None, metadata={"help": "image folder per data file, ':'-separated; path = os.path.join(folder, image)"})
    task_type: str = field(default="default", metadata={"help": "question template and metrics: default, rec, seg, od, gui"})
    reward_method: str = field(
        default=None, metadata={"help": "accuracy method per data file (':'-separated) or for all; "
                                        "a line's accu_reward_method wins"})
    batch_size: int = field(default=8, metadata={"help": "prompts per generate call (per process)"})
    num_samples: int = field(default=None, metadata={"help": "evaluate only the first N samples of each file"})
    output_dir: str = field(default="eval_output",
                            metadata={"help": "where metrics.json, predictions.jsonl and report.md are written"})
    max_new_tokens: int = field(default=256, metadata={"help": "longest completion, in tokens"})
    min_pixels: int = field(default=None, metadata={"help": "smallest image area fed to the model (default: the "
                                                             "checkpoint processor's)"})
    max_pixels: int = field(default=None, metadata={"help": "largest image area fed to the model (default: the "
                                                             "checkpoint processor's, i.e. the training run's)"})
    max_anyres_num: int = field(default=None, metadata={"help": "most tiles per image for tiling families (InternVL; "
                                                                 "default: the checkpoint processor's)"})
    use_vllm: bool = field(default=False, metadata={"help": "generate with vLLM (pip install 'vlmr1[vllm]')"})
    dtype: str = field(default="auto", metadata={"help": "weights dtype: auto (the checkpoint's), bfloat16, float32, ..."})
    attn_implementation: str = field(default=None, metadata={"help": "e.g. sdpa, flash_attention_2"})
    model_revision: str = field(default=None, metadata={"help": "Hub revision of --model"})
    check_images: bool = field(default=True, metadata={"help": "decode every image once before loading the model "
                                                                "(good files are remembered by size and mtime)"})
    vllm_gpu_memory_utilization: float = field(default=0.9, metadata={"help": "vLLM's GPU memory fraction"})
    vllm_max_model_len: int = field(default=None, metadata={"help": "vLLM context length (default: the model's)"})

    def __post_init__(self):
        # Checked here so a typo stops the run before data or model loading.
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in RANGES and value is not None:
                problem = out_of_range(value, *RANGES[f.name])
                if problem:
                    raise bad_argument(f"--{f.name}", problem, f"give --{f.name} a value {range_text(*RANGES[f.name])}"
                                       + (" (or leave it out)" if f.default is None else ""))


def parse_eval_args(argv: list[str] | None = None) -> EvalArguments:
    """Parse ``vlmr1 eval`` flags (and ``--config eval.yaml``, whose keys are these flags' names).

    Args:
        argv: the flags, without the ``eval`` subcommand; None reads ``sys.argv[1:]``.

    Returns:
        The :class:`EvalArguments`.
    """
    try:
        (args,) = trl_parser((EvalArguments,), prog="vlmr1 eval").parse_args_and_config(args=argv)
    except UserError:
        raise
    except OSError as e:  # --config FILE that is not there
        raise UserError(f"cannot read it ({e.strerror})", where=e.filename, kind="bad_recipe") from None
    except ValueError as e:  # unknown flags or recipe keys
        problem = str(e).replace("Some specified arguments are not used by the HfArgumentParser", "unknown arguments")
        raise bad_argument("vlmr1 eval", problem, "`vlmr1 eval --help` lists the flags (abbreviations are not "
                                                  "accepted)") from None
    return args
