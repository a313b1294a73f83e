"""Tests for vlmr1.rewards.math_equiv: the CPU-time budget around math-verify."""

import signal
import threading
import time

import pytest

from vlmr1.rewards.math_equiv import MathBudgetExceeded, math_equivalent, time_budget

# Degenerate LaTeX that keeps sympy busy for seconds (math-verify's own 5 s timeout fires otherwise).
PATHOLOGICAL = "$" + "x^" * 100 + "$"


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    math_equivalent("1", "1")  # import sympy outside the timed tests


def test_equivalent_and_not():
    assert math_equivalent("\\frac{1}{2}", "0.5") is True
    assert math_equivalent("\\frac{1}{3}", "0.5") is False
    assert math_equivalent("anything", "not math at all") is None


def busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_pathological_input_is_cut_off_at_budget():
    start = time.process_time()
    assert math_equivalent(PATHOLOGICAL, "0.5", timeout_s=0.3) is False
    assert time.process_time() - start < 1.0  # CPU time: a loaded machine does not change it


def test_time_budget_counts_cpu_time_raises_and_restores_handler():
    handler_before = signal.getsignal(signal.SIGVTALRM)
    with time_budget(0.05):
        time.sleep(0.2)  # waiting is not spending: no CPU used, no timeout
    with pytest.raises(MathBudgetExceeded):
        with time_budget(0.05):
            busy(1.0)
    assert signal.getsignal(signal.SIGVTALRM) is handler_before
    assert signal.getitimer(signal.ITIMER_VIRTUAL) == (0.0, 0.0)


def test_time_budget_rearms_callers_timer():
    fired = []
    previous = signal.signal(signal.SIGVTALRM, lambda *a: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_VIRTUAL, 5.0)
        with time_budget(0.5):
            pass
        remaining, _ = signal.getitimer(signal.ITIMER_VIRTUAL)
        assert 4.0 < remaining <= 5.02  # rounded up to the kernel tick
        assert not fired
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


def test_works_outside_main_thread():
    results = []
    thread = threading.Thread(target=lambda: results.append(math_equivalent("\\sqrt{8}", "2\\sqrt{2}")))
    thread.start()
    thread.join(timeout=30)
    assert results == [True]
