"""A user's own reward module, loaded by the training tests as ``user_rewards:text_length``.

A random tiny model never writes the think/answer format, so the built-in rewards are all zero and GRPO's
advantages vanish; this reward varies between completions, so the tests see real gradient steps.
"""


def text_length(completions, **kwargs) -> list[float]:
    """Characters in the completion / 200, capped at 1 (a plain TRL reward: completions in, floats out)."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [min(len(t) / 200, 1.0) for t in texts]


def record_batch(completions, id, trainer_state=None, **kwargs) -> list[float]:  # noqa: A002 - the jsonl field name
    """Write which rows this rank scored at this step (to $VLMR1_TEST_RECORD/rank<N>.jsonl) and score length."""
    import json
    import os

    folder = os.environ.get("VLMR1_TEST_RECORD")
    if folder:
        with open(os.path.join(folder, f"rank{os.environ.get('RANK', '0')}.jsonl"), "a") as f:
            f.write(json.dumps({"step": trainer_state.global_step if trainer_state else None, "ids": list(id)}) + "\n")
    return text_length(completions)
