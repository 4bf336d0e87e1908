"""`envspec init`: a starter spec, and import from existing compose setups that renders back to an
equivalent compose file (same services, images, ports, environment) per `docker-compose config`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run
from tests.readers import compose_config, compose_environment, compose_v1, compose_v2

CASES = Path(__file__).parent / "cases" / "compose"


def test_starter_spec(tmp_path: Path) -> None:
    result = run("init", "--spec", str(tmp_path))
    assert result.exit_code == 0, result.output
    base = (tmp_path / "envspec.yaml").read_text()
    assert base.startswith("# yaml-language-server: $schema=envspec.schema.json\n")
    overlay = (tmp_path / "environments" / "production.yaml").read_text()
    assert overlay.startswith("# yaml-language-server: $schema=../envspec.schema.json\n")
    assert (tmp_path / "envspec.schema.json").read_text() == run("schema").output
    assert run("validate", "--spec", str(tmp_path)).exit_code == 0
    again = run("init", "--spec", str(tmp_path))
    assert again.exit_code == 1 and "already exists" in again.output


def _import(case: str, tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "source"
    shutil.copytree(CASES / case, source)
    spec = tmp_path / "spec"
    spec.mkdir()
    args = ["init", "--spec", str(spec), "--from-compose", str(source / "docker-compose.yml")]
    for env_file in sorted(source.glob(".env*")):
        args += ["--env-file", str(env_file)]
    result = run(*args)
    assert result.exit_code == 0, result.output
    rendered = run("render", "--env", "development", "--spec", str(spec))
    assert rendered.exit_code == 0, rendered.output
    return source, spec / "build" / "development"


def _essentials(data: dict[str, Any]) -> dict[str, Any]:
    services = {}
    for name, service in data["services"].items():
        services[name] = {
            "image": service.get("image") if "build" not in service else None,
            "build": Path(service["build"]["context"]).name if "build" in service else None,
            "ports": sorted(
                (str(p.get("published")), str(p["target"]), p.get("protocol", "tcp"))
                for p in service.get("ports", [])
            ),
            "environment": compose_environment(data, name),
        }
    return services


@pytest.mark.parametrize("case", ["django", "node-mongo", "profiles"])
@pytest.mark.parametrize("profiles", ["", "debug"])
def test_import_renders_an_equivalent_compose_file(
    tmp_path: Path, case: str, profiles: str
) -> None:
    source, rendered = _import(case, tmp_path)
    environment = {"COMPOSE_PROFILES": profiles} if profiles else {}
    original = _essentials(_config(compose_v2(), source, "docker-compose.yml", environment))
    generated = _essentials(compose_config(compose_v2(), rendered, environment))
    for service in generated.values():
        if service["environment"]:
            assert service["environment"].pop("ENVSPEC_ENVIRONMENT") == "development"
    assert generated == original
    if case != "node-mongo":  # Compose v1 refuses the original's top-level `name:`
        v1 = _essentials(compose_config(compose_v1(), rendered, environment))
        for service in v1.values():
            service["environment"].pop("ENVSPEC_ENVIRONMENT", None)
        assert v1 == _essentials(_config(compose_v1(), source, "docker-compose.yml", environment))


def test_import_keeps_production_secrets_out(tmp_path: Path) -> None:
    _import("django", tmp_path)
    spec = tmp_path / "spec"
    texts = "".join(p.read_text() for p in spec.rglob("*.yaml") if "build" not in p.parts)
    assert "prod-db-password-never-in-spec" not in texts
    assert "prod-secret-never-in-spec" not in texts
    production = (spec / "environments" / "production.yaml").read_text()
    assert 'SECRET_KEY:\n    secret: "vault://TODO/source/production#SECRET_KEY"' in production
    assert 'DJANGO_DEBUG: "false"' in production
    base = (spec / "envspec.yaml").read_text()
    assert "  DJANGO_DEBUG:\n    type: bool\n" in base
    assert "  POSTGRES_PASSWORD:\n    secret: true\n" in base
    assert "  DATABASE_URL:\n    type: url\n    secret: true\n" in base, "a URL with a password"


def _config(binary: str, folder: Path, name: str, env: dict[str, str]) -> dict[str, Any]:
    """Config of the original project, whose compose file is not named docker-compose.yaml."""
    shutil.copy(folder / name, folder / "docker-compose.yaml")
    try:
        return compose_config(binary, folder, env)
    finally:
        (folder / "docker-compose.yaml").unlink()


def test_import_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("- not\n- compose\n")
    result = run(
        "init", "--spec", str(tmp_path / "spec"), "--from-compose", str(tmp_path / "bad.yml")
    )
    assert result.exit_code == 1 and "no 'services' mapping" in result.output
    assert not (tmp_path / "spec" / "envspec.yaml").exists()
    assert run("init", "--env-file", ".env").exit_code == 2


def test_import_that_needs_attention_says_what(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "docker-compose.yml").write_text("services:\n  cache:\n    image: redis\n")
    (source / ".env").write_text("")
    (source / ".env.production").write_text("")
    result = run(
        "init",
        "--spec",
        str(tmp_path / "spec"),
        "--from-compose",
        str(source / "docker-compose.yml"),
        "--env-file",
        str(source / ".env"),
        "--env-file",
        str(source / ".env.production"),
    )
    assert result.exit_code == 1
    assert "services.cache: no version in non-local environment 'production'" in result.output
    assert "the spec was written; fix the problems above" in result.output
    assert (tmp_path / "spec" / "envspec.yaml").is_file()


def test_unreadable_compose_file_does_not_echo_its_lines(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text('services:\n  app:\n    environment: {K: "canary-9a" : x}\n')
    result = run(
        "init", "--spec", str(tmp_path / "spec"), "--from-compose", str(tmp_path / "bad.yml")
    )
    assert result.exit_code == 1
    assert "bad.yml:3:" in result.output and "not a compose file" in result.output
    assert "canary" not in result.output
