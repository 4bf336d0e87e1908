"""Hostile input and broken templates end in exit 1 with a positioned message, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envspec import api, loader
from tests.helpers import minimal, run, write_spec

BOMB = Path(__file__).parent / "cases" / "invalid" / "alias-bomb.yaml"


def test_alias_bomb_is_refused_before_expanding(tmp_path: Path) -> None:
    root = tmp_path / "spec"
    root.mkdir()
    (root / "envspec.yaml").write_text(BOMB.read_text())
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1 and "alias bomb" in result.output


@pytest.mark.parametrize("key", ["{secret: x}", "[cpu]"])
def test_a_mapping_or_list_as_a_key_is_a_positioned_error(tmp_path: Path, key: str) -> None:
    base = f"""version: 1
project: demo
environments:
  development: {{local: true}}
services:
  web:
    image: example/web
    resources:
      requests: {{{key}: 250m, memory: 512Mi}}
"""
    root = write_spec(tmp_path / "spec", base)
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1, result.output
    assert (
        "envspec.yaml:9:18: services.web.resources.requests: mapping keys must be plain strings"
    ) in result.output.replace(str(root) + "/", "")
    assert "internal error" not in result.output


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    root = write_spec(tmp_path / "spec", minimal())
    with (root / "envspec.yaml").open("a") as handle:
        handle.write("# " + "x" * loader.MAX_FILE_BYTES + "\n")
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1
    assert f"the limit is {loader.MAX_FILE_BYTES}" in result.output


def test_undefined_name_in_user_template(tmp_path: Path) -> None:
    root = write_spec(tmp_path / "spec", minimal())
    (root / "templates" / "dotenv").mkdir(parents=True)
    (root / "templates" / "dotenv" / "env.j2").write_text(
        "# custom\n{% for variable in variables %}\n"
        "{{ variable.name }}={{ nonsense }}\n{% endfor %}\n"
    )
    result = run("render", "--all", "--spec", str(root))
    assert result.exit_code == 1
    assert (
        "templates/dotenv/env.j2:3:1: template: undefined: 'nonsense' is undefined" in result.output
    )
    assert not (root / "build").exists()


def test_user_template_overrides_builtin(tmp_path: Path) -> None:
    root = write_spec(tmp_path / "spec", minimal())
    (root / "templates" / "dotenv").mkdir(parents=True)
    (root / "templates" / "dotenv" / "env.j2").write_text(
        "# ours\n{% for variable in variables %}\n"
        "{{ variable.name }}={{ variable.value | dotenv }}\n{% endfor %}\n"
    )
    assert run("render", "--all", "--spec", str(root)).exit_code == 0
    text = (root / "build" / "development" / ".env.development").read_text()
    assert text == "# ours\nGREETING='hello'\n"


def test_misspelt_template_override(tmp_path: Path) -> None:
    root = write_spec(tmp_path / "spec", minimal())
    (root / "templates" / "kubernetes").mkdir(parents=True)
    (root / "templates" / "kubernetes" / "deployment.yml.j2").write_text("x")
    result = run("render", "--all", "--spec", str(root))
    assert result.exit_code == 1
    assert "no template is named 'kubernetes/deployment.yml.j2'" in result.output
    assert "did you mean 'kubernetes/deployment.yaml.j2'?" in result.output


def test_template_syntax_error(tmp_path: Path) -> None:
    root = write_spec(tmp_path / "spec", minimal())
    (root / "templates" / "kubernetes").mkdir(parents=True)
    (root / "templates" / "kubernetes" / "namespace.yaml.j2").write_text("a: 1\n{% if %}\n")
    result = run("render", "--all", "--spec", str(root))
    assert result.exit_code == 1
    assert "templates/kubernetes/namespace.yaml.j2:2:1: template:" in result.output


def test_internal_error_is_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_spec(tmp_path / "spec", minimal())

    def broken(spec: Path | None = None) -> api.Checked:
        raise RuntimeError("canary-internal-detail")

    monkeypatch.setattr(api, "check", broken)
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1
    assert result.output == (
        "envspec: internal error (RuntimeError); rerun with --debug to see the traceback\n"
    )


def test_all_problems_in_one_run_sorted(tmp_path: Path) -> None:
    spec = minimal()
    spec["services"]["web"]["depends_on"] = ["nope"]
    spec["services"]["web"]["replicas"] = "many"
    spec["environments"]["development"]["targets"] = ["dotenv", "helm"]
    root = write_spec(tmp_path / "spec", spec)
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if not line.startswith("envspec:")]
    assert len(lines) == 3
    assert "services.web.replicas: expected a number of replicas or {min, max, target_cpu}" in (
        result.stderr
    )
    assert "services.web.depends_on[0]: unknown service 'nope'" in result.stderr
    positions = [tuple(int(part) for part in line.split(":")[1:3]) for line in lines]
    assert positions == sorted(positions)
    assert "3 problems found" in result.stderr


def test_invalid_yaml_from_a_user_template_does_not_echo_values(tmp_path: Path) -> None:
    spec = minimal(variables={"TOKEN": {"secret": True}})
    spec["environments"]["development"]["targets"] = ["kubernetes"]
    overlays: dict[str, dict[str, Any]] = {
        "development": {"variables": {"TOKEN": "canary-template-5e1f"}},
        "production": {"variables": {"TOKEN": {"secret": "vault://app#token"}}},
    }
    root = write_spec(tmp_path / "spec", spec, overlays)
    (root / "templates" / "kubernetes").mkdir(parents=True)
    (root / "templates" / "kubernetes" / "secret.yaml.j2").write_text(
        "stringData:\n{% for key, value in data.items() %}\n"
        "  {{ key }}: {{ value }} : x\n{% endfor %}\n"
    )
    result = run("render", "--all", "--spec", str(root))
    assert result.exit_code == 1
    assert (
        "templates/kubernetes/secret.yaml.j2:1:1: template: renders invalid YAML" in result.output
    )
    assert "canary" not in result.output


@pytest.mark.parametrize(
    "compose, message",
    [
        (BOMB.read_text().replace("version: 1", "services: {}"), "alias bomb"),
        ("services: " + "[" * 100 + "]" * 100 + "\n", "nested deeper than 64 levels"),
        (
            "x: &deep " + "[" * 40 + "]" * 40 + "\nservices: " + "[" * 30 + "*deep" + "]" * 30,
            "through alias 'deep'",
        ),
        ("services:\n  web: {image: \x07}\n", "docker-compose.yaml:2:16: invalid YAML"),
    ],
    ids=["alias-bomb", "deep", "deep-through-anchor", "control-character"],
)
def test_init_reads_a_compose_file_within_the_loader_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compose: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("docker-compose.yaml").write_text(compose, encoding="utf-8")
    result = run("init", "--from-compose", "docker-compose.yaml", "--spec", "spec")
    assert result.exit_code == 1
    assert message in result.output and "internal error" not in result.output
    assert not Path("spec").exists()


def test_debug_traceback_never_shows_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_spec(tmp_path / "spec", minimal())

    def broken(spec: Path | None = None) -> api.Checked:
        try:
            int("canary-secret-value")
        except ValueError as error:
            raise RuntimeError("wrapping canary-secret-value") from error
        raise AssertionError("int() read the text")

    monkeypatch.setattr(api, "check", broken)
    result = run("--debug", "validate", "--spec", str(root))
    assert result.exit_code == 1
    assert "canary" not in result.output
    assert result.output.count("Traceback (most recent call last):") == 2
    assert (
        "in broken" in result.output and "builtins.ValueError (message not shown" in result.output
    )


def test_files_in_environments_that_are_not_overlays_are_named(tmp_path: Path) -> None:
    root = write_spec(tmp_path / "spec", minimal(), {"production": {"variables": {}}})
    (root / "environments" / "production.YAML").write_text("variables: {GREETING: hi}\n")
    (root / "environments" / "notes.txt").write_text("not an overlay\n")
    (root / "environments" / ".gitkeep").write_text("")
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 0, result.output
    assert "production.YAML: warning: 'production.YAML' is not read" in result.output
    assert "notes.txt: warning: 'notes.txt' is not read" in result.output
    assert ".gitkeep" not in result.output
    (root / "environments" / "prod.yml").write_text("variables: {}\n")
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1
    assert "prod.yml:1:1: overlay for unknown environment 'prod'" in result.output
