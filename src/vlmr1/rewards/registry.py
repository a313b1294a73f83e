"""Reward registry: names -> TRL reward functions, user ``module:function`` specs, and the safety wrapper.

TRL 1.16 ``GRPOTrainer._calculate_rewards`` calls every (sync) reward function as::

    fn(prompts=[...], completions=[...], completion_ids=[...],
       trainer_state=TrainerState, log_extra=callable, log_metric=callable,
       [environments=[...]],  # only with an environment_factory
       **columns)             # every dataset column except prompt/completion/completion_ids,
                              # each a list aligned with completions

and expects one number per completion. ``completions`` holds strings for plain-text datasets and
message lists (``[{"role": "assistant", "content": "..."}]``) for conversational ones.

Reward functions written with :func:`per_sample` satisfy the project contract: **a reward returns a
float in [0, 1] for every completion and never raises**. Exceptions become 0.0 and are logged
(rate-limited), NaN becomes 0.0, other values are clamped.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

logger = logging.getLogger(__name__)

RewardFunction = Callable[..., list[float]]
SampleScorer = Callable[..., float]

REWARD_REGISTRY: dict[str, RewardFunction] = {}

# kwargs TRL adds that are not dataset columns; never forwarded to per-sample scorers.
TRL_EXTRA_KWARGS = frozenset({"trainer_state", "log_extra", "log_metric", "environments", "completion_ids"})

# Rate limit for repeated warnings: the first N per key, then one line every _LOG_EVERY.
_LOG_FIRST = 5
_LOG_EVERY = 1000
_log_counts: dict[str, int] = {}
_log_lock = threading.Lock()


def log_limited(key: str, message: str, *args: Any, exc_info: bool = False) -> None:
    """Log a warning at most a few times per ``key``, then only a periodic count.

    Rewards run on every sample of every step, so one recurring failure would otherwise flood
    the logs.

    Args:
        key: What is being counted, e.g. ``"accuracy:error"``.
        message: ``logging``-style format string.
        *args: Format arguments.
        exc_info: Attach the current exception's traceback (first occurrences only).

    Returns:
        None.
    """
    with _log_lock:
        count = _log_counts.get(key, 0) + 1
        _log_counts[key] = count
    if count <= _LOG_FIRST:
        logger.warning(message, *args, exc_info=exc_info)
        if count == _LOG_FIRST:
            logger.warning("[%s] further occurrences are counted, logged every %d", key, _LOG_EVERY)
    elif count % _LOG_EVERY == 0:
        logger.warning("[%s] has occurred %d times so far", key, count)


def warning_counts() -> dict[str, int]:
    """Return a copy of the occurrence counts kept by :func:`log_limited` (for tests and summaries).

    Returns:
        Mapping key -> number of occurrences.
    """
    with _log_lock:
        return dict(_log_counts)


def _message_text(message: Any) -> str:
    if isinstance(message, str):
        return message
    if not isinstance(message, dict):
        return "" if message is None else str(message)
    content = message.get("content")
    if isinstance(content, list):  # multimodal content blocks
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        text = "".join(parts)
    else:
        text = "" if content is None else str(content)
    # A response-template parser may split the reasoning out of content; put it back so the
    # format reward still sees <think>.
    for key in ("reasoning_content", "reasoning", "thinking"):
        reasoning = message.get(key)
        if isinstance(reasoning, str) and reasoning.strip() and "<think>" not in text:
            return f"<think>{reasoning}</think>{text}"
    return text


def completion_text(completion: Any) -> str:
    """Return the text of one completion, whether TRL passed a string or a message list.

    For a message list the last ``assistant`` message is used (the final turn after any tool
    calls), falling back to the last message. Content given as blocks (``[{"type": "text",
    "text": ...}]``) is concatenated; a separate ``reasoning_content``/``thinking`` field is put
    back as ``<think>...</think>`` in front of the content.

    Args:
        completion: A string, a message dict, or a list of message dicts.

    Returns:
        The completion text ("" for None).
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _message_text(completion)
    if isinstance(completion, (list, tuple)):
        if not completion:
            return ""
        assistant = [m for m in completion if isinstance(m, dict) and m.get("role") == "assistant"]
        return _message_text(assistant[-1] if assistant else completion[-1])
    return "" if completion is None else str(completion)


