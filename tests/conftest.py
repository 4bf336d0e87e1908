from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers import copy_example

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


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """The bundled example's spec copied into ``deploy/``, a folder of a workspace."""
    return copy_example(tmp_path / "deploy")
