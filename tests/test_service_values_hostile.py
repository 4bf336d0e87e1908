"""Services' own values tried the way a demanding user and an attacker would: a realistic spec
(two Django apps, a Celery worker, PostgreSQL and Redis; development on compose, staging and
production on Kubernetes with external-secrets) whose services give odd values of their own, read
back by every real reader, tasks included; own values that would reach nothing refused."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envspec.render.filters import CannotCarry, compose_value, dotenv_quote, kubernetes_value
from tests.helpers import dump, minimal, run, write_spec
from tests.readers import (
    compose_config,
    compose_environment,
    compose_v1,
    compose_v2,
    kubelet_expand,
    kustomize,
    posix_shell,
    python_dotenv,
    validate_kubernetes,
)
from tests.test_canary import ENVSPEC, LARGE
from tests.test_roundtrip import VALUE

APP = ["DJANGO_SECRET_KEY", "DATABASE_URL", "DB_NAME", "DB_PASSWORD", "REDIS_URL", "GREETING",
       "ODD", "FLAG", "LOG_LEVEL", "EMPTY"]  # fmt: skip
SHOP_GREETING = "shop says 'q' \"dq\" # not a comment"
BILLING_GREETING = "line1\nline2 ünïcödé ☃"
BILLING_DB = "bil$(DB_PASSWORD)$$ling"
WORKER_GREETING = "$$ $(HOME) `echo pwned` $(echo pwned) $HOME back"
SECRETS = ("DJANGO_SECRET_KEY", "DB_PASSWORD", "DATABASE_URL")


def _app(image: str, port: int | None, values: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "image": image,
        "version": "1.0.0",
        **({"ports": [port]} if port else {}),
        "depends_on": ["postgres", "redis"],
        "variables": APP,
        "values": values,
        **more,
    }


def _spec() -> dict[str, Any]:
    external_secrets = {"mode": "external-secrets", "store": "vault-backend"}
    url = "postgres://app:${DB_PASSWORD}@${services.postgres.host}:${services.postgres.port}/"
    return {
        "version": 1,
        "project": "acme",
        "environments": {
            "development": {"targets": ["dotenv", "compose"], "local": True},
            "staging": {"targets": ["kubernetes", "dotenv"], "secrets": external_secrets},
            "production": {"targets": ["kubernetes", "dotenv"], "secrets": external_secrets},
        },
        "services": {
            "shop": _app("ghcr.io/acme/shop", 8000, {"GREETING": SHOP_GREETING, "ODD": "on"}),
            "billing-api": _app(
                "ghcr.io/acme/billing",
                8001,
                {"DB_NAME": BILLING_DB, "GREETING": BILLING_GREETING, "ODD": "0123", "EMPTY": ""},
            ),
            "worker": _app(
                "ghcr.io/acme/shop",
                None,
                {"LOG_LEVEL": "DEBUG", "GREETING": WORKER_GREETING, "ODD": "no"},
                command=["celery", "-A", "shop", "worker"],
            ),
            "postgres": {
                "image": "postgres",
                "version": "16.1",
                "ports": [5432],
                "variables": ["DB_PASSWORD"],
            },
            "redis": {"image": "redis", "version": "7.2.4", "ports": [6379], "variables": []},
        },
        "tasks": {
            "migrate": {"service": "billing-api", "command": ["migrate"], "when": "before-deploy"},
            "drain": {"service": "worker", "command": ["celery", "drain"]},
        },
        "variables": {
            "DJANGO_SECRET_KEY": {"secret": True},
            "DB_NAME": {"default": "shop"},
            "DB_PASSWORD": {"secret": True},
            "DATABASE_URL": {"secret": True, "default": {"from": url + "${DB_NAME}"}},
            "REDIS_URL": {"type": "url", "default": {"from": "redis://${services.redis.host}/0"}},
            "GREETING": {"default": "hello"},
            "ODD": {"default": "yes"},
            "FLAG": {"type": "bool", "default": False},
            "LOG_LEVEL": {
                "type": "enum",
                "choices": ["DEBUG", "INFO", "WARNING"],
                "default": "INFO",
            },
            "EMPTY": {"default": "x", "required": False},
        },
    }


def _overlays() -> dict[str, Any]:
    def vault(environment: str, path: str) -> dict[str, str]:
        return {"secret": f"vault://{environment}/{path}"}

    remote: dict[str, Any] = {
        environment: {
            "variables": {
                "DJANGO_SECRET_KEY": vault(environment, "shop#django"),
                "DB_PASSWORD": vault(environment, "pg#shop"),
            },
            "services": {
                "billing-api": {
                    "values": {
                        "DJANGO_SECRET_KEY": vault(environment, "billing#django"),
                        "DB_PASSWORD": vault(environment, "pg#billing"),
                    }
                }
            },
        }
        for environment in ("staging", "production")
    }
    remote["staging"]["services"]["billing-api"]["values"]["ODD"] = "1e3"
    remote["production"]["services"]["postgres"] = {"external": True, "host": "db.example.com"}
    remote["production"]["services"]["worker"] = {
        "values": {
            "DJANGO_SECRET_KEY": {"secret": "k8s://worker-secrets#django"},
            "LOG_LEVEL": "WARNING",
        }
    }
    development = {
        "variables": {"DJANGO_SECRET_KEY": "dev-shop-$ecret", "DB_PASSWORD": "dev-pg-`pw`"},
        "services": {
            "billing-api": {
                "values": {"DJANGO_SECRET_KEY": "dev-billing-$x", "DB_PASSWORD": "dev-$(pg)"}
            },
            "worker": {"values": {"FLAG": True}},
        },
    }
    return {"development": development, **remote}


def _expected(environment: str, service: str, key: str, password: str) -> dict[str, str]:
    values = {
        "ENVSPEC_ENVIRONMENT": environment,
        "DJANGO_SECRET_KEY": key,
        "DB_NAME": "shop",
        "DB_PASSWORD": password,
        "REDIS_URL": "redis://redis/0",
        "GREETING": "hello",
        "ODD": "yes",
        "FLAG": "false",
        "LOG_LEVEL": "INFO",
        "EMPTY": "x",
    }
    if service == "shop":
        values.update(GREETING=SHOP_GREETING, ODD="on")
    elif service == "billing-api":
        odd = "1e3" if environment == "staging" else "0123"
        values.update(DB_NAME=BILLING_DB, GREETING=BILLING_GREETING, ODD=odd, EMPTY="")
    elif service == "worker":
        level = "WARNING" if environment == "production" else "DEBUG"
        flag = "true" if environment == "development" else "false"
        values.update(LOG_LEVEL=level, GREETING=WORKER_GREETING, ODD="no", FLAG=flag)
    host = "db.example.com" if environment == "production" else "postgres"
    values["DATABASE_URL"] = f"postgres://app:{password}@{host}:5432/{values['DB_NAME']}"
    return values


DEVELOPMENT = {
    "shop": _expected("development", "shop", "dev-shop-$ecret", "dev-pg-`pw`"),
    "billing-api": _expected("development", "billing-api", "dev-billing-$x", "dev-$(pg)"),
    "worker": _expected("development", "worker", "dev-shop-$ecret", "dev-pg-`pw`"),
}
TASKS = {"migrate": "billing-api", "drain": "worker"}
SECRET_DATA = {
    ("acme-secrets", "DJANGO_SECRET_KEY"): "key-shop",
    ("acme-secrets", "DB_PASSWORD"): "pw-$(shop)",
    ("acme-secrets", "BILLING_API__DJANGO_SECRET_KEY"): "key-billing",
    ("acme-secrets", "BILLING_API__DB_PASSWORD"): "pw-$$billing",
    ("worker-secrets", "django"): "key-worker",
}


def _in_cluster(environment: str, service: str) -> dict[str, str]:
    billing = service == "billing-api"
    key = {"billing-api": "key-billing", "shop": "key-shop"}.get(service, "key-shop")
    if service == "worker" and environment == "production":
        key = "key-worker"
    return _expected(environment, service, key, "pw-$$billing" if billing else "pw-$(shop)")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("realistic")
    spec = write_spec(root / "spec", _spec(), _overlays())
    result = run("render", "--all", "--spec", str(spec), "--out", str(root / "out"))
    assert result.exit_code == 0, result.output
    return root / "out"


def test_each_service_file_is_read_exactly_by_python_dotenv_and_sh(rendered: Path) -> None:
    for service, expected in DEVELOPMENT.items():
        file = rendered / "development" / f".env.development.{service}"
        assert python_dotenv(file) == expected, service
        assert posix_shell(file, list(expected)) == expected, service
    for environment in ("staging", "production"):
        for service in DEVELOPMENT:
            expected = _in_cluster(environment, service)
            for name in SECRETS:
                del expected[name]
            file = rendered / environment / f".env.{environment}.{service}"
            assert python_dotenv(file) == expected, (environment, service)
            assert posix_shell(file, list(expected)) == expected, (environment, service)


@pytest.mark.parametrize("binary", [compose_v2, compose_v1], ids=["v2", "v1"])
def test_compose_gives_each_service_and_task_exactly_its_values(
    binary: Any, rendered: Path
) -> None:
    data = compose_config(binary(), rendered / "development", profiles=("tasks",))
    for service, expected in DEVELOPMENT.items():
        assert compose_environment(data, service) == expected, service
    for task, service in TASKS.items():
        assert compose_environment(data, task) == DEVELOPMENT[service], task


def _environment(container: dict[str, Any], documents: list[dict[str, Any]]) -> dict[str, str]:
    """What a container gets: its ConfigMaps, then each ``env`` entry in order (a secretKeyRef
    read from SECRET_DATA, a value expanded by the kubelet's rule)."""
    defined: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        config_map = next(
            d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name
        )
        defined.update(config_map["data"])
    for entry in container.get("env", []):
        if "valueFrom" in entry:
            reference = entry["valueFrom"]["secretKeyRef"]
            defined[entry["name"]] = SECRET_DATA[(reference["name"], reference["key"])]
        else:
            defined[entry["name"]] = kubelet_expand(entry["value"], defined)
    return defined


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_each_container_and_task_job_gets_exactly_its_values(
    rendered: Path, environment: str
) -> None:
    documents = kustomize(rendered / environment / "kubernetes")
    for document in documents:
        validate_kubernetes(document)
    workloads = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]
        for d in documents
        if d["kind"] in ("Deployment", "Job")
    }
    for service in DEVELOPMENT:
        assert _environment(workloads[service], documents) == _in_cluster(environment, service)
    for task, service in TASKS.items():
        text = (rendered / environment / "kubernetes" / "tasks" / f"{task}.yaml").read_text(
            encoding="utf-8"
        )
        (job,) = [document for document in yaml.safe_load_all(text) if document]
        validate_kubernetes(job)
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert _environment(container, documents) == _in_cluster(environment, service), task