def to_unit_interval(value: Any) -> tuple[float, bool]:
    """Coerce a scorer's return value into [0, 1].

    Args:
        value: Anything a scorer returned (bool, int, float, numpy scalar, ...).

    Returns:
        ``(reward, clean)``: the coerced reward, and False when it had to be changed (NaN, out of
        range) or could not be converted (then the reward is 0.0).
    """
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0, False
    if math.isnan(x):
        return 0.0, False
    if x < 0.0:
        return 0.0, False
    if x > 1.0:
        return 1.0, False
    return x, True


def per_sample(scorer: SampleScorer | None = None, *, name: str | None = None) -> Any:
    """Turn a per-sample scorer ``score(text, **row) -> float`` into a safe TRL batch reward.

    ``row`` holds this sample's value of every dataset column TRL passed (``solution``,
    ``accu_reward_method``, ``task_type``, ``image_size``...) plus ``prompt``. TRL-only kwargs
    (``trainer_state``, ``log_extra``, ``log_metric``, ``environments``, ``completion_ids``) are not
    forwarded. Use bare (``@per_sample``) or with a name (``@per_sample(name="x")``).

    The returned function never raises and always returns ``len(completions)`` floats in [0, 1]:
    an exception in the scorer gives 0.0 and a rate-limited warning with traceback; NaN gives 0.0;
    values outside [0, 1] are clamped (and logged, rate-limited).

    Args:
        scorer: The per-sample function.
        name: ``__name__`` of the batch function (TRL logs ``rewards/<name>/mean``); defaults to
            the scorer's name. :func:`register_reward` replaces it with the registry name.

    Returns:
        The batch reward function (or a decorator, when ``scorer`` is omitted).
    """
    if scorer is None:
        return functools.partial(per_sample, name=name)

    def batch_reward(prompts=None, completions=None, **kwargs: Any) -> list[float]:
        reward_name = batch_reward.__name__
        try:
            completions = [] if completions is None else list(completions)
        except Exception:
            log_limited(f"{reward_name}:error", "Reward %r got unusable completions", reward_name, exc_info=True)
            return []
        n = len(completions)
        columns, constants = {}, {}
        for key, value in kwargs.items():
            if key in TRL_EXTRA_KWARGS:
                continue
            if isinstance(value, (list, tuple)) and len(value) == n:
                columns[key] = value
            else:  # not aligned with completions: same value for every sample
                if isinstance(value, (list, tuple)):
                    log_limited(
                        f"{reward_name}:misaligned:{key}",
                        "Reward %r: column %r has %d values for %d completions; passing it whole to every sample",
                        reward_name,
                        key,
                        len(value),
                        n,
                    )
                constants[key] = value
        prompt_list = prompts if isinstance(prompts, (list, tuple)) and len(prompts) == n else None

        rewards = []
        for i, completion in enumerate(completions):
            try:
                row = dict(constants)
                row.update((key, values[i]) for key, values in columns.items())
                if prompt_list is not None:
                    row.setdefault("prompt", prompt_list[i])
                raw = scorer(completion_text(completion), **row)
            except Exception as exc:  # contract: a reward never raises inside training
                log_limited(
                    f"{reward_name}:error",
                    "Reward %r raised %s on sample %d; scoring it 0.0",
                    reward_name,
                    type(exc).__name__,
                    i,
                    exc_info=True,
                )
                rewards.append(0.0)
                continue
            reward, clean = to_unit_interval(raw)
            if not clean:
                log_limited(
                    f"{reward_name}:clamped",
                    "Reward %r returned %.200r, not a number in [0, 1]; using %s",
                    reward_name,
                    raw,
                    reward,
                )
            rewards.append(reward)
        return rewards

    batch_reward.__doc__ = scorer.__doc__
    batch_reward.__module__ = getattr(scorer, "__module__", __name__)
    # __qualname__ stays the scorer's, so pickle finds the module-level function by reference.
    batch_reward.__qualname__ = getattr(scorer, "__qualname__", batch_reward.__qualname__)
    batch_reward.__name__ = name or getattr(scorer, "__name__", "reward")
    batch_reward.scorer = scorer  # the raw per-sample function, handy in tests and evaluation
    return batch_reward


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"Reward name must be a non-empty string, got {name!r}")
    if any(c.isspace() or c in ",:" for c in name):
        raise ValueError(f"Reward name {name!r} must not contain whitespace, ',' or ':'")
    return name


