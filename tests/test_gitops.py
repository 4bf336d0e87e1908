"""``envspec argocd-plugin``: the plugin's generate command, run as Argo CD runs it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import BIN, run
from tests.readers import _yaml12, kustomize


def plugin() -> dict[str, Any]:
    result = run("argocd-plugin")
    assert result.exit_code == 0
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


def generate(folder: Path, environment: str | None) -> subprocess.CompletedProcess[str]:
    """The plugin's generate command as Argo CD's cmp-server runs it: command and args, in the
    application's folder, with the application's plugin env as ``ARGOCD_ENV_*``."""
    command = plugin()["spec"]["generate"]
    variables = {"PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(folder)}
    if environment is not None:
        variables["ARGOCD_ENV_ENVSPEC_ENV"] = environment
    return subprocess.run(
        [*command["command"], *command["args"]],
        cwd=folder,
        env=variables,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_plugin_is_a_config_management_plugin() -> None:
    document = plugin()
    assert document["apiVersion"] == "argoproj.io/v1alpha1"
    assert document["kind"] == "ConfigManagementPlugin"
    assert document["metadata"] == {"name": "envspec"}
    assert document["spec"]["discover"] == {"fileName": "./envspec.yaml"}
    script = document["spec"]["generate"]["args"][0]
    assert "set -euo pipefail" in script
    assert '--env "$ARGOCD_ENV_ENVSPEC_ENV" --target kubernetes --stdout' in script


def test_generate_prints_the_environments_documents(example_copy: Path) -> None:
    result = generate(example_copy, "production")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = example_copy / "build"
    rendered = run("render", "--env", "prod", "--spec", str(example_copy), "--out", str(out))
    assert rendered.exit_code == 0
    assert list(_yaml12().load_all(result.stdout)) == kustomize(out / "production" / "kubernetes")


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ("production", "services.backend.replicas"),
        (None, "set the plugin env ENVSPEC_ENV"),
        ("qa", "unknown environment 'qa'"),
    ],
)
def test_generate_fails_and_prints_nothing(
    example_copy: Path, environment: str | None, message: str
) -> None:
    if message.startswith("services."):
        base = example_copy / "envspec.yaml"
        broken = base.read_text().replace('"2.14.0"', '"2.14.0"\n    replicas: many', 1)
        base.write_text(broken)
    result = generate(example_copy, environment)
    assert result.returncode != 0
    assert result.stdout == ""
    assert message in result.stderr


def test_generate_fails_on_empty_output(example_copy: Path, tmp_path: Path) -> None:
    """Should envspec ever succeed without a document, the plugin still fails."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "envspec").write_text("#!/bin/sh\nexit 0\n")
    (fake / "envspec").chmod(0o755)
    command = plugin()["spec"]["generate"]
    result = subprocess.run(
        [*command["command"], *command["args"]],
        cwd=example_copy,
        env={"PATH": f"{fake}:{os.environ['PATH']}", "ARGOCD_ENV_ENVSPEC_ENV": "production"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "envspec: no documents\n"
