"""The compact console line and ``train_log.jsonl`` (written whole per log, read back tolerating a torn last line)."""

import json

from transformers.trainer_callback import PrinterCallback, ProgressCallback

from vlmr1.training.console import CompactPrinter, CompactProgress, JsonlLog, format_line
from vlmr1.viz.report import read_log

GRPO_LOGS = {
    "loss": 0.0012, "grad_norm": 0.31, "learning_rate": 5e-05, "num_tokens": 12345.0,
    "completions/mean_length": 57.6, "completions/min_length": 40.0, "completions/max_length": 72.0,
    "completions/clipped_ratio": 0.0625, "rewards/seg_iou/mean": 0.6123, "rewards/seg_iou/std": 0.2,
    "rewards/my_rewards:seg_format/mean": 1.0, "rewards/my_rewards:seg_format/std": 0.0, "reward": 1.6123,
    "reward_std": 0.2134, "frac_reward_zero_std": 0.1, "kl": 0.00123, "entropy": 0.8,
    "clip_ratio/region_mean": 0.004, "clip_ratio/low_mean": 0.0, "step_time": 1.2, "epoch": 0.5,
}


def test_grpo_line_has_progress_rewards_kl_length_clipping_pace_and_eta():
    line = format_line(GRPO_LOGS, step=40, max_steps=155, seconds_per_step=1.21)
    assert line == ("step  40/155  reward 1.61 ±0.21 (seg_iou 0.61, seg_format 1.00)  kl 0.00123  "
                    "len 58 (6% at max)  clip 0.4%  1.21 s/step  ETA 2m19s")
    assert len(line) < len(str(GRPO_LOGS)) / 4


def test_other_lines_sft_eval_and_the_run_summary():
    sft = format_line({"loss": 0.5123, "learning_rate": 0.001, "grad_norm": 0.83, "epoch": 0.1}, 25, 2937, 0.19)
    assert sft == "step   25/2937  loss 0.5123  lr 1.00e-03  grad 0.83  0.19 s/step  ETA 9m13s"
    evaluation = format_line({"eval_reward": 1.2, "eval_reward_std": 0.1, "eval_rewards/format/mean": 1.0}, 10, 100,
                             0.5)
    assert evaluation == "eval at step 10  reward 1.20 ±0.10 (format 1.00)"
    assert format_line({"train_runtime": 3725.0, "train_loss": 0.1}, 100, 100) == "done: 100 steps in 1h02m (37.25 s/step)"


def test_the_compact_callbacks_replace_the_dict_printers():
    assert issubclass(CompactProgress, ProgressCallback) and issubclass(CompactPrinter, PrinterCallback)
    assert CompactProgress.on_log is not ProgressCallback.on_log


class State:
    is_world_process_zero = True

    def __init__(self, step):
        self.global_step = step


def test_log_file_keeps_every_dict_and_readers_keep_the_last_line_per_step(tmp_path):
    log = JsonlLog(str(tmp_path))
    for step in (1, 2, 3):
        log.on_log(None, State(step), None, logs={"loss": float(step), "reward": 0.1 * step})
    log.on_log(None, State(3), None, logs={"eval_reward": 0.5})
    # a resumed run logs steps 2 and 3 again; the machine then dies in the middle of a line
    for step in (2, 3):
        log.on_log(None, State(step), None, logs={"loss": 10.0 * step, "reward": 0.2 * step})
    with open(tmp_path / "train_log.jsonl", "a") as f:
        f.write('{"loss": 4.0, "st')
    lines = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()[:-1]]
    assert len(lines) == 6 and all("time" in x and "step" in x for x in lines)
    history = read_log(str(tmp_path / "train_log.jsonl"))
    assert [(h["step"], h.get("loss")) for h in history] == [(1, 1.0), (2, 20.0), (3, 30.0), (3, None)]
    assert history[-1]["eval_reward"] == 0.5
