"""Plain (not ``per_sample``) reward functions: NaN, inf, strings and wrong counts stop training at the first step
with a message naming the reward, instead of TRL's "too many dimensions 'str'" or a silent loss of 0."""

import math
from pathlib import Path

import numpy as np
import pytest

from vlmr1.errors import UserError
from vlmr1.rewards import per_sample
from vlmr1.rewards.checked import checked_reward
from vlmr1.train import main as train_main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def returns(values):
    def plain_reward(completions, **kwargs):
        return values if not callable(values) else values(completions)

    return plain_reward


@pytest.mark.parametrize("values, problem", [
    ([math.nan, 1.0], "returned nan for completion 0"),
    ([1.0, math.inf], "returned inf for completion 1"),
    (["1", 0.0], "returned '1' (str) for completion 0, not a number"),
    ([1.0], "returned 1 value(s) for 2 completion(s)"),
    (0.5, "returned float, not a list"),
    ([[1.0], 0.0], "for completion 0, not a number"),
])
def test_bad_values_name_the_reward_and_the_sample(values, problem):
    reward = checked_reward(returns(values))
    with pytest.raises(UserError) as err:
        reward(prompts=["p", "p"], completions=["a", "b"])
    assert str(err.value).startswith("reward 'plain_reward': bad_reward: ") and problem in str(err.value)
    assert "per_sample" in err.value.fix


def test_good_values_pass_unchanged():
    values = [0.5, None, np.float32(0.25), True, 3]  # None: TRL's "does not apply"
    assert checked_reward(returns(values))(completions=list("abcde")) == values
    safe = per_sample(lambda text, **row: float("nan"))
    assert checked_reward(safe) is safe  # per-sample rewards are clean by construction


def string_reward(completions, **kwargs):
    """A reward with a bug: it returns its scores as text."""
    return [str(len(c)) for c in completions]


def test_training_stops_at_the_first_step_naming_the_reward(tiny_qwen25vl_dir, tmp_path):
    with pytest.raises(UserError, match="reward 'string_reward': bad_reward: returned '.*' \\(str\\) for completion 0"):
        train_main(["--model_name_or_path", str(tiny_qwen25vl_dir), "--output_dir", str(tmp_path / "run"),
                    "--data_file_paths", str(EXAMPLES / "counting.jsonl"), "--image_folders",
                    str(EXAMPLES / "images"), "--reward_funcs", "format", f"{__name__}:string_reward",
                    "--max_steps", "1", "--per_device_train_batch_size", "2", "--num_generations", "2",
                    "--max_completion_length", "4", "--gradient_checkpointing", "false", "--report_to", "none",
                    "--max_pixels", "12544"])
    assert not (tmp_path / "run" / "checkpoint-1").exists()
