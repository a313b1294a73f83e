"""Mathematical equivalence with math-verify, bounded in time, for the ``math`` accuracy method.

math-verify (sympy underneath) can spend seconds or hang on degenerate LaTeX such as
``$x^x^x^...$``, which a policy model does produce. Its own timeouts are ``signal.alarm`` in whole
seconds per operation (so one comparison can cost several of them). Instead we give each call one
overall budget of process CPU time, ``MATH_TIMEOUT_S``, with ``signal.setitimer(ITIMER_VIRTUAL)``
(sub-second; CPU time, so a busy machine does not turn a fast comparison into a timeout) and call
math-verify with its timeouts disabled. Consequences:

* the budget only applies in the main thread (signals cannot be used elsewhere); TRL calls sync
  reward functions there. In other threads math-verify runs unbounded (a warning is logged);
* a caller's own ``SIGVTALRM`` timer is suspended during the call and re-armed afterwards;
* math-verify's "Timeout is disabled" warning is filtered out of its loggers, as it does not apply.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import signal
import threading
import time
from collections.abc import Iterator

from .registry import log_limited

# CPU-time budget for one comparison (gold parse + answer parse + verify), seconds.
MATH_TIMEOUT_S = 1.0
# Only the tail of long answers is parsed: the final result is at the end.
MATH_MAX_CHARS = 2000

_LATEX_COMMAND_RE = re.compile(r"\\[A-Za-z]+")
_WORD_RE = re.compile(r"[A-Za-z]{3,}")


class MathBudgetExceeded(BaseException):
    """Raised by the budget timer; a BaseException so math-verify's ``except Exception`` cannot swallow it."""


@contextlib.contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Raise :class:`MathBudgetExceeded` in the block once it has used ``seconds`` of process CPU time.

    Main thread only (elsewhere, and for ``seconds`` None or <= 0, the block runs unbounded).
    The timer re-fires every 50 ms after expiry in case something swallows the first interrupt.

    Args:
        seconds: Budget in seconds.

    Returns:
        A context manager.
    """
    if not seconds or seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        log_limited("accuracy:math-thread", "math-verify called outside the main thread; running without a time limit")
        yield
        return
    armed = [True]

    def on_alarm(signum, frame):
        if armed[0]:  # a signal already pending when we disarm must not raise
            raise MathBudgetExceeded

    start = time.process_time()
    old_handler = signal.signal(signal.SIGVTALRM, on_alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_VIRTUAL, seconds, 0.05)
    try:
        yield
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, old_handler)
        if old_delay > 0:  # re-arm the caller's timer with what is left of it
            left = max(old_delay - (time.process_time() - start), 1e-3)
            signal.setitimer(signal.ITIMER_VIRTUAL, left, old_interval)


def _drop_disabled_timeout_warning(record: logging.LogRecord) -> bool:
    # math-verify warns when its timeouts are off; ours replace them, so the warning only misleads.
    return not str(record.msg).startswith("Timeout is disabled")


@functools.cache
def _math_verify():
    # Imported lazily (sympy is slow to import) and outside any budget, so an import is never interrupted.
    import math_verify

    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_drop_disabled_timeout_warning)
    return math_verify


def _is_bare_latex(text: str) -> bool:
    # LaTeX without delimiters and without prose words: "2\sqrt{2}" yes, "x is \frac{1}{2}" no.
    if "\\" not in text or "$" in text or "\\(" in text or "\\[" in text:
        return False
    return _WORD_RE.search(_LATEX_COMMAND_RE.sub(" ", text)) is None


def math_parse(text: str) -> list:
    """Parse an answer with math-verify (no time limit of its own; use inside :func:`time_budget`).

    Undelimited bare LaTeX is parsed inside ``$...$`` first: bare, math-verify reads ``2\\sqrt{2}``
    as 2 and finds nothing in ``\\sqrt{8}``.

    Args:
        text: Answer string; only its last ``MATH_MAX_CHARS`` characters are used.

    Returns:
        math-verify's parse result (empty when nothing was found).
    """
    mv = _math_verify()
    text = text[-MATH_MAX_CHARS:]
    if _is_bare_latex(text):
        parsed = mv.parse(f"${text}$", parsing_timeout=None)
        if parsed:
            return parsed
    return mv.parse(text, parsing_timeout=None)


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> tuple:
    # The G completions of a prompt share one gold: parse it once.
    return tuple(math_parse(gold))


def math_equivalent(pred: str, gold: str, timeout_s: float | None = None) -> bool | None:
    """Decide whether ``pred`` equals ``gold`` mathematically.

    Args:
        pred: Extracted answer, e.g. ``"\\frac{1}{2}"``.
        gold: Extracted solution, e.g. ``"0.5"``.
        timeout_s: Wall-clock budget; defaults to ``MATH_TIMEOUT_S``.

    Returns:
        True/False, or None when the gold is not parseable as math (caller picks a fallback).
        Running out of budget gives False (logged, rate-limited).
    """
    mv = _math_verify()
    budget = MATH_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        with time_budget(budget):
            gold_parsed = list(_parse_gold(gold))
            if not gold_parsed:
                return None
            pred_parsed = math_parse(pred)
            return bool(pred_parsed) and bool(mv.verify(gold_parsed, pred_parsed, timeout_seconds=None))
    except MathBudgetExceeded:
        log_limited("accuracy:math-timeout", "math-verify exceeded its %.2fs budget; scoring 0.0", budget)
        return False