def register_reward(name: str, fn: RewardFunction | None = None, *, overwrite: bool = False) -> Any:
    """Register a TRL batch reward under ``name`` (usable as a decorator).

    Sets the function's ``__name__`` to ``name`` so TRL logs it as ``rewards/<name>/mean``.

    Args:
        name: Registry name; no whitespace, ``,`` or ``:``.
        fn: The reward function; omit to use as ``@register_reward("name")``.
        overwrite: Allow replacing an existing entry.

    Returns:
        ``fn`` unchanged apart from its name (or a decorator when ``fn`` is omitted).

    Raises:
        ValueError: Invalid name, or the name is taken and ``overwrite`` is False.
    """
    _check_name(name)

    def decorator(func: RewardFunction) -> RewardFunction:
        if not callable(func):
            raise TypeError(f"Reward {name!r} must be callable, got {type(func).__name__}")
        if name in REWARD_REGISTRY and REWARD_REGISTRY[name] is not func and not overwrite:
            raise ValueError(f"Reward {name!r} is already registered; pass overwrite=True to replace it")
        try:
            func.__name__ = name
        except (AttributeError, TypeError):  # e.g. functools.partial, builtins
            pass
        REWARD_REGISTRY[name] = func
        return func

    return decorator if fn is None else decorator(fn)


def _load_task_rewards() -> None:
    # A task's own rewards (rec_iou, seg_iou, ...) are registered with the task; tasks build on this module, so the
    # import waits until a name is looked up.
    from vlmr1.tasks import load_builtin_tasks

    load_builtin_tasks()


def list_rewards() -> list[str]:
    """The registered reward names (the built-in tasks' included), sorted."""
    _load_task_rewards()
    return sorted(REWARD_REGISTRY)


def _import_object(spec: str, module_name: str, attr_path: str) -> Any:
    from vlmr1.plugins import load_object

    registered = ", ".join(list_rewards()) or "(none)"
    try:
        obj = load_object(module_name, attr_path)
    except ImportError as exc:
        raise ValueError(
            f"Reward spec {spec!r}: cannot import module {module_name!r} ({exc}). Registered rewards: {registered}"
        ) from exc
    except AttributeError as exc:
        raise ValueError(f"Reward spec {spec!r}: module {module_name!r} has no attribute {attr_path!r}. "
                         f"Registered rewards: {registered}") from exc
    if not callable(obj):
        raise ValueError(f"Reward spec {spec!r} resolved to a non-callable {type(obj).__name__}")
    return obj


def get_reward_function(spec: str | RewardFunction) -> RewardFunction:
    """Resolve one reward spec to a callable.

    Accepted specs: a callable (returned as is); a registered name (``"accuracy"``); a user
    function ``"package.module:function"`` (also ``"package.module.function"``), imported with
    importlib. User functions are returned unwrapped: they follow TRL's batch contract, and can
    opt into the safety guarantees by decorating a per-sample scorer with :func:`per_sample`.

    Args:
        spec: Name, import path or callable.

    Returns:
        The reward function.

    Raises:
        ValueError: Unknown name or failed import; the message names the spec and lists the
            registered rewards.
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"Reward spec must be a non-empty string or a callable, got {spec!r}")
    spec = spec.strip()
    if spec not in REWARD_REGISTRY:
        _load_task_rewards()
    if spec in REWARD_REGISTRY:
        return REWARD_REGISTRY[spec]
    if ":" in spec:
        module_name, _, attr_path = spec.partition(":")
        if module_name and attr_path:
            return _import_object(spec, module_name, attr_path)
    elif "." in spec:
        module_name, _, attr_path = spec.rpartition(".")
        return _import_object(spec, module_name, attr_path)
    registered = ", ".join(list_rewards()) or "(none)"
    raise ValueError(
        f"Unknown reward {spec!r}. Registered rewards: {registered}. "
        f"For your own function use 'package.module:function'."
    )


def get_reward_functions(specs: str | Sequence[str | RewardFunction] | Iterable[str | RewardFunction]) -> list:
    """Resolve several reward specs, e.g. ``"format accuracy"`` or ``["format", "mypkg.r:fn"]``.

    A string is split on whitespace and commas.

    Args:
        specs: Specs as one string or a sequence.

    Returns:
        The reward functions, in order.

    Raises:
        ValueError: No specs, an unresolvable spec, or the same reward named twice (TRL keys its
            metrics by function name, so duplicates would collide).
    """
    if isinstance(specs, str):
        items: list = specs.replace(",", " ").split()
    else:
        items = list(specs)
    if not items:
        raise ValueError("No reward functions given")
    functions = [get_reward_function(item) for item in items]
    names = [getattr(f, "__name__", repr(f)) for f in functions]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"Reward functions named more than once: {', '.join(duplicates)}")
    return functions
