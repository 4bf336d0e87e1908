from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# envspec's cache (compiled templates, parsed large files) goes to a folder of this test run,
# never to the user's own ~/.cache; subprocesses inherit it.
CACHE_HOME = tempfile.mkdtemp(prefix="envspec-test-cache-")
os.environ["XDG_CACHE_HOME"] = CACHE_HOME


def pytest_unconfigure() -> None:
    shutil.rmtree(CACHE_HOME, ignore_errors=True)
