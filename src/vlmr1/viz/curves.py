"""Training curves of a GRPO run from its logged history (``trainer_state.json``'s ``log_history`` or
``train_log.jsonl``): reward per function, completion length, KL, clipping and loss, as one matplotlib figure."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a laptop over ssh or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLORS = ("tab:green", "tab:orange", "tab:red", "tab:blue", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one logged key over the training logs (evaluation logs and the run summary left out)."""
    points = [(h["step"], float(h[key])) for h in history
              if key in h and "step" in h and "train_runtime" not in h and h[key] is not None]
    if not points:
        return np.zeros(0), np.zeros(0)
    steps, values = zip(*points)
    return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)


def reward_keys(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """``rewards/<name>/mean`` keys, in the order they were first logged."""
    seen: dict[str, None] = {}
    for h in history:
        for k in h:
            if k.startswith("rewards/") and k.endswith("/mean"):
                seen.setdefault(k)
    return list(seen)


def smooth(values: Sequence[float], window: int = 20) -> np.ndarray:
    """Trailing mean over up to ``window`` points (GRPO logs every step, and each step is a few prompts)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    k = np.minimum(np.arange(1, len(v) + 1), window)
    return (c[1:] - c[np.arange(1, len(v) + 1) - k]) / k


def _curve(ax, steps, values, color, label=None) -> None:
    """Raw values thin, their trailing mean thick (the raw line alone when there are few points)."""
    if len(values) > 20:
        ax.plot(steps, values, color=color, lw=0.6, alpha=0.35)
        ax.plot(steps, smooth(values), color=color, lw=2, label=label)
    else:
        ax.plot(steps, values, color=color, lw=1.5, marker="o" if len(values) < 8 else None, ms=3, label=label)


def _reward_label(key: str) -> str:
    return key[len("rewards/"):-len("/mean")].rsplit(":", 1)[-1].removesuffix("_reward")


def _panel_rewards(ax, history) -> None:
    steps, total = series(history, "reward")
    _curve(ax, steps, total, "black", "total")
    for key, color in zip(reward_keys(history), COLORS):
        _curve(ax, *series(history, key), color, _reward_label(key))
    eval_steps, eval_total = series(history, "eval_reward")
    if len(eval_steps):
        ax.plot(eval_steps, eval_total, "D", color="black", ms=5, mfc="white", label="total (eval)")
    ax.set(title="reward: mean of the samples", xlabel="step")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")


def _panel_length(ax, history) -> None:
    steps, mean = series(history, "completions/mean_length")
    for low_key, high_key in (("completions/min_length", "completions/max_length"),):
        _, low = series(history, low_key)
        _, high = series(history, high_key)
        if len(low) == len(high) == len(steps) and len(steps):
            ax.fill_between(steps, low, high, color="tab:blue", alpha=0.15, lw=0, label="min-max")
    _curve(ax, steps, mean, "tab:blue", "mean")
    ax.set(title="completion length (tokens)", xlabel="step", ylim=(0, None))
    if len(steps):
        ax.legend(fontsize=7, loc="best")


def _panel_kl(ax, history) -> None:
    steps, kl = series(history, "kl")
    if len(steps):
        _curve(ax, steps, kl, "tab:purple")
        ax.set(title="KL to the reference model", xlabel="step")
        return
    steps, entropy = series(history, "entropy")
    _curve(ax, steps, entropy, "tab:purple")
    ax.set(title="entropy of the samples (no KL term: beta 0)", xlabel="step")


def _panel_shares(ax, history) -> None:
    for key, label, color in (("completions/clipped_ratio", "cut at max length", "tab:blue"),
                              ("clip_ratio/region_mean", "policy ratio clipped", "tab:red"),
                              ("frac_reward_zero_std", "groups with equal rewards", "tab:gray")):
        steps, values = series(history, key)
        if len(steps):
            _curve(ax, steps, values, color, label)
    ax.set(title="shares", xlabel="step", ylim=(-0.03, 1.03))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")


def _panel_key(ax, history, key: str, title: str, color: str) -> None:
    _curve(ax, *series(history, key), color)
    ax.set(title=title, xlabel="step")


def plot_training(history: Sequence[Mapping[str, Any]]) -> bytes:
    """The run's curves as one PNG: reward per function, completion length, KL (or entropy), shares (completions cut
    at the length limit, policy-ratio clipping, groups without signal), loss, gradient norm.

    Args:
        history: logged dicts with ``step`` (``log_history`` or ``train_log.jsonl`` lines).
    Returns:
        The PNG bytes.
    """
    fig, axes = plt.subplots(2, 3, figsize=(14, 6.6), layout="constrained")
    _panel_rewards(axes[0, 0], history)
    _panel_length(axes[0, 1], history)
    _panel_kl(axes[0, 2], history)
    _panel_shares(axes[1, 0], history)
    _panel_key(axes[1, 1], history, "loss", "loss", "tab:purple")
    _panel_key(axes[1, 2], history, "grad_norm", "gradient norm", "tab:brown")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    return figure_png(fig)


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (closed afterwards)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