PRODUCTION = "sk_live_51ReviewCanary8Xq2RestrictedMail"


def _not_deployed(production: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The realistic spec with a mail catcher for development only, and ``production`` as the
    production overlay's ``services``."""
    base = _spec()
    base["services"]["mail"] = {
        "image": "axllent/mailpit",
        "version": "v1.20",
        "environments": ["development"],
        "variables": ["DJANGO_SECRET_KEY", "LOG_LEVEL"],
    }
    overlays = _overlays()
    overlays["production"]["services"].update(production)
    return base, overlays


NOT_DEPLOYED: dict[str, tuple[dict[str, Any], str]] = {
    "limited by environments": (
        {"mail": {"values": {"DJANGO_SECRET_KEY": PRODUCTION, "LOG_LEVEL": "LOUD"}}},
        "services.mail.values: service 'mail' is not in environment 'production' "
        "(services.mail.environments), so these values would reach nothing; remove them",
    ),
    "external there": (
        {"postgres": {"external": True, "host": "db", "values": {"DB_PASSWORD": PRODUCTION}}},
        "services.postgres.values: service 'postgres' is external in 'production': nothing is "
        "deployed for it there, so these values would reach nothing; remove them",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", NOT_DEPLOYED)
def test_own_values_for_a_service_not_deployed_are_refused_and_never_cached(
    tmp_path: Path, case: str
) -> None:
    """A production overlay holding a secret's literal where no artifact would take it: it
    must be refused like any other literal, or the parse cache keeps that overlay (it keeps
    non-local overlays, whose literals validation refuses)."""
    patch, message = NOT_DEPLOYED[case]
    (service,) = patch
    base, overlays = _not_deployed(patch)
    overlays["production"] = LARGE + dump(overlays["production"])
    spec = write_spec(tmp_path / "spec", base, overlays)
    environ = dict(os.environ)
    for variable, folder in (("HOME", "home"), ("XDG_CACHE_HOME", "cache"), ("TMPDIR", "tmp")):
        (tmp_path / folder).mkdir()
        environ[variable] = str(tmp_path / folder)
    out = tmp_path / "out"
    production = spec / "environments" / "production.yaml"
    for command in (["validate"], ["render", "--all", "--out", str(out)], ["explain", "LOG_LEVEL"]):
        result = subprocess.run(
            [ENVSPEC, "--debug", command[0], "--spec", str(spec), *command[1:]],
            capture_output=True,
            text=True,
            env=environ,
            check=False,
        )
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        lines = (result.stdout + result.stderr).splitlines()
        assert f"{production}:{_values_line(production, service)}:5: {message}" in lines, lines
        assert "Traceback" not in result.stderr
        assert PRODUCTION not in result.stdout + result.stderr
    assert not out.exists()
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != production:
            assert PRODUCTION.encode() not in path.read_bytes(), path


def _values_line(file: Path, service: str) -> int:
    """The line of ``values:`` under the overlay's ``services.<service>``."""
    lines = file.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"  {service}:")
    return next(n for n, line in enumerate(lines[start:], start + 1) if "values:" in line)


def test_a_service_file_edited_by_hand_is_kept_when_its_values_go(tmp_path: Path) -> None:
    """Only the environment rendered loses its service files, and one edited by hand stays
    until ``--force``."""
    base, overlays = _spec(), _overlays()
    spec = write_spec(tmp_path / "spec", base, overlays)
    out = tmp_path / "out"
    assert run("render", "--all", "--spec", str(spec), "--out", str(out)).exit_code == 0
    shop = {name: out / name / f".env.{name}.shop" for name in ("staging", "production")}
    edited = shop["production"].read_text(encoding="utf-8") + "EXTRA=1\n"
    shop["production"].write_text(edited, encoding="utf-8")
    del base["services"]["shop"]["values"]
    write_spec(tmp_path / "spec", base, overlays)
    at = ["--spec", str(spec), "--out", str(out)]
    result = run("render", "--env", "staging", *at)
    assert result.exit_code == 0, result.output
    assert not shop["staging"].exists()
    assert shop["production"].read_text(encoding="utf-8") == edited, "not its environment"
    result = run("render", "--env", "production", *at)
    assert result.exit_code == 1
    assert f"{shop['production']}: no longer generated, but edited by hand" in result.output
    assert shop["production"].read_text(encoding="utf-8") == edited
    assert run("render", "--env", "production", "--force", *at).exit_code == 0
    assert not shop["production"].exists()
    assert (out / "production" / ".env.production.billing-api").is_file()


@pytest.mark.parametrize("binary", [compose_v2, compose_v1], ids=["v2", "v1"])
def test_compose_reads_an_env_reference_from_the_shell_variable_it_names(
    tmp_path: Path, binary: Any
) -> None:
    """``env://NAME`` is the shell variable NAME (docs/spec.md), a service's own one too; the
    other backends' secrets are read from the variable's name (or ``<SERVICE>__<NAME>``)."""
    base = _spec()
    base["variables"]["STRIPE_KEY"] = {"secret": True}
    base["variables"]["STRIPE_URL"] = {
        "secret": True,
        "default": {"from": "https://$${STRIPE_KEY}:${STRIPE_KEY}@stripe"},
    }
    for service in ("shop", "billing-api"):
        base["services"][service]["variables"] = [*APP, "STRIPE_KEY", "STRIPE_URL"]
    overlays = _overlays()
    overlays["development"]["variables"]["STRIPE_KEY"] = {"secret": "env://STRIPE_TEST_KEY"}
    overlays["development"]["services"]["billing-api"]["values"]["STRIPE_KEY"] = {
        "secret": "env://BILLING_STRIPE_KEY"
    }
    overlays["development"]["services"]["shop"] = {
        "values": {"DB_PASSWORD": {"secret": "vault://a#b"}}
    }
    for remote in ("staging", "production"):
        overlays[remote]["variables"]["STRIPE_KEY"] = {"secret": f"vault://{remote}/stripe#key"}
    spec = write_spec(tmp_path / "spec", base, overlays)
    out = tmp_path / "out"
    result = run("render", "--env", "development", "--spec", str(spec), "--out", str(out))
    assert result.exit_code == 0, result.output
    shell = {
        "STRIPE_TEST_KEY": "sk_test_$hop",
        "BILLING_STRIPE_KEY": "sk_test_bill",
        "SHOP__DB_PASSWORD": "pw",
    }
    data = compose_config(binary(), out / "development", shell)
    shop, billing = (compose_environment(data, name) for name in ("shop", "billing-api"))
    assert (shop["STRIPE_KEY"], shop["STRIPE_URL"]) == (
        "sk_test_$hop",
        "https://${STRIPE_KEY}:sk_test_$hop@stripe",
    )
    assert (billing["STRIPE_KEY"], billing["STRIPE_URL"]) == (
        "sk_test_bill",
        "https://${STRIPE_KEY}:sk_test_bill@stripe",
    )
    assert shop["DB_PASSWORD"] == "pw", "a vault reference is read from <SERVICE>__<NAME>"


def _carried(value: str) -> bool:
    try:
        dotenv_quote(value)
        compose_value(value)
        kubernetes_value(value)
    except CannotCarry:
        return False
    return True


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.lists(VALUE.filter(_carried), min_size=3, max_size=3))
def test_two_services_drawn_values_reach_each_through_every_reader(
    tmp_path_factory: pytest.TempPathFactory, values: list[str]
) -> None:
    """The environment's value and two services' own values of one variable, drawn: each
    service's file, compose entry and ConfigMap carry exactly its own."""
    shared, web, worker = values
    spec = minimal(variables={"V": {"default": shared}})
    spec["environments"]["development"]["targets"] = ["dotenv", "compose"]
    spec["services"]["web"]["values"] = {"V": web}
    for name in ("worker", "api"):
        spec["services"][name] = {"image": f"example/{name}", "version": "1.0.0"}
    overlays = {"production": {"services": {"worker": {"values": {"V": worker}}}}}
    root = tmp_path_factory.mktemp("drawn")
    spec_folder = write_spec(root / "spec", spec, overlays)
    out = root / "out"
    result = run("render", "--all", "--spec", str(spec_folder), "--out", str(out))
    assert result.exit_code == 0, result.output
    file = out / "development" / ".env.development.web"
    expected = {"ENVSPEC_ENVIRONMENT": "development", "V": web}
    assert python_dotenv(file) == expected
    assert posix_shell(file, list(expected)) == expected
    assert python_dotenv(out / "development" / ".env.development")["V"] == shared
    dev = {"web": web, "worker": shared, "api": shared}
    for binary in (compose_v2(), compose_v1()):
        data = compose_config(binary, out / "development")
        assert {name: compose_environment(data, name)["V"] for name in dev} == dev, binary
    documents = kustomize(out / "production" / "kubernetes")
    maps = {d["metadata"]["name"]: d["data"]["V"] for d in documents if d["kind"] == "ConfigMap"}
    assert maps == {"web-config": web, "worker-config": worker, "api-config": shared}


def test_explain_shows_no_own_value_where_the_service_is_external(tmp_path: Path) -> None:
    base = _spec()
    base["services"]["postgres"]["values"] = {"DB_PASSWORD": {"secret": "vault://pg#own"}}
    spec = write_spec(tmp_path / "spec", base, _overlays())
    result = run("explain", "DB_PASSWORD", "--spec", str(spec), "--format", "json")
    assert result.exit_code == 0, result.output
    environments = json.loads(result.output)["environments"]
    assert environments["staging"]["services"]["postgres"]["value"] == "vault://pg#own"
    assert "postgres" not in environments["production"].get("services", {}), "external there"
