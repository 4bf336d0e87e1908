"""The direnv target through envspec's API: rendered, validated, read back by a POSIX shell."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from envspec_direnv import DirenvRenderer

from envspec import api, targets
from envspec.errors import SpecError
from envspec.render.base import EnvironmentRenderer

RENDERER: EnvironmentRenderer = DirenvRenderer()
"""Typed: mypy checks that the class meets envspec's renderer protocol."""

VALUES = {
    "GREETING": "hello world",
    "QUOTES": 'it\'s "quoted" $HOME `date` \\n',
    "LINES": "one\ntwo",
}


def _spec(root: Path, targets: list[str]) -> Path:
    spec = {
        "version": 1,
        "project": "demo",
        "environments": {
            "development": {"targets": targets, "local": True},
            "production": {"targets": targets},
        },
        "variables": {
            **{name: {"default": value} for name, value in VALUES.items()},
            "TOKEN": {"secret": True, "default": {"secret": "vault://demo/app#token"}},
        },
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "envspec.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return root


def _sourced(envrc: Path) -> dict[str, str]:
    """What a POSIX shell exports after sourcing ``envrc`` (``env -0``: NUL-separated), but
    the shell's own variables."""
    output = subprocess.run(
        ["env", "-i", "sh", "-c", '. "$1" && env -0', "sh", str(envrc)],
        capture_output=True,
        check=True,
    ).stdout
    pairs = (item.partition("=") for item in output.decode().split("\0") if item)
    return {name: value for name, _, value in pairs if name not in {"PWD", "OLDPWD", "SHLVL", "_"}}


def test_renders_what_a_shell_reads_back(tmp_path: Path) -> None:
    project = api.load(_spec(tmp_path / "spec", ["direnv"]))
    files = {f.path: f for f in api.render_files(project, ["development"], ["direnv"])}
    envrc = tmp_path / ".envrc"
    envrc.write_text(files["development/.envrc"].content, encoding="utf-8")
    assert _sourced(envrc) == {**VALUES, "ENVSPEC_ENVIRONMENT": "development"}
    assert files["development/.envrc"].target == "direnv"


def test_a_secret_from_a_store_is_named_not_written(tmp_path: Path) -> None:
    project = api.load(_spec(tmp_path / "spec", ["direnv"]))
    content = api.render_files(project, ["production"], ["direnv"])[0].content
    assert "# TOKEN is a secret from vault://demo/app#token" in content
    assert "export TOKEN" not in content


def test_a_misspelt_target_is_a_positioned_problem(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        api.check(_spec(tmp_path / "spec", ["direnf"]))
    message = raised.value.problems[0].message
    assert message.startswith("unknown target 'direnf' (did you mean 'direnv'?)")


def test_installed_it_is_registered_under_its_name() -> None:
    target = targets.get("direnv")
    assert type(target.renderer) is DirenvRenderer
    assert target.origin == "envspec-direnv 0.1.0"
    assert target.per_environment and not target.deploys_workloads
