"""A 5-step GRPO run with ``--shared_prefix true`` gives the stock run's losses, gradients and weights (same seed).

Old log-probs (``--num_iterations 2``), reference log-probs (``--beta``), the checkpointed training forward+backward
and the rollouts all go through the shared-prefix path in the second run, and only there.
"""

from pathlib import Path

import pytest
from shared_prefix_helpers import FAMILY_DIRS
from test_training_shared_prefix import FULL_IN_FAST

from vlmr1.training import shared_prefix as sp
from vlmr1.training.config import parse_train_args
from vlmr1.training.setup import build_trainer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LOGGED = ["loss", "grad_norm", "entropy", "kl", "reward", "clip_ratio/region_mean"]


def run(model_dir, output_dir, shared: bool):
    """Train 5 steps; returns the logged steps and the trained weights."""
    args = parse_train_args([
        "--model_name_or_path", str(model_dir), "--output_dir", str(output_dir), "--report_to", "none",
        "--data_file_paths", str(EXAMPLES / "counting.jsonl"), "--image_folders", str(EXAMPLES / "images"),
        "--reward_funcs", "format", "user_rewards:text_length", "--max_steps", "5",
        "--per_device_train_batch_size", "6", "--num_generations", "3", "--max_completion_length", "8",
        "--num_iterations", "2", "--beta", "0.04",
        "--learning_rate", "1e-2", "--logging_steps", "1", "--save_strategy", "no", "--max_pixels", "12544",
        "--seed", "0", "--temperature", "1.5", "--shared_prefix", str(shared).lower(),
    ])
    trainer = build_trainer(*args)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    return logs, {n: p.detach().clone() for n, p in trainer.model.named_parameters()}


@pytest.mark.parametrize("family", [pytest.param(f, marks=() if f in FULL_IN_FAST else pytest.mark.slow)
                                    for f in sorted(FAMILY_DIRS)])
def test_five_steps_match_the_stock_run(family, tmp_path, monkeypatch, request):
    model_dir = request.getfixturevalue(FAMILY_DIRS[family])
    calls = {"logps": 0, "prefill": 0}
    logps, prefill = sp.shared_prefix_logps, sp.run_prefix
    monkeypatch.setattr(sp, "shared_prefix_logps", lambda *a, **k: calls.__setitem__("logps", calls["logps"] + 1)
                        or logps(*a, **k))
    monkeypatch.setattr(sp, "run_prefix", lambda *a, **k: calls.__setitem__("prefill", calls["prefill"] + 1)
                        or prefill(*a, **k))

    stock_logs, stock_weights = run(model_dir, tmp_path / "stock", shared=False)
    assert calls == {"logps": 0, "prefill": 0}
    shared_logs, shared_weights = run(model_dir, tmp_path / "shared", shared=True)
    # per generation (steps 1, 3, 5): old + ref log-probs; per step: the training forward; rollouts prefill too
    assert calls["logps"] == 3 * 2 + 5 and calls["prefill"] > calls["logps"]

    assert len(stock_logs) == len(shared_logs) == 5
    # Adam turns last-bit gradient differences of near-zero entries into ~lr-sized steps, so only step 1 runs on
    # equal weights; later steps run on weights ~1e-5 apart and their metrics drift up to ~2e-4 (Qwen3-VL, step 4;
    # the two paths give bit-equal losses there on equal weights).
    for stock, shared in zip(stock_logs, shared_logs):
        assert stock.keys() == shared.keys()
        rel = 1e-5 if stock["step"] == 1 else 1e-3
        for key in [k for k in LOGGED if k in stock]:  # rollout metrics only on generation steps
            assert abs(stock[key] - shared[key]) <= 1e-6 + rel * abs(stock[key]), (stock["step"], key)
    assert max(abs(s["loss"]) for s in stock_logs) > 1e-2 and min(s["grad_norm"] for s in stock_logs) > 0.1
    # and on the weights after 5 steps: 1e-4 relative over the whole model, 1e-3 per tensor but the attention key
    # biases. Softmax ignores a shift shared by every key (only RoPE's rotation breaks that), so their gradients are
    # ~1e-3 of the value biases' and mostly float noise, which Adam turns into lr-sized steps: they end up to
    # ~1.4e-3 apart (InternVL; Qwen2.5-VL 7e-4) where every other tensor is within 5e-5.
    difference = sum((w - shared_weights[n]).norm() ** 2 for n, w in stock_weights.items()) ** 0.5
    assert difference <= 1e-4 * sum(w.norm() ** 2 for w in stock_weights.values()) ** 0.5
    for name, weight in stock_weights.items():
        tolerance = 1e-2 if name.endswith("k_proj.bias") else 1e-3
        assert (weight - shared_weights[name]).norm() <= tolerance * weight.norm(), name
