"""The registry is the only list of targets, and every built-in renderer meets the protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envspec import targets
from envspec.errors import EnvspecError
from envspec.render.base import EnvironmentRenderer, ProjectRenderer
from envspec.render.compose import ComposeRenderer
from envspec.render.dotenv import DotenvRenderer
from envspec.render.example import ExampleRenderer
from envspec.render.kubernetes import KubernetesRenderer
from envspec.render.settings import SettingsRenderer
from envspec.schema import spec_schema
from tests.helpers import minimal, run, write_spec

PER_ENVIRONMENT: dict[str, EnvironmentRenderer] = {
    "dotenv": DotenvRenderer(),
    "compose": ComposeRenderer(),
    "kubernetes": KubernetesRenderer(),
}
"""Typed: mypy checks that each class meets the protocol."""
PROJECT: dict[str, ProjectRenderer] = {"example": ExampleRenderer(), "settings": SettingsRenderer()}


def test_the_registry_lists_every_built_in_renderer() -> None:
    assert list(targets.BUILTIN) == [*PER_ENVIRONMENT, *PROJECT]
    for name, renderer in {**PER_ENVIRONMENT, **PROJECT}.items():
        assert type(targets.get(name).renderer) is type(renderer)
    assert targets.environment_targets(targets.BUILTIN) == list(PER_ENVIRONMENT)
    assert targets.project_targets() == list(PROJECT)


def test_parity_asks_the_renderers_which_deploy_workloads() -> None:
    deploying = [name for name in targets.BUILTIN if targets.get(name).deploys_workloads]
    assert deploying == ["compose", "kubernetes"]


def test_an_unknown_target_offers_the_closest_installed_one() -> None:
    with pytest.raises(EnvspecError, match=r"unknown target 'composer' \(did you mean 'compose'"):
        targets.get("composer")


def test_the_schema_and_the_help_ask_the_registry() -> None:
    environment = json.loads(spec_schema())["$defs"]["Environment"]
    assert environment["properties"]["targets"]["items"]["enum"] == list(PER_ENVIRONMENT)
    assert "`envspec targets` lists them" in run("render", "--help").output


def test_render_refuses_an_unknown_target_by_name(tmp_path: Path) -> None:
    root = write_spec(tmp_path / "spec", minimal())
    result = run("render", "--all", "--spec", str(root), "--target", "kubernets")
    assert result.exit_code == 1
    assert "unknown target 'kubernets' (did you mean 'kubernetes'?)" in result.output
