"""Known problems and the one way every command reports them.

A :class:`UserError` is a problem the user can fix (bad data, a bad flag value, a missing file or model folder). Every
command (``vlmr1 <command>``, ``python -m vlmr1.train``, ``python -m vlmr1.eval``) runs through :func:`run_command`,
which prints a known problem as one message and exits with status 2::

    data/train.jsonl:12: corrupt_image: imgs/a.jpg does not decode (image file is truncated) (fix: ...)

without a traceback; ``--debug`` anywhere on the command line (``vlmr1 --debug train ...``; a ``--debug`` followed
by a value is TrainingArguments' own flag and stays) or ``VLMR1_DEBUG=1`` prints the traceback too. Anything else
is a bug and keeps Python's traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

EXIT_KNOWN_PROBLEM = 2


class UserError(ValueError):
    """A problem the user can fix; ``str()`` is ``where:line: kind: problem (fix: ...)``.

    Attributes:
        problem: what is wrong.
        where: a file, a flag (``--num_train``) or None.
        line: 1-based line in ``where``, or None.
        fix: how to fix it ("" when obvious).
        kind: a short tag that sorts the problem (``bad_argument``, ``corrupt_image``, ``bad_reward``, ...).
    """

    def __init__(self, problem: str, where: str | None = None, line: int | None = None, fix: str = "",
                 kind: str = "error"):
        self.problem, self.where, self.line, self.fix, self.kind = problem, where, line, fix, kind
        super().__init__(self.message())

    def message(self) -> str:
        place = "" if self.where is None else (f"{self.where}:{self.line}: " if self.line is not None
                                               else f"{self.where}: ")
        return f"{place}{self.kind}: {self.problem}" + (f" (fix: {self.fix})" if self.fix else "")

    def __reduce__(self):  # picklable across processes with all its fields
        return _rebuild, (type(self), self.__dict__.copy())


def _rebuild(cls, state: dict) -> UserError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error.message())
    return error


def bad_argument(flag: str, problem: str, fix: str = "") -> UserError:
    """A command-line flag with a value the command cannot use."""
    return UserError(problem, where=flag, fix=fix, kind="bad_argument")


def debug_requested(argv: Sequence[str]) -> tuple[list[str], bool]:
    """Take a bare ``--debug`` out of ``argv`` (one followed by a value, like TrainingArguments' ``--debug
    underflow_overflow``, is left alone); also true when ``VLMR1_DEBUG`` is set to anything but 0/false/empty."""
    argv = list(argv)
    debug = os.environ.get("VLMR1_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    kept = []
    for i, arg in enumerate(argv):
        bare = arg == "--debug" and (i + 1 == len(argv) or argv[i + 1].startswith("-"))
        debug = debug or bare
        if not bare:
            kept.append(arg)
    return kept, debug


def run_command(command: Callable[[list[str]], Any], argv: Sequence[str], debug: bool | None = None) -> Any:
    """Run ``command(argv)``; a :class:`UserError` prints one message to stderr and exits 2 (traceback only when
    debugging). A closed stdout (``vlmr1 data check | head -1``) ends the command quietly."""
    if debug is None:
        argv, debug = debug_requested(argv)
    try:
        return command(list(argv))
    except UserError as e:
        if debug:
            traceback.print_exc()
        print(e, file=sys.stderr)
        sys.exit(EXIT_KNOWN_PROBLEM)
    except BrokenPipeError:
        # the reader went away (head, less): stop writing; Python would print a traceback at exit while flushing
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a file (captured)
            pass
        sys.exit(1)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("interrupted", file=sys.stderr)
        sys.exit(130)
