"""Each target on its own, called directly on small specs written as dicts, against its golden
folder (``tests/golden/targets/<target>/<case>/``); the example's output is test_example.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envspec import targets
from tests.harness import assert_golden, render_target
from tests.helpers import minimal
from tests.readers import posix_shell, python_dotenv


def _quoting() -> dict[str, Any]:
    spec = minimal()
    spec["environments"] = {
        "development": {"targets": list(targets.environment_targets(targets.BUILTIN))},
        "production": {"targets": ["kubernetes"]},
    }
    spec["environments"]["development"]["local"] = True
    spec["services"]["web"]["variables"] = ["QUOTES", "DOLLARS", "SPACES"]
    spec["variables"] = {
        "QUOTES": {"default": 'it\'s "quoted"'},
        "DOLLARS": {"default": "$HOME costs $5"},
        "SPACES": {"default": "  padded  ", "description": "kept exactly"},
    }
    return spec


def _service_values() -> dict[str, Any]:
    """Two services, one with values of its own: a literal, a secret reference and, through
    it, an environment-wide derived value composed again for it."""
    spec = _quoting()
    received = ["PORT", "API_TOKEN", "LISTEN"]
    spec["services"] = {
        "web": {"image": "example/web", "version": "1.0.0", "ports": [8000], "variables": received},
        "worker": {
            "image": "example/worker",
            "version": "1.0.0",
            "variables": received,
            "values": {"PORT": "9000", "API_TOKEN": {"secret": "vault://app/worker#token"}},
        },
    }
    spec["variables"] = {
        "PORT": {"type": "int", "default": "8000"},
        "API_TOKEN": {"secret": True, "default": {"secret": "vault://app/web#token"}},
        "LISTEN": {"default": {"from": "0.0.0.0:${PORT}"}},
    }
    spec["tasks"] = {"sweep": {"service": "worker", "command": ["sweep"]}}
    return spec


CASES = {"minimal": minimal, "quoting": _quoting, "service-values": _service_values}
"""Specs every target renders (each golden folder holds what one target makes of one)."""


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("target", list(targets.BUILTIN))
def test_target_matches_its_golden_folder(tmp_path: Path, target: str, case: str) -> None:
    files = render_target(tmp_path / "spec", target, CASES[case]())
    assert files, f"{target} rendered nothing for {case}"
    assert_golden(target, case, files)


def test_the_harness_output_is_what_readers_read(tmp_path: Path) -> None:
    files = render_target(tmp_path / "spec", "dotenv", _quoting())
    env = tmp_path / ".env"
    env.write_text(files["development/.env.development"], encoding="utf-8")
    expected = {name: value["default"] for name, value in _quoting()["variables"].items()}
    assert posix_shell(env, list(expected)) == expected
    assert {k: python_dotenv(env)[k] for k in expected} == expected
