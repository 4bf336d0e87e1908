"""`envspec init`: a starter spec, and import from existing compose setups that renders back to an
equivalent compose file (same services, images, ports, environment) per `docker-compose config`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from envspec.importer import is_secret_name
from tests.helpers import run
from tests.importing import CASES, import_case, init_from_compose
from tests.readers import (
    compose_config,
    compose_environment,
    compose_v1,
    compose_v2,
    kustomize,
    python_dotenv,
    validate_kubernetes,
)


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
    imported = import_case(case, tmp_path)
    source, rendered = imported.source, imported.rendered.parent
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
    spec = import_case("django", tmp_path).spec
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
    result = init_from_compose(tmp_path / "spec", tmp_path / "bad.yml")
    assert result.exit_code == 1 and "bad.yml:1:1: expected a mapping" in result.output
    assert not (tmp_path / "spec" / "envspec.yaml").exists()
    assert run("init", "--env-file", ".env").exit_code == 2


def test_import_that_needs_attention_says_what(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "docker-compose.yml").write_text("services:\n  cache:\n    image: redis\n")
    (source / ".env").write_text("")
    (source / ".env.production").write_text("")
    result = init_from_compose(
        tmp_path / "spec",
        source / "docker-compose.yml",
        source / ".env",
        source / ".env.production",
    )
    assert result.exit_code == 1
    assert "services.cache: no version in non-local environment 'production'" in result.output
    assert "the spec was written; fix the problems above" in result.output
    assert (tmp_path / "spec" / "envspec.yaml").is_file()


def test_unreadable_compose_file_does_not_echo_its_lines(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text('services:\n  app:\n    environment: {K: "canary-9a" : x}\n')
    result = init_from_compose(tmp_path / "spec", tmp_path / "bad.yml")
    assert result.exit_code == 1
    assert "bad.yml:3:34: invalid YAML" in result.output
    assert "canary" not in result.output


def test_import_carries_production_values(tmp_path: Path) -> None:
    """Production's non-secret values reach production's own files, through a real reader."""
    spec = import_case("celery-anchors", tmp_path).spec
    production = yaml.safe_load((spec / "environments" / "production.yaml").read_text())
    assert production["variables"]["LOG_LEVEL"] == "WARNING"
    assert production["variables"]["ALLOWED_HOSTS"] == "tracker.example.com"
    assert production["variables"]["SENTRY_ENABLED"] == "true"
    assert production["variables"]["EMAIL_HOST"] == "smtp.example.com"
    assert production["variables"]["SENTRY_DSN"] == "https://public@sentry.example.com/4"
    assert production["services"]["web"]["version"] == "2.4.2"
    assert production["services"]["web"]["command"][-1] == "8"  # --workers ${WEB_WORKERS}
    texts = "".join(p.read_text() for p in spec.rglob("*.yaml"))
    assert "never-in-spec" not in texts
    rendered = run("render", "--env", "production", "--spec", str(spec))
    assert rendered.exit_code == 0, rendered.output
    dotenv = python_dotenv(spec / "build" / "production" / ".env.production")
    assert dotenv["LOG_LEVEL"] == "WARNING" and dotenv["EMAIL_HOST"] == "smtp.example.com"
    development = python_dotenv(spec / "build" / "development" / ".env.development")
    assert development["LOG_LEVEL"] == "DEBUG" and "SENTRY_DSN" not in development


def test_import_summary_says_what_was_found_and_what_was_not_carried(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(CASES / "django", source)
    with (source / ".env.production").open("a") as env_file:
        env_file.write("CDN_HOST=cdn.example.com\n")
    result = init_from_compose(
        tmp_path / "spec",
        source / "docker-compose.yml",
        source / ".env",
        source / ".env.production",
    )
    assert result.exit_code == 0, result.output
    summary = result.output.split("imported:\n", 1)[1]
    assert "  services (4): web, worker, db, redis\n" in summary
    assert "  secrets (3): DATABASE_URL, POSTGRES_PASSWORD, SECRET_KEY\n" in summary
    assert ".env.production:4: CDN_HOST: not carried: no service receives it" in summary
    assert "never-in-spec" not in result.output


def test_validate_warns_about_placeholders_left(tmp_path: Path) -> None:
    spec = import_case("django", tmp_path).spec
    result = run("validate", "--spec", str(spec))
    assert result.exit_code == 0, result.output
    assert (
        "production.yaml:5:5: variables.DATABASE_URL: warning: "
        "'vault://TODO/source/production#DATABASE_URL' is a placeholder" in result.output
    )
    production = spec / "environments" / "production.yaml"
    production.write_text(
        production.read_text().replace("vault://TODO/source/production", "vault://shop/prod")
    )
    again = run("validate", "--spec", str(spec))
    assert again.exit_code == 0 and "placeholder" not in again.output


@pytest.mark.parametrize(
    "name",
    [
        "PGPASSWORD",
        "DB_PASSWD",
        "API_TOKEN",
        "STRIPE_SECRET",
        "AWS_SECRET_ACCESS_KEY",
        "PRIVATE_KEY",
        "GOOGLE_CREDENTIALS",
        "SECRET_KEY",
        "API_KEY",
        "SMTP_PASS",
        "REDIS_AUTH",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["POSTGRES_PASSWORD_FILE", "KEYCLOAK_URL", "MONKEY", "TOKEN_TTL", "PASSWORD_MIN_LENGTH"]
)
def test_not_secret_names(name: str) -> None:
    assert not is_secret_name(name)


def test_import_refuses_what_it_cannot_carry_with_its_position(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    for text, expected in [
        (
            "services:\n  web:\n    image: app:1\n    environment:\n      K: ${K:?set K}\n",
            "docker-compose.yml:5:10: services.web.environment.K: cannot import: "
            "required variable K is not set: set K",
        ),
        (
            "services:\n  web:\n    image: app:1\ninclude:\n  - other.yml\n",
            "docker-compose.yml:4:1: include: cannot import: top-level 'include' has no "
            "counterpart in the spec",
        ),
        (
            "services:\n  my_db:\n    image: db:1\n  my-db:\n    image: db:1\n",
            "docker-compose.yml:4:3: services.my-db: cannot import: two services would both be "
            "named 'my-db'",
        ),
    ]:
        compose.write_text(text)
        spec = tmp_path / "spec"
        result = init_from_compose(spec, compose)
        assert result.exit_code == 1
        assert expected in result.output, result.output
        assert not spec.exists() or not any(spec.iterdir())


def test_import_summary_lists_renames_and_rewritten_hosts(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(CASES / "renames", source)
    result = init_from_compose(tmp_path / "spec", source / "docker-compose.yml")
    assert result.exit_code == 0, result.output
    assert "  renamed: MyApp -> myapp\n  renamed: my_db -> my-db\n" in result.output
    assert "services.myapp.environment.DB_HOST: names a renamed service" in result.output
    base = yaml.safe_load((tmp_path / "spec" / "envspec.yaml").read_text())
    assert base["variables"]["DB_HOST"]["default"] == "my-db"
    assert base["variables"]["UNRELATED"]["default"] == "my_dbx"


def test_import_reaches_each_service_by_its_name_in_kubernetes(tmp_path: Path) -> None:
    """A service reached by name in compose gets a Service of that name in Kubernetes, and an
    entrypoint is the container's command there."""
    source = tmp_path / "source"
    shutil.copytree(CASES / "selfhosted", source)
    spec = tmp_path / "spec"
    result = init_from_compose(spec, source / "docker-compose.yml")
    assert result.exit_code == 0, result.output
    assert "services.db: reached by name: ports 5432" not in result.output  # no port is known
    assert "services.search: reached by name: ports 7700" in result.output
    assert "services.app: reached by name: ports 3000" in result.output
    base = spec / "envspec.yaml"
    base.write_text(
        base.read_text().replace("      - compose\n", "      - compose\n      - kubernetes\n", 1)
    )
    rendered = run("render", "--env", "development", "--spec", str(spec))
    assert rendered.exit_code == 0, rendered.output
    documents = kustomize(spec / "build" / "development" / "kubernetes")
    for document in documents:
        validate_kubernetes(document)
    services = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Service"}
    assert services["search"]["spec"]["ports"][0]["port"] == 7700
    assert services["storage"]["spec"]["ports"][0]["port"] == 9001
    assert services["app"]["spec"]["ports"][0]["port"] == 3000
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    container = deployments["app"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/usr/local/bin/docker-entrypoint"]
    assert container["args"] == ["serve", "--port", "3000"]


def test_two_services_giving_one_variable_two_values_get_their_own(tmp_path: Path) -> None:
    """The value most services share is the environment's (on a tie the first in the file);
    the others are the services' own, and each service gets its own through Compose v2 and v1."""
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(
        "services:\n  billing:\n    image: b:1\n    environment:\n      PORT: '8001'\n"
        "  accounts:\n    image: a:1\n    environment:\n      PORT: '8002'\n"
    )
    spec = tmp_path / "spec"
    result = init_from_compose(spec, compose)
    assert result.exit_code == 0, result.output
    assert "  own values (services.<service>.values): PORT: accounts; the other" in result.output
    base = yaml.safe_load((spec / "envspec.yaml").read_text())
    assert base["variables"]["PORT"] == {"type": "int", "default": "8001"}
    assert base["services"]["accounts"]["values"] == {"PORT": "8002"}
    assert "values" not in base["services"]["billing"]
    assert run("render", "--env", "development", "--spec", str(spec)).exit_code == 0
    rendered = spec / "build" / "development"
    for binary in (compose_v2(), compose_v1()):
        config = compose_config(binary, rendered)
        assert compose_environment(config, "billing")["PORT"] == "8001"
        assert compose_environment(config, "accounts")["PORT"] == "8002"


def test_import_of_two_apps_gives_each_its_own_values(tmp_path: Path) -> None:
    """Two apps and a worker: the shop's values (shared by the worker) are the environment's,
    billing's differ, in development (its secrets in development's overlay) and in the other
    environments (a placeholder of its own for each secret, production's own LOG_LEVEL)."""
    imported = import_case("two-apps", tmp_path)
    spec = imported.spec
    assert (
        "  own values (services.<service>.values): PORT: billing; DATABASE_URL: billing; "
        "DJANGO_SETTINGS_MODULE: billing; SECRET_KEY: billing; LOG_LEVEL: billing (in "
        "production); the other services share the value most of them have" in imported.output
    )
    texts = "".join(p.read_text() for p in spec.rglob("*.yaml"))
    assert "never-in-spec" not in texts and "never-in-spec" not in imported.output
    base = yaml.safe_load((spec / "envspec.yaml").read_text())
    assert base["services"]["billing"]["values"] == {
        "PORT": "8001",
        "DJANGO_SETTINGS_MODULE": "billing.settings",
    }
    assert base["variables"]["DJANGO_SETTINGS_MODULE"]["default"] == "shop.settings"
    development = yaml.safe_load((spec / "environments" / "development.yaml").read_text())
    assert development["variables"]["SECRET_KEY"] == "dev-shop-key"
    assert development["services"]["billing"]["values"] == {
        "DATABASE_URL": "postgres://billing:dev-billing-pw@postgres:5432/billing",
        "SECRET_KEY": "dev-billing-key",
    }
    production = yaml.safe_load((spec / "environments" / "production.yaml").read_text())
    assert production["variables"]["DATABASE_URL"] == {
        "secret": "vault://TODO/source/production#DATABASE_URL"
    }
    assert production["services"]["billing"]["values"] == {
        "DATABASE_URL": {"secret": "vault://TODO/source/production/billing#DATABASE_URL"},
        "SECRET_KEY": {"secret": "vault://TODO/source/production/billing#SECRET_KEY"},
        "LOG_LEVEL": "WARNING",
    }
    assert set(production["services"]) == {"billing"}
    validated = run("validate", "--spec", str(spec))
    assert validated.exit_code == 0, validated.output
    assert (
        "production.yaml:15:9: services.billing.values.SECRET_KEY: warning: "
        "'vault://TODO/source/production/billing#SECRET_KEY' is a placeholder" in validated.output
    )
    rendered = run("render", "--all", "--spec", str(spec))
    assert rendered.exit_code == 0, rendered.output
    out = spec / "build" / "production"
    assert python_dotenv(out / ".env.production")["LOG_LEVEL"] == "INFO"
    billing = python_dotenv(out / ".env.production.billing")
    assert (billing["LOG_LEVEL"], billing["PORT"]) == ("WARNING", "8001")
    config = compose_config(compose_v2(), spec / "build" / "development")
    assert compose_environment(config, "worker")["DATABASE_URL"] == (
        "postgres://shop:dev-shop-pw@postgres:5432/shop"
    )
    assert compose_environment(config, "billing")["SECRET_KEY"] == "dev-billing-key"


def test_a_service_is_reached_only_where_a_value_names_it_as_a_host(tmp_path: Path) -> None:
    """``CELERY_ROLE: worker`` is a word, not the host ``worker``; ``postgres:5432`` named by two
    environments' URLs is one port."""
    output = import_case("celery-anchors", tmp_path).output
    assert "services.worker: reached" not in output
    assert "services.postgres: reached by name: ports 5432 for its Kubernetes" in output
    assert "services.redis: reached by name: ports 6379 for its Kubernetes" in output
    assert "services.migrate: reached by name, but no port is known" in output  # depends_on


def test_another_environment_takes_what_compose_interpolates(tmp_path: Path) -> None:
    """With ``LOG_LEVEL: ${APP_LOG_LEVEL:-INFO}``, production's LOG_LEVEL is what compose reads
    with .env.production (APP_LOG_LEVEL), not that file's own LOG_LEVEL line, which is listed."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "docker-compose.yml").write_text(
        "services:\n  app:\n    image: app:1\n    environment:\n"
        "      LOG_LEVEL: ${APP_LOG_LEVEL:-INFO}\n      MODE: plain\n"
    )
    (source / ".env").write_text("")
    (source / ".env.production").write_text("LOG_LEVEL=ERROR\nAPP_LOG_LEVEL=WARNING\nMODE=fast\n")
    spec = tmp_path / "spec"
    result = init_from_compose(
        spec, source / "docker-compose.yml", source / ".env", source / ".env.production"
    )
    assert result.exit_code == 0, result.output
    production = yaml.safe_load((spec / "environments" / "production.yaml").read_text())
    assert production["variables"] == {"LOG_LEVEL": "WARNING", "MODE": "fast"}
    assert (
        ".env.production:1: LOG_LEVEL: not carried: the services that receive it interpolate "
        "their own value in the compose file, and compose reads that" in result.output
    )
