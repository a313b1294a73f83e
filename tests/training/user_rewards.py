"""A user's own reward module, loaded by the training tests as ``user_rewards:text_length``.

A random tiny model never writes the think/answer format, so the built-in rewards are all zero and GRPO's
advantages vanish; this reward varies between completions, so the tests see real gradient steps.
"""


def text_length(completions, **kwargs) -> list[float]:
    """Characters in the completion / 200, capped at 1 (a plain TRL reward: completions in, floats out)."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [min(len(t) / 200, 1.0) for t in texts]
