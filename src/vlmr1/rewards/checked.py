"""Checking what a plain reward function returns, so a bad value stops training with the reward's name.

Rewards written with :func:`vlmr1.rewards.per_sample` are clean by construction. A plain TRL-style function
(``fn(completions, **kwargs) -> list[float]``) is not: TRL turns strings into "too many dimensions 'str'", trains on
NaN at loss 0 (its sums skip NaN) and logs inf. :func:`checked_reward` wraps a plain function so that its first bad
value (wrong count, not a number, NaN, inf) is a ``bad_reward`` error naming the reward, the sample and the fix.
``None`` stays allowed: it is TRL's "this reward does not apply to this sample".
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from typing import Any

from vlmr1.errors import UserError

FIX = ("return one float per completion (None where the reward does not apply); or write it as a per-sample scorer "
       "with @vlmr1.rewards.per_sample, which turns exceptions and NaN into 0 and clamps to [0, 1]")


def reward_output_problem(values: Any, expected: int) -> str | None:
    """Why ``values`` is not ``expected`` finite numbers (or None per sample), or None when it is."""
    try:
        values = list(values)
    except TypeError:
        return f"returned {type(values).__name__}, not a list"
    if len(values) != expected:
        return f"returned {len(values)} value(s) for {expected} completion(s)"
    for i, value in enumerate(values):
        if value is None:
            continue
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:  # numpy / torch scalars
            value = value.item()
        if isinstance(value, (str, bytes)) or not isinstance(value, numbers.Real):
            return f"returned {value!r:.60} ({type(value).__name__}) for completion {i}, not a number"
        if not math.isfinite(value):
            return f"returned {value} for completion {i}"
    return None


def checked_reward(fn):
    """``fn`` with its output checked on every call (see the module docstring); per-sample rewards, async functions
    and reward models are returned unchanged."""
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
    if hasattr(fn, "scorer") or not callable(fn) or is_async or hasattr(fn, "forward"):
        return fn
    name = getattr(fn, "__name__", type(fn).__name__)

    @functools.wraps(fn)
    def reward(*args, completions=None, **kwargs):
        values = fn(*args, completions=completions, **kwargs)
        problem = reward_output_problem(values, len(completions) if completions is not None else 0)
        if problem:
            raise UserError(problem, where=f"reward {name!r}", kind="bad_reward", fix=FIX)
        return values

    reward.__name__ = name  # TRL logs rewards/<name>/mean
    return reward
