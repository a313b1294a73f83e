"""Hypothesis profiles for the fuzzing tests, and the profile the current run uses.

``vlmr1-fuzz`` (default) keeps each target to a few dozen examples so the whole fuzz file stays well under a
minute on a loaded 2-core CI box; ``HYPOTHESIS_PROFILE=nightly`` selects ``vlmr1-fuzz-nightly`` (10,000 examples per
target), the same switch as the reward property tests' ``vlmr1-rewards-nightly``. Nightly command::

    HYPOTHESIS_PROFILE=nightly .venv/bin/pytest tests/reliability tests/rewards -m "not slow"

Nothing is loaded globally: the tests pick their profile with ``settings.get_profile(...)``, so other Hypothesis
tests keep their own settings.
"""

from hypothesis import HealthCheck, settings

from vlmr1.tasks import load_builtin_tasks

load_builtin_tasks()  # the tests iterate over REWARD_REGISTRY / TASKS: the built-in tasks register theirs on load

_COMMON = dict(
    deadline=None,  # the tests assert their own generous per-call time bound instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.large_base_example],
)
settings.register_profile("vlmr1-fuzz", max_examples=150, **_COMMON)
settings.register_profile("vlmr1-fuzz-nightly", max_examples=10_000, **_COMMON)
