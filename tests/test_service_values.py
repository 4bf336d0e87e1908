"""A service's own values (``services.<svc>.values``): two services give one variable different
values, literal, secret and derived, in the base and in overlays, and every target carries each
service's value to that service, read back by the real readers."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values
from hypothesis import given, settings
from hypothesis import strategies as st

from envspec import api
from tests.helpers import load_module, output_files, run, write_spec
from tests.readers import (
    compose_config,
    compose_config_or_error,
    compose_environment,
    compose_v1,
    compose_v2,
    kustomize,
    posix_shell,
    python_dotenv,
    validate_kubernetes,
)
from tests.test_derived_render import container_environment

URL = "postgres://app:${DB_PASSWORD}@${services.postgres.host}:${services.postgres.port}/${DB_NAME}"
LOCAL_SHOP = "dev-pw-shop"
LOCAL_BILLING = "dev-pw-billing"


def _base() -> dict[str, Any]:
    received = ["DATABASE_URL", "DB_NAME", "PORT", "LOG_LEVEL", "DB_PASSWORD", "CACHE_URL"]
    return {
        "version": 1,
        "project": "shop",
        "environments": {
            "development": {"targets": ["dotenv", "compose"], "local": True},
            "staging": {"targets": ["compose", "kubernetes", "dotenv"]},
            "production": {
                "targets": ["kubernetes", "dotenv"],
                "secrets": {"mode": "external-secrets", "store": "vault-backend"},
            },
        },
        "services": {
            "postgres": {
                "image": "postgres",
                "version": "16",
                "ports": [5432],
                "variables": ["DB_PASSWORD"],
            },
            "billing": {
                "image": "ghcr.io/acme/billing",
                "version": "1.0.0",
                "ports": [8001],
                "variables": received,
                "values": {"PORT": "8001", "DB_NAME": "billing"},
            },
            "shop": {
                "image": "ghcr.io/acme/shop",
                "version": "1.0.0",
                "ports": [8000],
                "variables": received,
            },
        },
        "variables": {
            "PORT": {"type": "int", "default": "8000"},
            "LOG_LEVEL": {
                "type": "enum",
                "choices": ["DEBUG", "INFO", "WARNING"],
                "default": "INFO",
            },
            "DB_NAME": {"default": "shop"},
            "DB_PASSWORD": {"secret": True},
            "DATABASE_URL": {"secret": True, "default": {"from": URL}},
            "CACHE_URL": {"type": "url", "default": "redis://cache:6379/0"},
        },
        "tasks": {"migrate": {"service": "billing", "command": ["migrate"]}},
    }


OVERLAYS: dict[str, Any] = {
    "development": {
        "variables": {"DB_PASSWORD": LOCAL_SHOP, "LOG_LEVEL": "DEBUG"},
        "services": {"billing": {"values": {"DB_PASSWORD": LOCAL_BILLING}}},
    },
    "staging": {
        "variables": {"DB_PASSWORD": {"secret": "vault://staging/shop#db"}},
        "services": {
            "billing": {
                "values": {
                    "DB_PASSWORD": {"secret": "vault://staging/billing#db"},
                    "CACHE_URL": {"from": "redis://cache:6379/${DB_NAME}"},
                }
            }
        },
    },
    "production": {
        "variables": {"DB_PASSWORD": {"secret": "vault://prod/shop#db"}},
        "services": {
            "billing": {
                "values": {
                    "DB_PASSWORD": {"secret": "vault://prod/billing#db"},
                    "LOG_LEVEL": "WARNING",
                }
            }
        },
    },
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("values")
    spec = write_spec(root / "spec", _base(), OVERLAYS)
    result = run("render", "--all", "--spec", str(spec), "--out", str(root / "out"))
    assert result.exit_code == 0, result.output
    return root / "out"


def _url(password: str, database: str) -> str:
    return f"postgres://app:{password}@postgres:5432/{database}"


BILLING_DEV = {
    "ENVSPEC_ENVIRONMENT": "development",
    "DATABASE_URL": _url(LOCAL_BILLING, "billing"),
    "DB_NAME": "billing",
    "PORT": "8001",
    "LOG_LEVEL": "DEBUG",
    "DB_PASSWORD": LOCAL_BILLING,
    "CACHE_URL": "redis://cache:6379/0",
}
SHOP_DEV = {
    **BILLING_DEV,
    "DATABASE_URL": _url(LOCAL_SHOP, "shop"),
    "DB_NAME": "shop",
    "PORT": "8000",
    "DB_PASSWORD": LOCAL_SHOP,
}


def test_each_service_file_is_read_by_python_dotenv_and_sh(rendered: Path) -> None:
    folder = rendered / "development"
    billing = folder / ".env.development.billing"
    assert python_dotenv(billing) == BILLING_DEV
    assert posix_shell(billing, list(BILLING_DEV)) == BILLING_DEV
    shared = folder / ".env.development"
    assert python_dotenv(shared) == SHOP_DEV, "the environment-wide file keeps its values"
    assert not (folder / ".env.development.shop").exists(), "shop has no values of its own"
    assert not (folder / ".env.development.postgres").exists()


def test_a_service_file_names_its_own_secret_references(rendered: Path) -> None:
    text = (rendered / "production" / ".env.production.billing").read_text(encoding="utf-8")
    assert "DB_PASSWORD is a secret from vault://prod/billing#db" in text
    assert "DB_PASSWORD from vault://prod/billing#db" in text, "the derived URL's comment"
    assert python_dotenv(rendered / "production" / ".env.production.billing") == {
        "ENVSPEC_ENVIRONMENT": "production",
        "DB_NAME": "billing",
        "PORT": "8001",
        "LOG_LEVEL": "WARNING",
        "CACHE_URL": "redis://cache:6379/0",
    }
    lock = json.loads((rendered / ".envspec-lock.json").read_text(encoding="utf-8"))
    assert "production/.env.production.billing" in json.dumps(lock)


@pytest.mark.parametrize("binary", [compose_v2, compose_v1], ids=["v2", "v1"])
def test_compose_gives_each_service_its_value(rendered: Path, binary: Any) -> None:
    data = compose_config(binary(), rendered / "development")
    assert compose_environment(data, "billing") == BILLING_DEV
    assert compose_environment(data, "shop") == SHOP_DEV
    assert compose_environment(data, "postgres")["DB_PASSWORD"] == LOCAL_SHOP


@pytest.mark.parametrize("binary", [compose_v2, compose_v1], ids=["v2", "v1"])
def test_compose_reads_a_service_s_own_secret_from_its_own_shell_variable(
    rendered: Path, binary: Any
) -> None:
    shell = {"DB_PASSWORD": "shop-$ecret", "BILLING__DB_PASSWORD": "billing-$ecret"}
    data = compose_config(binary(), rendered / "staging", shell)
    billing = compose_environment(data, "billing")
    shop = compose_environment(data, "shop")
    assert billing["DB_PASSWORD"] == "billing-$ecret"
    assert billing["DATABASE_URL"] == _url("billing-$ecret", "billing")
    assert billing["CACHE_URL"] == "redis://cache:6379/billing", "a derived own value"
    assert shop["DB_PASSWORD"] == "shop-$ecret"
    assert shop["DATABASE_URL"] == _url("shop-$ecret", "shop")
    assert shop["CACHE_URL"] == "redis://cache:6379/0"
    task = compose_config(binary(), rendered / "staging", shell, ("tasks",))
    assert compose_environment(task, "migrate") == billing, "a task runs with its service's values"


def test_compose_refuses_to_start_without_the_service_s_own_secret(rendered: Path) -> None:
    _, error = compose_config_or_error(
        compose_v2(), rendered / "staging" / "docker-compose.yaml", {"DB_PASSWORD": "shop-secret"}
    )
    assert "BILLING__DB_PASSWORD is a secret" in error


def _cluster(rendered: Path, environment: str) -> list[dict[str, Any]]:
    documents = kustomize(rendered / environment / "kubernetes")
    for document in documents:
        validate_kubernetes(document)
    return documents


def test_kubernetes_gives_each_container_its_config_map_and_secret_key(rendered: Path) -> None:
    documents = _cluster(rendered, "staging")
    secret = next(d for d in documents if d["kind"] == "Secret")
    assert sorted(secret["stringData"]) == ["BILLING__DB_PASSWORD", "DB_PASSWORD"]
    references = json.loads(secret["metadata"]["annotations"]["envspec.io/references"])
    assert references == {
        "DB_PASSWORD": "vault://staging/shop#db",
        "BILLING__DB_PASSWORD": "vault://staging/billing#db",
    }
    secrets = {
        ("shop-secrets", "DB_PASSWORD"): "shop-pw",
        ("shop-secrets", "BILLING__DB_PASSWORD"): "billing-pw",
    }
    billing = container_environment(documents, "billing", secrets)
    shop = container_environment(documents, "shop", secrets)
    assert billing == {
        "ENVSPEC_ENVIRONMENT": "staging",
        "DATABASE_URL": _url("billing-pw", "billing"),
        "DB_NAME": "billing",
        "PORT": "8001",
        "LOG_LEVEL": "INFO",
        "DB_PASSWORD": "billing-pw",
        "CACHE_URL": "redis://cache:6379/billing",
    }
    assert shop["DATABASE_URL"] == _url("shop-pw", "shop")
    assert shop["PORT"] == "8000"
    assert shop["CACHE_URL"] == "redis://cache:6379/0"


def test_a_service_s_own_secret_is_its_own_external_secret_key(rendered: Path) -> None:
    documents = _cluster(rendered, "production")
    external = next(d for d in documents if d["kind"] == "ExternalSecret")
    data = {entry["secretKey"]: entry["remoteRef"] for entry in external["spec"]["data"]}
    assert data == {
        "DB_PASSWORD": {"key": "prod/shop", "property": "db"},
        "BILLING__DB_PASSWORD": {"key": "prod/billing", "property": "db"},
    }
    secrets = {
        ("shop-secrets", "DB_PASSWORD"): "shop-pw",
        ("shop-secrets", "BILLING__DB_PASSWORD"): "billing-pw",
    }
    billing = container_environment(documents, "billing", secrets)
    assert billing["LOG_LEVEL"] == "WARNING", "the overlay's service value"
    assert billing["DATABASE_URL"] == _url("billing-pw", "billing")
    assert container_environment(documents, "shop", secrets)["LOG_LEVEL"] == "INFO"


def test_a_task_job_runs_with_its_service_s_values(rendered: Path) -> None:
    text = (rendered / "staging" / "kubernetes" / "tasks" / "migrate.yaml").read_text(
        encoding="utf-8"
    )
    job = next(d for d in yaml.safe_load_all(text) if d)
    validate_kubernetes(job)
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    by_name = {entry["name"]: entry for entry in env}
    assert by_name["PORT"]["value"] == "8001"
    assert by_name["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "BILLING__DB_PASSWORD"
    assert by_name["DATABASE_URL"]["value"] == "postgres://app:$(DB_PASSWORD)@postgres:5432/billing"


def test_no_literal_of_a_local_environment_leaves_it(rendered: Path) -> None:
    for path, content in output_files(rendered).items():
        if not path.startswith("development/"):
            assert LOCAL_BILLING.encode() not in content, path
            assert LOCAL_SHOP.encode() not in content, path


def test_per_service_files_go_when_the_values_go(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", _base(), OVERLAYS)
    out = tmp_path / "out"
    assert run("render", "--all", "--spec", str(spec), "--out", str(out)).exit_code == 0
    assert (out / "production" / ".env.production.billing").is_file()
    base = _base()
    del base["services"]["billing"]["values"]
    overlays = json.loads(json.dumps(OVERLAYS))
    for overlay in overlays.values():
        del overlay["services"]
    write_spec(tmp_path / "spec", base, overlays)
    result = run("render", "--all", "--spec", str(spec), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert not list(out.rglob(".env.*.billing"))
    assert (out / "production" / ".env.production").is_file()


def _refused(tmp_path: Path, base: dict[str, Any], overlays: dict[str, Any]) -> list[str]:
    spec = write_spec(tmp_path / "spec", base, overlays)
    out = tmp_path / "out"
    result = run("render", "--all", "--spec", str(spec), "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert not out.exists(), "nothing written"
    return result.output.splitlines()


def _at(file: Path, line_text: str, value: str = "") -> str:
    """``file:line:col`` of the first line holding ``line_text`` (at ``value`` in it, else at
    the start of the key), as envspec names a position."""
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if line_text in line:
            column = line.index(value or line_text.strip()) + 1
            return f"{file}:{number}:{column}"
    raise AssertionError(f"{line_text!r} not in {file}")


def test_an_unknown_variable_in_service_values_is_refused_with_did_you_mean(
    tmp_path: Path,
) -> None:
    base = _base()
    base["services"]["billing"]["values"]["DB_NAEM"] = "billing"
    overlays = json.loads(json.dumps(OVERLAYS))
    overlays["production"]["services"]["billing"]["values"]["LOG_LEVL"] = "INFO"
    lines = _refused(tmp_path, base, overlays)
    spec = tmp_path / "spec"
    assert sorted(lines[:2]) == [
        f"{_at(spec / 'environments' / 'production.yaml', 'LOG_LEVL:')}: "
        "services.billing.values.LOG_LEVL: unknown variable 'LOG_LEVL' (did you mean "
        "'LOG_LEVEL'?)",
        f"{_at(spec / 'envspec.yaml', 'DB_NAEM:')}: services.billing.values.DB_NAEM: unknown "
        "variable 'DB_NAEM' (did you mean 'DB_NAME'?)",
    ], lines


def test_bad_service_values_are_refused_at_their_position(tmp_path: Path) -> None:
    base = _base()
    base["services"]["billing"]["values"] = {"PORT": "eighty", "LOG_LEVEL": "LOUD"}
    base["services"]["shop"]["values"] = {"DB_PASSWORD": "in-the-base"}
    base["services"]["postgres"]["values"] = {"DB_NAME": "pg"}
    lines = _refused(tmp_path, base, OVERLAYS)
    file = tmp_path / "spec" / "envspec.yaml"
    assert (
        f'{_at(file, "PORT: eighty", "eighty")}: services.billing.values.PORT: value "eighty" '
        "is not valid for type int: expected an integer"
    ) in lines, lines
    assert (
        f"{_at(file, 'LOG_LEVEL: LOUD', 'LOUD')}: services.billing.values.LOG_LEVEL: value "
        '"LOUD" is not valid for type enum: expected one of: DEBUG, INFO, WARNING'
    ) in lines, lines
    assert (
        f"{_at(file, 'DB_NAME: pg', 'pg')}: services.postgres.values.DB_NAME: service 'postgres' "
        "does not receive 'DB_NAME' in environment 'development': add it to "
        "services.postgres.variables, or remove this value"
    ) in lines, lines
    secret = [line for line in lines if "services.shop.values.DB_PASSWORD" in line]
    assert all(line.startswith(_at(file, "DB_PASSWORD: in-the-base", "in")) for line in secret)
    assert sorted(
        line.split("a literal value is allowed only in local environments, and ")[1][:12]
        for line in secret
    ) == ["'production'", "'staging' is"], secret
    assert not any("in-the-base" in line for line in lines)


def test_a_secret_literal_in_an_overlay_s_service_value_is_refused(tmp_path: Path) -> None:
    overlays = json.loads(json.dumps(OVERLAYS))
    overlays["production"]["services"]["billing"]["values"]["DB_PASSWORD"] = "sk-prod-literal"
    lines = _refused(tmp_path, _base(), overlays)
    file = tmp_path / "spec" / "environments" / "production.yaml"
    assert lines[0].startswith(
        f"{_at(file, 'DB_PASSWORD: sk-prod', 'sk-prod')}: services.billing.values.DB_PASSWORD: "
        "'DB_PASSWORD' is secret: a literal value is allowed only in local environments"
    ), lines
    assert not any("sk-prod-literal" in line for line in lines)


def test_a_rule_applies_to_a_service_s_own_value(tmp_path: Path) -> None:
    base = _base()
    base["variables"]["DB_NAME"]["rules"] = [{"pattern": "[a-z]+"}]
    base["services"]["billing"]["values"]["DB_NAME"] = "Billing1"
    lines = _refused(tmp_path, base, OVERLAYS)
    file = tmp_path / "spec" / "envspec.yaml"
    assert (
        f"{_at(file, 'DB_NAME: Billing1', 'Billing1')}: services.billing.values.DB_NAME: "
        "'DB_NAME' must match the pattern '[a-z]+' (environment 'development')"
    ) in lines, lines


def test_a_required_variable_may_have_only_services_own_values(tmp_path: Path) -> None:
    base = _base()
    base["variables"]["DB_NAME"] = {}
    base["services"]["shop"]["values"] = {"DB_NAME": "shop"}
    spec = write_spec(tmp_path / "spec", base, OVERLAYS)
    assert run("validate", "--spec", str(spec)).exit_code == 0
    del base["services"]["shop"]["values"]
    lines = _refused(tmp_path, base, OVERLAYS)
    assert any("variables.DB_NAME: no value in environment 'staging'" in line for line in lines)
    assert any(
        "variables.DATABASE_URL.default.from: 'DATABASE_URL' uses 'DB_NAME', which has no value "
        "in environment 'staging'" in line
        for line in lines
    ), lines


LAYERS = ("default", "environment", "service", "service-in-environment")


@settings(max_examples=25, deadline=None)
@given(
    layers=st.lists(
        st.tuples(st.sampled_from(["development", "production"]), st.sets(st.sampled_from(LAYERS))),
        min_size=1,
        max_size=2,
    ),
    texts=st.lists(
        st.text(st.characters(categories=("L", "N")), min_size=1, max_size=8),
        min_size=4,
        max_size=4,
        unique=True,
    ),
)
def test_the_most_specific_value_wins(layers: list[tuple[str, set[str]]], texts: list[str]) -> None:
    """E's services.S.values.V > base services.S.values.V > E's variables.V > the default."""
    given_here = dict(layers)
    value = dict(zip(LAYERS, texts, strict=True))
    base_layers = set.union(*given_here.values())
    base: dict[str, Any] = {
        "version": 1,
        "project": "demo",
        "environments": {
            "development": {"targets": ["dotenv"], "local": True},
            "production": {"targets": ["dotenv"]},
        },
        "services": {
            "web": {"image": "example/web", "version": "1.0.0", "variables": ["V"]},
            "worker": {"image": "example/worker", "version": "1.0.0", "variables": ["V"]},
        },
        "variables": {"V": {"required": False}},
    }
    if "default" in base_layers:
        base["variables"]["V"]["default"] = value["default"]
    if "service" in base_layers:
        base["services"]["web"]["values"] = {"V": value["service"]}
    overlays: dict[str, Any] = {}
    for environment, chosen in given_here.items():
        overlay: dict[str, Any] = {}
        if "environment" in chosen:
            overlay["variables"] = {"V": value["environment"]}
        if "service-in-environment" in chosen:
            overlay["services"] = {"web": {"values": {"V": value["service-in-environment"]}}}
        overlays[environment] = overlay
    with tempfile.TemporaryDirectory() as folder:
        project = api.load(write_spec(Path(folder), base, overlays))
        files = {
            file.path: dotenv_values(stream=io.StringIO(file.content))
            for file in api.render_files(project, list(project.environments), ["dotenv"])
        }
    for environment in ("development", "production"):
        here = given_here.get(environment, set())
        web_order = ("service-in-environment", "service", "environment", "default")
        shared_order = ("environment", "default")
        services = {s.name: s for s in project.environments[environment].services}
        for service, order in (("web", web_order), ("worker", shared_order)):
            present = [
                layer
                for layer in order
                if layer
                in (here if layer in ("environment", "service-in-environment") else base_layers)
            ]
            resolved = services[service]
            own_file = files.get(f"{environment}/.env.{environment}.{service}")
            shared = files[f"{environment}/.env.{environment}"]
            if present:
                assert resolved.value("V").value == value[present[0]], (service, environment)
            else:
                assert "V" not in resolved.variables
            if service == "worker" or not (present and present[0].startswith("service")):
                assert own_file is None
                assert shared.get("V") == (value[present[0]] if present else None)
            else:
                assert own_file is not None, "a service with its own value has its own file"
                assert own_file["V"] == value[present[0]], (service, environment)


def _strict_spec(tmp_path: Path, declared: bool) -> Path:
    base = _base()
    base["variables"]["API_VERSION"] = {"parity": "strict", "default": "v1"}
    base["services"]["billing"]["variables"].append("API_VERSION")
    overlays = json.loads(json.dumps(OVERLAYS))
    overlays["production"]["services"]["billing"]["values"]["API_VERSION"] = "v2"
    if declared:
        overlays["production"]["differences"] = [
            {"path": "services.billing.values.API_VERSION", "reason": "billing moves first"}
        ]
    return write_spec(tmp_path / "spec", base, overlays)


def test_diff_shows_each_service_s_own_values(tmp_path: Path) -> None:
    spec = _strict_spec(tmp_path, declared=False)
    result = run("diff", "staging", "production", "--spec", str(spec), "--format", "json")
    assert result.exit_code == 1, result.output
    rows = {row["path"]: row for row in json.loads(result.output)["differences"]}
    assert rows["services.billing.values.API_VERSION"] == {
        "path": "services.billing.values.API_VERSION",
        "left": "'v1'",
        "right": "'v2'",
        "status": "undeclared",
        "reason": "",
    }
    assert rows["services.billing.values.LOG_LEVEL"]["status"] == "expected"
    assert rows["services.billing.values.LOG_LEVEL"]["right"] == "'WARNING'"
    assert rows["services.billing.values.DB_PASSWORD"]["left"] == "vault://staging/billing#db"
    assert rows["services.billing.values.CACHE_URL.source"] == {
        "path": "services.billing.values.CACHE_URL.source",
        "left": "derived",
        "right": "literal",
        "status": "expected",
        "reason": "",
    }
    assert "variables.API_VERSION" not in rows, "every other service reads v1 in both"
    assert "services.shop.values.LOG_LEVEL" not in rows


def test_validate_refuses_an_undeclared_strict_service_value_at_its_position(
    tmp_path: Path,
) -> None:
    spec = _strict_spec(tmp_path, declared=False)
    result = run("validate", "--spec", str(spec))
    assert result.exit_code == 1
    file = spec / "environments" / "production.yaml"
    assert (
        f"{_at(file, 'API_VERSION: v2', 'v2')}: services.billing.values.API_VERSION: 'development' "
        "has 'v1' and 'production' has 'v2', and no overlay declares it"
    ) in result.output, result.output


def test_parity_counts_strict_service_values_in_the_variables_row(tmp_path: Path) -> None:
    rows = {}
    for declared in (False, True):
        spec = _strict_spec(tmp_path / str(declared), declared)
        result = run("parity", "--spec", str(spec), "--format", "json")
        assert result.exit_code == 0, result.output
        rows[declared] = {row["component"]: row for row in json.loads(result.output)["rows"]}
    assert rows[False]["variables"]["verdict"] == "undeclared"
    assert rows[False]["variables"]["score"] == 0
    assert rows[False]["services.billing"]["score"] == 100
    assert rows[True]["variables"]["verdict"] == "declared"
    assert rows[True]["variables"]["score"] == 50
    assert rows[True]["variables"]["reason"] == "billing moves first"
    assert run("validate", "--spec", str(tmp_path / "True" / "spec")).exit_code == 0


def test_explain_shows_each_service_s_own_value_and_where_it_was_written(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", _base(), OVERLAYS)
    result = run("explain", "LOG_LEVEL", "--spec", str(spec), "--format", "json")
    assert result.exit_code == 0, result.output
    environments = json.loads(result.output)["environments"]
    production = spec / "environments" / "production.yaml"
    assert environments["production"]["services"] == {
        "billing": {"value": "'WARNING'", "origin": _at(production, "WARNING", "WARNING")}
    }
    assert "services" not in environments["staging"]
    text = run("explain", "DATABASE_URL", "--spec", str(spec)).output
    assert "      service billing: from 'postgres://app:${DB_PASSWORD}@" in text
    development = _at(spec / "environments" / "development.yaml", LOCAL_BILLING, LOCAL_BILLING)
    assert f"        DB_PASSWORD: <literal secret>  [{development}]" in text
    base = _at(spec / "envspec.yaml", "DB_NAME: billing", "billing")
    assert f"        DB_NAME: 'billing'  [{base}]" in text
    assert LOCAL_BILLING not in text
    assert LOCAL_SHOP not in text


def test_each_service_s_settings_class_defaults_to_its_own_value(
    rendered: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load_module(rendered / "settings.py", "service_values_settings")
    for name in ("DB_PASSWORD", "DATABASE_URL", "PORT", "DB_NAME", "LOG_LEVEL", "CACHE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENVSPEC_ENVIRONMENT", "development")
    monkeypatch.setenv("DB_PASSWORD", "pw")
    monkeypatch.setenv("DATABASE_URL", "postgres://x")
    assert (module.BillingSettings().PORT, module.BillingSettings().DB_NAME) == (8001, "billing")
    assert (module.ShopSettings().PORT, module.ShopSettings().DB_NAME) == (8000, "shop")
    monkeypatch.delenv("DB_PASSWORD")
    monkeypatch.delenv("DATABASE_URL")
    folder = rendered / "development"
    billing = module.BillingSettings(_env_file=folder / ".env.development.billing")
    assert billing.DB_PASSWORD.get_secret_value() == LOCAL_BILLING
    assert billing.DATABASE_URL.get_secret_value() == _url(LOCAL_BILLING, "billing")
    shop = module.ShopSettings(_env_file=folder / ".env.development")
    assert shop.DATABASE_URL.get_secret_value() == _url(LOCAL_SHOP, "shop")


def test_env_example_names_the_services_with_their_own_values(rendered: Path) -> None:
    text = (rendered / ".env.example").read_text(encoding="utf-8")
    entry = text.split("# LOG_LEVEL ", 1)[1].split("\n\n", 1)[0]
    assert "# service billing has its own value in production\n" in entry
    assert "LOG_LEVEL='INFO'" in entry, "the environment-wide value"
    port = text.split("# PORT ", 1)[1].split("\n\n", 1)[0]
    assert "# service billing has its own value in development, staging, production\n" in port
    cache = text.split("# CACHE_URL ", 1)[1].split("\n\n", 1)[0]
    assert "# service billing has its own value in staging\n" in cache, "a derived own value"


def test_a_service_s_own_secret_may_not_take_a_variable_s_name(tmp_path: Path) -> None:
    base = _base()
    base["variables"]["BILLING__DB_PASSWORD"] = {"required": False}
    lines = _refused(tmp_path, base, OVERLAYS)
    file = tmp_path / "spec" / "environments" / "production.yaml"
    assert (
        f"{_at(file, 'secret: vault://prod/billing', 'secret')}: "
        "services.billing.values.DB_PASSWORD: service 'billing' has its own secret "
        "'DB_PASSWORD', named 'BILLING__DB_PASSWORD' in compose and Kubernetes, which is also "
        "the name of a variable; rename one"
    ) in lines, lines


def test_var_set_and_rm_edit_a_service_s_own_value_in_place(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", _base(), OVERLAYS)
    staging = spec / "environments" / "staging.yaml"
    production = spec / "environments" / "production.yaml"
    before = production.read_text(encoding="utf-8")
    result = run(
        "var", "set", "LOG_LEVEL", "--spec", str(spec), "--service", "shop", "stag=WARNING",
        "production=DEBUG",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert staging.read_text(encoding="utf-8").endswith(
        "  shop:\n    values:\n      LOG_LEVEL: WARNING\n"
    )
    assert production.read_text(encoding="utf-8") == before.replace(
        "      LOG_LEVEL: WARNING\n",
        "      LOG_LEVEL: WARNING\n  shop:\n    values:\n      LOG_LEVEL: DEBUG\n",
    )
    out = tmp_path / "out"
    assert run("render", "--all", "--spec", str(spec), "--out", str(out)).exit_code == 0
    assert python_dotenv(out / "staging" / ".env.staging.shop")["LOG_LEVEL"] == "WARNING"
    refused = run("var", "set", "LOG_LEVEL", "--spec", str(spec), "--service", "shop", "prod=LOUD")
    assert refused.exit_code == 1
    assert (
        'services.shop.values.LOG_LEVEL: value "LOUD" is not valid for type enum' in refused.output
    )
    unknown = run("var", "set", "LOG_LEVEL", "--spec", str(spec), "--service", "shp", "prod=INFO")
    assert (
        unknown.exit_code == 1 and "unknown service 'shp' (did you mean 'shop'?)" in unknown.output
    )
    assert run("var", "rm", "LOG_LEVEL", "--spec", str(spec), "--service", "shop").exit_code == 0
    assert production.read_text(encoding="utf-8") == before
    assert "  shop:" not in staging.read_text(encoding="utf-8")
    again = run("var", "rm", "LOG_LEVEL", "--spec", str(spec), "--service", "shop")
    assert again.exit_code == 1
    assert "service 'shop' has no value of its own for 'LOG_LEVEL'" in again.output
    assert run("render", "--all", "--spec", str(spec), "--out", str(out)).exit_code == 0
    assert not (out / "staging" / ".env.staging.shop").exists()


def test_a_local_cluster_s_fake_store_holds_a_service_s_own_literal(tmp_path: Path) -> None:
    base = _base()
    base["environments"]["development"] = {
        "targets": ["kubernetes"],
        "local": True,
        "secrets": {"mode": "external-secrets", "provider": "fake", "store": "local-secrets"},
    }
    del base["tasks"]
    spec = write_spec(tmp_path / "spec", base, OVERLAYS)
    out = tmp_path / "out"
    result = run("render", "--env", "development", "--spec", str(spec), "--out", str(out))
    assert result.exit_code == 0, result.output
    documents = _cluster(out, "development")
    store = next(d for d in documents if d["kind"] == "SecretStore")
    held = {entry["key"]: entry["value"] for entry in store["spec"]["provider"]["fake"]["data"]}
    assert held == {
        "DB_PASSWORD": LOCAL_SHOP,
        "DATABASE_URL": _url(LOCAL_SHOP, "shop"),
        "BILLING__DB_PASSWORD": LOCAL_BILLING,
        "BILLING__DATABASE_URL": _url(LOCAL_BILLING, "billing"),
    }, "a secret composed of literals is a literal here; billing's, composed again, its own"
    external = next(d for d in documents if d["kind"] == "ExternalSecret")
    keys = {entry["secretKey"]: entry["remoteRef"]["key"] for entry in external["spec"]["data"]}
    assert keys == {key: key for key in held}
    secrets = {("shop-secrets", key): value for key, value in held.items()}
    assert container_environment(documents, "billing", secrets) == BILLING_DEV
    assert container_environment(documents, "shop", secrets) == SHOP_DEV


def test_a_service_s_own_value_a_target_cannot_carry_is_refused_at_its_position(
    tmp_path: Path,
) -> None:
    base = _base()
    base["services"]["billing"]["values"]["DB_NAME"] = "bill${ing}"
    lines = _refused(tmp_path, base, OVERLAYS)
    file = tmp_path / "spec" / "envspec.yaml"
    assert (
        f"{_at(file, 'DB_NAME: bill', 'bill')}: services.billing.values.DB_NAME: "
        ".env.development.billing of 'development' cannot carry this value exactly: '${' is "
        "expanded by python-dotenv and Compose v1 in every quoting style"
    ) in lines, lines


def test_validate_warns_about_a_service_s_placeholder_reference(tmp_path: Path) -> None:
    overlays = json.loads(json.dumps(OVERLAYS))
    placeholder = "vault://TODO/shop/production/billing#DB_PASSWORD"
    overlays["production"]["services"]["billing"]["values"]["DB_PASSWORD"] = {"secret": placeholder}
    spec = write_spec(tmp_path / "spec", _base(), overlays)
    result = run("validate", "--spec", str(spec))
    assert result.exit_code == 0, result.output
    file = spec / "environments" / "production.yaml"
    assert (
        f"{_at(file, 'secret: vault://TODO', 'secret')}: services.billing.values.DB_PASSWORD: "
        f"warning: '{placeholder}' is a placeholder: replace it with where production keeps the "
        "secret"
    ) in result.output, result.output


def test_var_set_and_rm_keep_a_one_line_flow_mapping_one_line(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", _base(), OVERLAYS)
    staging = spec / "environments" / "staging.yaml"
    original = staging.read_text(encoding="utf-8") + "  shop: {replicas: 2}  # two\n"
    staging.write_text(original, encoding="utf-8")
    command = ("var", "set", "LOG_LEVEL", "--spec", str(spec), "--service", "shop")
    assert run(*command, "staging=WARNING").exit_code == 0
    edited = staging.read_text(encoding="utf-8")
    assert edited.endswith("  shop: {replicas: 2, values: {LOG_LEVEL: WARNING}}  # two\n")
    assert run(*command, "staging=DEBUG").exit_code == 0
    assert staging.read_text(encoding="utf-8") == edited.replace("WARNING", "DEBUG")
    out = tmp_path / "out"
    assert run("render", "--env", "staging", "--spec", str(spec), "--out", str(out)).exit_code == 0
    assert python_dotenv(out / "staging" / ".env.staging.shop")["LOG_LEVEL"] == "DEBUG"
    result = run("var", "rm", "LOG_LEVEL", "--spec", str(spec), "--service", "shop")
    assert result.exit_code == 0, result.output
    assert staging.read_text(encoding="utf-8") == original
