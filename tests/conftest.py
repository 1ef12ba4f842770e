"""Shared test setup: the hypothesis profiles.

`quick` (the default) draws 30 examples per property, so that the whole suite
runs within CI's 5-minute budget on 2 cores; `HYPOTHESIS_PROFILE=thorough`
draws 500, for a long hunt before a release (and `FUZZ_N` sizes the fuzz tests).
"""

import os

from hypothesis import HealthCheck, settings

for name, examples in (("quick", 30), ("thorough", 500)):
    settings.register_profile(name, max_examples=examples, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))
