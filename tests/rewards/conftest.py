"""Hypothesis profiles for the reward property tests.

``vlmr1-rewards`` (default, 200 examples) runs in CI; set ``HYPOTHESIS_PROFILE=nightly`` to use
``vlmr1-rewards-nightly`` (10,000 examples). The tests pick the profile explicitly with
``settings.get_profile(...)``; nothing is loaded globally, so other packages' Hypothesis tests
are unaffected.
"""

from hypothesis import HealthCheck, settings

_COMMON = dict(
    deadline=None,  # the tests assert their own per-call time bound
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("vlmr1-rewards", max_examples=200, **_COMMON)
settings.register_profile("vlmr1-rewards-nightly", max_examples=10_000, **_COMMON)
