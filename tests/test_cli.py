"""CLI behaviour: prefix matching, usage errors, version, the committed schema."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from envspec import __version__, _help
from envspec.cli import _Context, cli
from tests.helpers import REPO, minimal, run, write_spec


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.output == f"envspec, version {__version__}\n"
    script = subprocess.run(
        [sys.executable, "-m", "envspec", "--version"], capture_output=True, text=True, check=True
    )
    assert script.stdout == result.output, "the console script's fast answer matches click's"
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, envspec.entry; print('click' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout == "False\n"


def _help_module() -> str:
    text = (
        CliRunner()
        .invoke(cli, ["--help"], obj=_Context(), prog_name="envspec", terminal_width=80)
        .output
    )
    assert '"""' not in text and "\\" not in text
    return (
        '"""The top-level ``envspec --help``, as click renders it for a terminal of 80 columns or\n'
        "more: the console script prints it without importing click. Generated; refresh with\n"
        '``ENVSPEC_UPDATE_GOLDEN=1 pytest tests/test_cli.py`` (a test fails when it is stale)."""\n'
        f'\nTOP_LEVEL = """\\\n{text}"""\n'
    )


def test_top_level_help_is_answered_without_click() -> None:
    module = REPO / "envspec" / "_help.py"
    if os.environ.get("ENVSPEC_UPDATE_GOLDEN") == "1":
        module.write_text(_help_module(), encoding="utf-8")
    assert module.read_text(encoding="utf-8") == _help_module(), "stale: see its docstring"
    probe = (
        "import os, sys; from envspec.entry import main; sys.argv[0] = 'envspec'\n"
        "os._exit = lambda code: None  # so that the probe outlives the command\n"
        "main()\n"
        "print('click' in sys.modules, file=sys.stderr)"
    )
    for columns, answered_early in (("120", True), ("80", True), ("60", False)):
        for option in ("--help", "-h"):
            script = subprocess.run(
                [sys.executable, "-c", probe, option],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "COLUMNS": columns},
            )
            assert script.stderr == f"{not answered_early}\n", (columns, option)
            if answered_early:
                assert script.stdout == _help.TOP_LEVEL
            else:
                assert "Usage: envspec [OPTIONS] COMMAND" in script.stdout


def test_committed_schema_is_current() -> None:
    """Refresh with: envspec schema > schema/envspec.schema.json"""
    result = run("schema")
    assert result.output == (REPO / "schema" / "envspec.schema.json").read_text(encoding="utf-8")
    schema = json.loads(result.output)
    assert "Spec" in schema["$defs"] and "Overlay" in schema["$defs"]


def test_environment_prefixes(tmp_path: Path) -> None:
    root = write_spec(tmp_path / "spec", minimal())
    result = run("render", "--env", "prod", "--spec", str(root))
    assert result.exit_code == 0, result.output
    assert (root / "build" / "production" / "kubernetes" / "kustomization.yaml").is_file()
    assert not (root / "build" / "development").exists()
    unknown = run("render", "--env", "stage", "--spec", str(root))
    assert unknown.exit_code == 1
    assert "unknown environment 'stage'" in unknown.output


def test_validate_named_environments_only(tmp_path: Path) -> None:
    spec = minimal(variables={"GREETING": {"default": "hello"}, "API_URL": {"type": "url"}})
    overlays = {"development": {"variables": {"API_URL": "http://localhost:8000"}}}
    root = write_spec(tmp_path / "spec", spec, overlays)
    everything = run("validate", "--spec", str(root))
    assert everything.exit_code == 1
    assert "variables.API_URL: no value in environment 'production'" in everything.output
    development = run("validate", "--env", "dev", "--spec", str(root))
    assert development.exit_code == 0, development.output
    assert "spec is valid (1 environment: development)" in development.output
    production = run("validate", "-e", "prod", "--spec", str(root))
    assert production.exit_code == 1 and "'production'" in production.output
    unknown = run("validate", "--env", "staging", "--spec", str(root))
    assert unknown.exit_code == 1 and "unknown environment 'staging'" in unknown.output


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    root = write_spec(tmp_path / "spec", minimal())
    assert run("render", "--all", "--env", "dev", "--spec", str(root)).exit_code == 2
    assert run("render", "--bogus").exit_code == 2


def test_unknown_target(tmp_path: Path) -> None:
    root = write_spec(tmp_path / "spec", minimal())
    result = run("render", "--all", "--target", "kubernets", "--spec", str(root))
    assert result.exit_code == 1
    assert "unknown target 'kubernets' (did you mean 'kubernetes'?)" in result.output


def test_spec_found_in_parent_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_spec(tmp_path / "spec", minimal())
    (root / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(root / "deep" / "er")
    result = run("validate")
    assert result.exit_code == 0
    assert "spec is valid (2 environments: development, production)" in result.output


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("envspec render --env pr", ["production"]),
        ("envspec diff development s", ["staging"]),
        ("envspec explain STRIPE_S", ["STRIPE_SECRET_KEY"]),
        ("envspec var", ["var"]),
    ],
)
def test_bash_completion(line: str, expected: list[str]) -> None:
    """The script click generates, sourced by bash, completes commands, environments, variables."""
    binary = shutil.which("envspec", path=str(Path(sys.executable).parent)) or shutil.which(
        "envspec"
    )
    assert binary, "envspec is installed"
    environment = {
        **os.environ,
        "PATH": f"{Path(binary).parent}{os.pathsep}{os.environ['PATH']}",
    }
    words = line.split(" ")
    script = (
        'eval "$(_ENVSPEC_COMPLETE=bash_source envspec)"\n'
        f"COMP_WORDS=({line})\nCOMP_CWORD={len(words) - 1}\n"
        "_envspec_completion envspec\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == expected


def test_defaults_from_pyproject_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    write_spec(project / "deploy", minimal())
    (project / "pyproject.toml").write_text(
        '[tool.envspec]\nspec = "deploy"\nout = "dist/config"\n'
    )
    (project / "src").mkdir()
    monkeypatch.chdir(project / "src")
    result = run("render", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert (project / "dist" / "config" / "development" / ".env.development").is_file()
    other = write_spec(tmp_path / "other", minimal())
    monkeypatch.setenv("ENVSPEC_SPEC", str(other))
    monkeypatch.setenv("ENVSPEC_OUT", str(tmp_path / "elsewhere"))
    result = run("render", "--env", "prod")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "elsewhere" / "production" / "kubernetes" / "kustomization.yaml").is_file()


def test_console_script_output_and_exit_codes_survive_its_fast_exit(tmp_path: Path) -> None:
    good = write_spec(tmp_path / "good", minimal())
    bad = write_spec(tmp_path / "bad", minimal(version=2))

    def envspec(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "envspec", *args], capture_output=True, text=True, check=False
        )

    schema = envspec("schema")
    assert schema.returncode == 0
    assert json.loads(schema.stdout) == json.loads(
        (REPO / "schema" / "envspec.schema.json").read_text(encoding="utf-8")
    ), "a long output is flushed whole before the process ends"
    valid = envspec("validate", "--spec", str(good), "--format", "json")
    assert valid.returncode == 0 and json.loads(valid.stdout)["valid"] is True
    invalid = envspec("validate", "--spec", str(bad))
    assert invalid.returncode == 1
    assert "envspec.yaml:1:10: version:" in invalid.stderr
    usage = envspec("render", "--no-such-option")
    assert usage.returncode == 2 and "No such option" in usage.stderr
