"""A target written outside envspec: the example plug-in, installed with pip, works like a
built-in one (validated, rendered, in the lock file, listed by ``envspec targets``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, minimal, write_spec
from tests.readers import posix_shell, python_dotenv

PIP_INSTALL = (sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index")
OFFLINE_BUILD = "--no-build-isolation"  # hatchling comes with the test extra
PLUGIN = REPO / "examples" / "plugins" / "envspec-direnv"
BUILT_IN = ["dotenv", "compose", "kubernetes", "example", "settings"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a process that sees the plug-in: pip installs it (offline, without
    dependencies: envspec is this checkout) into a folder put on ``PYTHONPATH``."""
    folder = tmp_path_factory.mktemp("site")
    subprocess.run(
        [*PIP_INSTALL, OFFLINE_BUILD, "--target", str(folder), str(PLUGIN)],
        check=True,
        capture_output=True,
    )
    return {**os.environ, "PYTHONPATH": str(folder)}


def envspec(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envspec", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _spec(root: Path, targets: list[str]) -> Path:
    spec = minimal()
    spec["environments"]["development"]["targets"] = targets
    spec["variables"]["QUOTED"] = {"default": 'it\'s "quoted"'}
    return write_spec(root, spec)


def test_envspec_targets_lists_built_ins_and_the_plug_in(installed: dict[str, str]) -> None:
    listed = envspec(installed, "targets")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split(None, 2) for line in listed.stdout.splitlines()]
    assert rows == [
        ["dotenv", "environment", "built-in"],
        ["compose", "environment", "built-in"],
        ["kubernetes", "environment", "built-in"],
        ["example", "project", "built-in"],
        ["settings", "project", "built-in"],
        ["direnv", "environment", "envspec-direnv 0.1.0 (envspec_direnv:DirenvRenderer)"],
    ]
    alone = envspec({**installed, "PYTHONPATH": ""}, "targets")
    assert "direnv" not in alone.stdout


@pytest.fixture(scope="module")
def beside_a_broken_one(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The example plug-in and one that fails on import, both installed by pip."""
    package = tmp_path_factory.mktemp("broken")
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "envspec-broken"\nversion = "0.2.0"\n'
        '[project.entry-points."envspec.targets"]\nbroken = "envspec_broken:Renderer"\n'
    )
    (package / "envspec_broken").mkdir()
    (package / "envspec_broken" / "__init__.py").write_text(
        'raise ImportError("needs a library\\nthat is not installed")\n'
    )
    folder = tmp_path_factory.mktemp("site")
    subprocess.run(
        [*PIP_INSTALL, OFFLINE_BUILD, "--target", str(folder), str(PLUGIN), str(package)],
        check=True,
        capture_output=True,
    )
    return {**os.environ, "PYTHONPATH": str(folder)}


def test_a_broken_plug_in_is_listed_with_the_others(beside_a_broken_one: dict[str, str]) -> None:
    listed = envspec(beside_a_broken_one, "targets")
    assert listed.returncode == 1
    rows = [line.split(None, 2) for line in listed.stdout.splitlines()]
    assert [name for name, _, _ in rows] == [*BUILT_IN, "broken", "direnv"]
    assert rows[-1] == [
        "direnv",
        "environment",
        "envspec-direnv 0.1.0 (envspec_direnv:DirenvRenderer)",
    ]
    assert rows[-2] == [
        "broken",
        "broken",
        "envspec-broken 0.2.0 (envspec_broken:Renderer): cannot load envspec_broken:Renderer: "
        "ImportError: needs a library that is not installed",
    ]
    assert listed.stderr == "envspec: cannot load target 'broken' (its line says why)\n"


def test_a_broken_plug_in_stops_only_what_needs_it(
    beside_a_broken_one: dict[str, str], tmp_path: Path
) -> None:
    root = _spec(tmp_path / "spec", ["dotenv", "direnv"])
    rendered = envspec(beside_a_broken_one, "render", "--all", "--spec", str(root))
    assert rendered.returncode == 0, rendered.stderr
    assert (root / "build" / "development" / ".envrc").is_file()
    schema = envspec(beside_a_broken_one, "schema")
    assert schema.returncode == 1 and schema.stdout == ""
    assert schema.stderr.startswith("envspec: target 'broken': cannot load envspec_broken:Renderer")


def test_a_plug_in_target_renders_into_the_lock_and_a_shell_reads_it(
    installed: dict[str, str], tmp_path: Path
) -> None:
    root = _spec(tmp_path / "spec", ["dotenv", "direnv"])
    assert envspec(installed, "validate", "--spec", str(root)).returncode == 0
    rendered = envspec(installed, "render", "--all", "--spec", str(root))
    assert rendered.returncode == 0, rendered.stderr
    build = root / "build"
    envrc = build / "development" / ".envrc"
    names = ["GREETING", "QUOTED", "ENVSPEC_ENVIRONMENT"]
    assert posix_shell(envrc, names) == {
        "GREETING": "hello",
        "QUOTED": 'it\'s "quoted"',
        "ENVSPEC_ENVIRONMENT": "development",
    }
    assert python_dotenv(build / "development" / ".env.development")["QUOTED"] == 'it\'s "quoted"'
    lock = json.loads((build / ".envspec-lock.json").read_text(encoding="utf-8"))
    assert lock["files"]["development/.envrc"]["target"] == "direnv"
    again = envspec(installed, "render", "--all", "--spec", str(root), "--check")
    assert again.returncode == 0, again.stderr


def test_a_plug_in_template_is_overridden_like_a_built_in_one(
    installed: dict[str, str], tmp_path: Path
) -> None:
    root = _spec(tmp_path / "spec", ["direnv"])
    (root / "templates" / "direnv").mkdir(parents=True)
    (root / "templates" / "direnv" / "envrc.j2").write_text("# {{ environment.name }}\n")
    assert envspec(installed, "render", "--env", "dev", "--spec", str(root)).returncode == 0
    assert (root / "build" / "development" / ".envrc").read_text() == "# development\n"


def test_an_unknown_target_names_the_installed_ones(
    installed: dict[str, str], tmp_path: Path
) -> None:
    root = _spec(tmp_path / "spec", ["direnf"])
    result = envspec(installed, "validate", "--spec", str(root))
    assert result.returncode == 1
    assert (
        "envspec.yaml:6:7: environments.development.targets[0]: unknown target 'direnf' "
        "(did you mean 'direnv'?); known: dotenv, compose, kubernetes, direnv"
    ) in result.stderr
    without = envspec({**installed, "PYTHONPATH": ""}, "validate", "--spec", str(root))
    assert "known: dotenv, compose, kubernetes\n" in without.stderr
    assert "Traceback" not in result.stderr + without.stderr


def test_the_schema_offers_installed_targets(installed: dict[str, str]) -> None:
    schema = json.loads(envspec(installed, "schema").stdout)
    items = schema["$defs"]["Environment"]["properties"]["targets"]["items"]
    assert items["enum"] == ["dotenv", "compose", "kubernetes", "direnv"]


def test_the_plug_ins_own_tests_pass(installed: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=PLUGIN,
        env=installed,
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
