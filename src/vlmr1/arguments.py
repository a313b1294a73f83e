"""Command-line parsing shared by every command: no abbreviated flags, range-checked numbers, and errors that go
through the one error path (:mod:`vlmr1.errors`) instead of argparse's own exit.

``argparse`` accepts ``--learning_rat`` for ``--learning_rate`` unless told not to, while a recipe key must be
spelled out; every vlmr1 parser refuses abbreviations, so the command line and the YAML read the same names.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from vlmr1.errors import bad_argument


class RaisingErrors:
    """Parser mixin: a bad flag raises :class:`vlmr1.errors.UserError` (``bad_argument``) instead of exiting."""

    def error(self, message: str):
        raise bad_argument(self.prog, message, f"`{self.prog} --help` lists the flags and what they accept")


class CommandParser(RaisingErrors, argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with ``allow_abbrev=False`` and errors raised as ``bad_argument``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def trl_parser(dataclass_types, prog: str):
    """TRL's parser over ``dataclass_types`` (flags, ``--config recipe.yaml``), with abbreviations refused and errors
    raised as ``bad_argument``."""
    from trl import TrlParser

    class Parser(RaisingErrors, TrlParser):
        pass

    return Parser(dataclass_types, prog=prog, allow_abbrev=False)


def _num(value) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def range_text(low=None, high=None, low_open: bool = False, high_open: bool = False) -> str:
    """``"at least 1"``, ``"in [0, 1)"``, ``"above 0"``... for messages."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{_num(low)}, {_num(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'above' if low_open else 'at least'} {_num(low)}"
    if high is not None:
        return f"{'below' if high_open else 'at most'} {_num(high)}"
    return "a finite number"


def out_of_range(value, low=None, high=None, low_open: bool = False, high_open: bool = False) -> str | None:
    """Why ``value`` is not a finite number in the range, or None when it is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number, got {value!r}"
    if not math.isfinite(value):
        return f"must be a finite number, got {value}"
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        return f"must be {range_text(low, high, low_open, high_open)}, got {_num(value)}"
    return None


def _typed(convert: Callable, name: str, low, high, low_open: bool, high_open: bool) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {name}, got {text!r}") from None
        problem = out_of_range(value, low, high, low_open, high_open)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = name
    return parse


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` for an integer in ``[low, high]``."""
    return _typed(int, "an integer", low, high, False, False)


def number(low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` for a finite float in the range (``*_open``: the bound itself is excluded)."""
    return _typed(float, "a number", low, high, low_open, high_open)
