"""Guarantee 3: canary secrets never reach a non-local artifact, a message, a diff or an error."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from envspec import secrets
from envspec.models import SecretSource
from envspec.secrets import SecretRef
from tests.helpers import load_module, minimal, run, write_spec
from tests.readers import kustomize, python_dotenv, validate_kubernetes

LOCAL_CANARY = "canary-local-7b1e9d"
PROD_CANARY = "canary-prod-51c0aa"


def _spec(mode: str) -> dict[str, Any]:
    spec = minimal(
        variables={
            "API_TOKEN": {"secret": True, "description": "Token of the payment API."},
            "DB_PASSWORD": {"secret": True},
            "EXISTING": {"secret": True},
            "FROM_SHELL": {"secret": True},
            "LOG_LEVEL": {"default": "INFO"},
        }
    )
    spec["environments"] = {
        "development": {"targets": ["dotenv", "compose", "kubernetes"], "local": True},
        "production": {
            "targets": ["dotenv", "compose", "kubernetes"],
            "secrets": {"mode": mode, "store": "vault-backend"}
            if mode == "external-secrets"
            else {"mode": mode},
        },
    }
    return spec


def _overlays() -> dict[str, dict[str, Any]]:
    return {
        "development": {
            "variables": {
                "API_TOKEN": LOCAL_CANARY,
                "DB_PASSWORD": LOCAL_CANARY + "-db",
                "EXISTING": {"secret": "k8s://shared-credentials#token"},
                "FROM_SHELL": {"secret": "env://FROM_SHELL"},
            }
        },
        "production": {
            "variables": {
                "API_TOKEN": {"secret": "vault://payments/production#token"},
                "DB_PASSWORD": {"secret": "vault://db/production#password"},
                "EXISTING": {"secret": "k8s://shared-credentials#token"},
                "FROM_SHELL": {"secret": "env://FROM_SHELL"},
            }
        },
    }


@pytest.mark.parametrize("mode", ["skeleton", "external-secrets"])
def test_no_literal_outside_local_files(tmp_path: Path, mode: str) -> None:
    root = write_spec(tmp_path / "spec", _spec(mode), _overlays())
    result = run("render", "--all", "--spec", str(root))
    assert result.exit_code == 0, result.output
    assert LOCAL_CANARY not in result.output
    out = root / "build"
    for path in out.rglob("*"):
        if path.is_file() and not path.is_relative_to(out / "development"):
            assert LOCAL_CANARY not in path.read_text(encoding="utf-8"), path
    example = (out / ".env.example").read_text()
    assert "API_TOKEN=\n" in example
    assert "production: vault://payments/production#token" in example
    assert python_dotenv(out / "development" / ".env.development")["API_TOKEN"] == LOCAL_CANARY
    production = out / "production"
    assert "API_TOKEN" not in python_dotenv(production / ".env.production")
    documents = {
        (d["kind"], d["metadata"]["name"]): d for d in kustomize(production / "kubernetes")
    }
    for document in documents.values():
        validate_kubernetes(document)
    container = documents[("Deployment", "web")]["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert refs["EXISTING"] == {"name": "shared-credentials", "key": "token"}
    if mode == "skeleton":
        secret = documents[("Secret", "demo-secrets")]
        assert secret["stringData"] == {"API_TOKEN": "", "DB_PASSWORD": "", "FROM_SHELL": ""}
        assert (
            "vault://payments/production#token"
            in secret["metadata"]["annotations"]["envspec.io/references"]
        )
        assert refs["API_TOKEN"] == {"name": "demo-secrets", "key": "API_TOKEN"}
    else:
        external = documents[("ExternalSecret", "demo-secrets")]
        data = {item["secretKey"]: item["remoteRef"] for item in external["spec"]["data"]}
        assert data == {
            "API_TOKEN": {"key": "payments/production", "property": "token"},
            "DB_PASSWORD": {"key": "db/production", "property": "password"},
        }
        assert external["spec"]["target"]["name"] == "demo-secrets"
        static = documents[("Secret", "demo-secrets-static")]
        assert static["stringData"] == {"FROM_SHELL": ""}
        assert refs["FROM_SHELL"] == {"name": "demo-secrets-static", "key": "FROM_SHELL"}
    compose = (production / "docker-compose.yaml").read_text()
    assert "${API_TOKEN:?" in compose


def test_literal_in_non_local_is_refused_without_echo(tmp_path: Path) -> None:
    overlays = _overlays()
    overlays["production"]["variables"]["API_TOKEN"] = PROD_CANARY
    root = write_spec(tmp_path / "spec", _spec("skeleton"), overlays)
    for command in (["validate"], ["validate", "--format", "json"], ["render", "--all"]):
        result = run(*command, "--spec", str(root))
        assert result.exit_code == 1
        assert "API_TOKEN" in result.output
        assert PROD_CANARY not in result.output
    assert not (root / "build").exists()


def test_invalid_secret_value_is_not_echoed(tmp_path: Path) -> None:
    spec = _spec("skeleton")
    spec["variables"]["API_TOKEN"].update(type="int", rules=[{"min_length": 99}])
    root = write_spec(tmp_path / "spec", spec, _overlays())
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1
    assert "variables.API_TOKEN: value is not valid for type int" in result.output
    assert LOCAL_CANARY not in result.output


def _settings_module(tmp_path: Path) -> ModuleType:
    spec = _spec("skeleton")
    spec["variables"]["API_TOKEN"]["rules"] = [
        {"min_length": 12, "not_contains": "insecure"},
        {"where": "non-local", "not_contains": "dev"},
    ]
    spec["variables"]["WORKERS"] = {"type": "int", "default": "4"}
    spec["variables"]["HOSTS"] = {"type": "list", "separator": ",", "default": ["a", "b"]}
    spec["variables"]["MODE"] = {"type": "enum", "choices": ["fast", "safe"], "default": "safe"}
    root = write_spec(tmp_path / "spec", spec, _overlays())
    assert run("render", "--all", "--spec", str(root), "--target", "settings").exit_code == 0
    return load_module(root / "build" / "settings.py", "generated_settings")


def test_generated_settings_accepts_good_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _settings_module(tmp_path)
    for name, value in {
        "API_TOKEN": "a-good-long-token",
        "DB_PASSWORD": "x",
        "EXISTING": "y",
        "FROM_SHELL": "z",
        "HOSTS": "one.example,two.example",
    }.items():
        monkeypatch.setenv(name, value)
    settings = module.Settings()
    assert settings.API_TOKEN.get_secret_value() == "a-good-long-token"
    assert settings.HOSTS == ["one.example", "two.example"]
    assert settings.WORKERS == 4 and settings.MODE == "safe" and settings.LOG_LEVEL == "INFO"
    assert LOCAL_CANARY not in repr(settings)


def test_generated_settings_fails_fast_without_echo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _settings_module(tmp_path)
    for name in ("API_TOKEN", "DB_PASSWORD", "EXISTING", "FROM_SHELL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError) as missing:
        module.Settings()
    assert "API_TOKEN" in str(missing.value) and "Field required" in str(missing.value)
    monkeypatch.setenv("API_TOKEN", "insecure-" + PROD_CANARY)
    for name in ("DB_PASSWORD", "EXISTING", "FROM_SHELL"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("MODE", "reckless")
    with pytest.raises(ValidationError) as bad:
        module.Settings()
    text = str(bad.value)
    assert "MODE" in text and "reckless" not in text
    monkeypatch.setenv("MODE", "fast")
    with pytest.raises(ValidationError) as rule:
        module.Settings()
    assert "API_TOKEN must not contain 'insecure'" in str(rule.value)
    assert PROD_CANARY not in str(rule.value)
    assert os.environ["API_TOKEN"].endswith(PROD_CANARY)


def test_generated_settings_applies_rules_in_their_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _settings_module(tmp_path)
    for name in ("DB_PASSWORD", "EXISTING", "FROM_SHELL"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("API_TOKEN", "a-long-dev-token-" + PROD_CANARY)
    monkeypatch.setenv("ENVSPEC_ENVIRONMENT", "development")
    assert module.Settings().ENVSPEC_ENVIRONMENT == "development"
    monkeypatch.delenv("ENVSPEC_ENVIRONMENT")
    assert module.Settings().ENVSPEC_ENVIRONMENT is None, "no environment: only `all` rules"
    monkeypatch.setenv("ENVSPEC_ENVIRONMENT", "production")
    with pytest.raises(ValidationError) as scoped:
        module.Settings()
    assert "API_TOKEN must not contain 'dev' in non-local" in str(scoped.value)
    assert PROD_CANARY not in str(scoped.value)
    monkeypatch.setenv("ENVSPEC_ENVIRONMENT", "nowhere")
    with pytest.raises(ValidationError):
        module.Settings()


@pytest.mark.parametrize("mode", ["skeleton", "external-secrets"])
def test_no_command_prints_a_secret(tmp_path: Path, mode: str) -> None:
    root = write_spec(tmp_path / "spec", _spec(mode), _overlays())
    commands = [
        ["validate"],
        ["validate", "--format", "json"],
        ["render", "--all"],
        ["render", "--all", "--check"],
        ["diff", "development", "production"],
        ["diff", "development", "production", "--format", "json"],
        ["diff", "development", "production", "--format", "markdown"],
        ["parity", "--format", "json"],
        ["explain", "API_TOKEN"],
        ["explain", "DB_PASSWORD", "--format", "json"],
    ]
    for command in commands:
        result = run(*command, "--spec", str(root))
        assert result.exit_code == 0, (command, result.output)
        assert LOCAL_CANARY not in result.output, command


def test_a_default_shared_by_environments_is_still_checked_in_each(tmp_path: Path) -> None:
    spec = minimal(
        variables={
            "API_TOKEN": {"secret": True, "default": LOCAL_CANARY},
            "DEBUG": {
                "type": "bool",
                "default": "yes",
                "rules": [{"where": "production", "equals": "false"}],
            },
        }
    )
    result = run("validate", "--spec", str(write_spec(tmp_path / "spec", spec)))
    assert result.exit_code == 1
    assert (
        "variables.API_TOKEN.default: 'API_TOKEN' is secret: a literal value is allowed only in "
        "local environments, and 'production' is not local"
    ) in result.output
    assert "'DEBUG' must equal 'false' in production environments (environment 'production')" in (
        result.output
    )
    assert "environment 'development'" not in result.output
    assert LOCAL_CANARY not in result.output


def test_services_named_like_environment_wide_files_keep_their_own(tmp_path: Path) -> None:
    names = ("secret", "namespace", "kustomization", "externalsecret")
    spec = minimal(
        services={
            name: {"image": f"example/{name}", "version": "1.0.0", "ports": [8000]}
            for name in names
        },
        variables={"API_TOKEN": {"secret": True}, "GREETING": {"default": "hello"}},
    )
    overlays: dict[str, Any] = {
        "development": {"variables": {"API_TOKEN": LOCAL_CANARY}},
        "production": {"variables": {"API_TOKEN": {"secret": "vault://app#token"}}},
    }
    root = write_spec(tmp_path / "spec", spec, overlays)
    result = run("render", "--env", "prod", "--spec", str(root))
    assert result.exit_code == 0, result.output
    folder = root / "build" / "production" / "kubernetes"
    documents = {(d["kind"], d["metadata"]["name"]): d for d in kustomize(folder)}
    for document in documents.values():
        validate_kubernetes(document)
    assert ("Secret", "demo-secrets") in documents
    assert ("Namespace", "demo-production") in documents
    for name in names:
        assert ("Deployment", name) in documents and ("Service", name) in documents
        assert documents[("ConfigMap", f"{name}-config")]["data"]["GREETING"] == "hello"


def test_a_secret_reference_is_read_from_and_written_back_as_its_text() -> None:
    source = SecretSource.model_validate({"secret": "vault://app/db#password"})
    assert source.secret == SecretRef("vault", "app/db", "password")
    assert source.model_dump() == {"secret": "vault://app/db#password"}
    assert source.model_dump_json() == '{"secret":"vault://app/db#password"}'
    assert SecretSource.model_validate(source.model_dump()) == source
    with pytest.raises(ValidationError, match="a secret reference looks like"):
        SecretSource.model_validate({"secret": "app/db"})


PRINTABLE_TEXT = st.text(alphabet='aZ09/._-~$"', max_size=6)
REFERENCE_TEXT = st.one_of(PRINTABLE_TEXT, st.text(alphabet='aZ9/#. \n\té\x7f"$', max_size=6))
REFERENCES = st.one_of(
    st.builds(
        lambda backend, path, key: f"{backend}://{path}{key}",
        st.sampled_from([*secrets.BACKENDS, "Vault", "x"]),
        REFERENCE_TEXT,
        st.one_of(st.just(""), st.just("#"), REFERENCE_TEXT.map(lambda key: "#" + key)),
    ),
    st.text(alphabet="vault:/#a ", max_size=12),
)


@given(text=REFERENCES)
def test_common_references_parse_as_the_full_checks_do(text: str) -> None:
    """The shortcut for the common shape of a reference reads it as every check does, and
    leaves the rest to them."""

    def parsed(text: str) -> object:
        try:
            return SecretRef.parse(text)
        except ValueError as error:
            return str(error)

    quick = parsed(text)
    with mock.patch.object(secrets, "_STORE_REFERENCE", re.compile("(?!)")):
        assert parsed(text) == quick
