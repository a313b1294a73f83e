"""``vlmr1 demo``: the whole system on a CPU in minutes — data, Chebyshev contours, SFT, GRPO, evaluation, report.

``main(argv)`` is the command (see :mod:`vlmr1.demo.pipeline`); heavy imports happen when it runs.
"""

from __future__ import annotations


def main(argv: list[str] | None = None):
    """Run ``vlmr1 demo`` (see :func:`vlmr1.demo.pipeline.main`)."""
    from vlmr1.demo.pipeline import main as _main

    return _main(argv)


__all__ = ["main"]
