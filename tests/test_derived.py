"""Derived values (``{from: ...}``): parsing, resolution per environment, positioned errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envspec import api
from envspec.derive import FactPart, SecretPart, Text, VariablePart, parse
from tests.helpers import minimal, run, write_spec

URL = "postgres://${DB_USER}:${DB_PASSWORD}@${services.db.host}:${services.db.port}/${DB_NAME}"


def _spec(**variables: Any) -> dict[str, Any]:
    spec = minimal(
        variables={
            "DB_USER": {"default": "shop"},
            "DB_NAME": {"default": "shop"},
            "DB_PASSWORD": {"secret": True},
            "DATABASE_URL": {"type": "url", "secret": True, "default": {"from": URL}},
            **variables,
        }
    )
    spec["services"]["db"] = {"image": "postgres", "version": "15.5", "ports": [5432, 5433]}
    return spec


def _overlays(**production: Any) -> dict[str, Any]:
    return {
        "development": {"variables": {"DB_PASSWORD": "dev-pass-canary"}},
        "production": {
            "variables": {"DB_PASSWORD": {"secret": "vault://db/production#password"}},
            "services": {"db": {"external": True, "host": "db.example.com"}},
            **production,
        },
    }


def test_parse_reads_references_and_escapes() -> None:
    assert parse("a$$b${X}$c${services.db.host}:${services.db.port}$") == (
        Text("a$b"),
        VariablePart("X"),
        Text("$c"),
        FactPart("db", "host"),
        Text(":"),
        FactPart("db", "port"),
        Text("$"),
    )
    assert parse("") == ()


@given(st.text())
def test_escaped_text_parses_back_to_itself(text: str) -> None:
    tokens = parse(text.replace("$", "$$"))
    assert "".join(token.text for token in tokens if isinstance(token, Text)) == text
    assert all(isinstance(token, Text) for token in tokens)


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("${X", "'${' is not closed by '}'"),
        ("${x}", "'${x}' is neither a variable"),
        ("${services.db.ip}", "a service has no fact 'ip' (expected host or port)"),
        ("${services.Db.host}", "'Db' is not a service name"),
    ],
)
def test_parse_refuses_malformed_references(formula: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse(formula)
    assert message in str(error.value)


def test_derived_values_per_environment(tmp_path: Path) -> None:
    spec = _spec(
        PLAIN={"default": "a${DB_USER}$$b"},
        PORT={"default": {"from": "${services.db.port}"}},
    )
    project = api.load(write_spec(tmp_path, spec, _overlays()))
    development = project.environments["development"].variables
    url = development["DATABASE_URL"]
    assert url.value == "postgres://shop:dev-pass-canary@db:5432/shop"
    assert url.formula == URL and url.composition is None and url.sensitive
    assert development["PLAIN"].value == "a${DB_USER}$$b", "a plain value keeps its '$'"
    assert development["PORT"].value == "5432"
    production = project.environments["production"].variables
    url = production["DATABASE_URL"]
    assert url.value is None and url.reference is None and url.sensitive
    assert url.composition == (
        "postgres://shop:",
        SecretPart("DB_PASSWORD"),
        "@db.example.com:5432/shop",
    )
    assert [part.label for part in url.parts] == [
        "DB_USER",
        "DB_PASSWORD",
        "services.db.host",
        "services.db.port",
        "DB_NAME",
    ]
    assert production["PORT"].value == "5432", "an external service's first port"


def test_external_port_and_overlay_formula(tmp_path: Path) -> None:
    overlays = _overlays()
    overlays["production"]["services"]["db"]["port"] = 6432
    overlays["production"]["variables"]["DB_NAME"] = {"from": "${DB_USER}-prod"}
    overlays["production"]["variables"]["DB_USER"] = "app"
    project = api.load(write_spec(tmp_path, _spec(), overlays))
    production = project.environments["production"].variables
    assert production["DB_NAME"].value == "app-prod"
    assert production["DATABASE_URL"].composition == (
        "postgres://app:",
        SecretPart("DB_PASSWORD"),
        "@db.example.com:6432/app-prod",
    )


def test_derived_from_derived_with_a_secret(tmp_path: Path) -> None:
    spec = _spec(
        CACHE_URL={"secret": True, "default": {"from": "${DATABASE_URL}?cache=$$1"}},
    )
    project = api.load(write_spec(tmp_path, spec, _overlays()))
    cache = project.environments["production"].variables["CACHE_URL"]
    assert cache.composition == (
        "postgres://shop:",
        SecretPart("DB_PASSWORD"),
        "@db.example.com:5432/shop?cache=$1",
    )
    development = project.environments["development"].variables["CACHE_URL"]
    assert development.value == "postgres://shop:dev-pass-canary@db:5432/shop?cache=$1"


def _problems(tmp_path: Path, spec: dict[str, Any], overlays: dict[str, Any]) -> str:
    root = write_spec(tmp_path / "spec", spec, overlays)
    out = tmp_path / "out"
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "canary" not in result.output
    rendered = run("render", "--all", "--spec", str(root), "--out", str(out))
    assert rendered.exit_code == 1 and not out.exists()
    return result.output


@pytest.mark.parametrize(
    ("variables", "production", "expected"),
    [
        (
            {"BAD": {"default": {"from": "${DB_USR}"}}},
            {},
            "envspec.yaml:38:13: variables.BAD.default.from: unknown variable 'DB_USR' "
            "(did you mean 'DB_USER'?)",
        ),
        (
            {"BAD": {"default": {"from": "${services.dbb.host}"}}},
            {},
            "variables.BAD.default.from: unknown service 'dbb' in '${services.dbb.host}' "
            "(did you mean 'db'?)",
        ),
        (
            {"BAD": {"default": {"from": "${services.db.address}"}}},
            {},
            "variables.BAD.default.from: '${services.db.address}': a service has no fact "
            "'address' (expected host or port)",
        ),
        (
            {"A": {"default": {"from": "${B}"}}, "B": {"default": {"from": "x${A}"}}},
            {},
            "derived values form a cycle: A -> B -> A",
        ),
        (
            {"LEAKY": {"default": {"from": "${DB_PASSWORD}"}}},
            {},
            "variables.LEAKY.default.from: 'LEAKY' is built from secret 'DB_PASSWORD': "
            "mark it 'secret: true'",
        ),
        (
            {"OPTIONAL": {"required": False}, "USES": {"default": {"from": "${OPTIONAL}"}}},
            {},
            "'USES' uses 'OPTIONAL', which has no value in environment 'development'",
        ),
        (
            {},
            {"services": {"db": {"external": True}}},
            "variables.DATABASE_URL.default.from: service 'db' is external in 'production': "
            "give its host there (services.db.host in environments/production.yaml)",
        ),
        (
            {"STATIC": {"secret": True, "default": {"from": "${DB_USER}"}}},
            {},
            "'STATIC' is secret, but in 'production', which is not local, it is composed of "
            "literals only",
        ),
        (
            {"BAD_URL": {"type": "url", "default": {"from": "${DB_USER}"}}},
            {},
            'variables.BAD_URL.default.from: value "shop" is not valid for type url',
        ),
    ],
)
def test_positioned_problems(
    tmp_path: Path, variables: dict[str, Any], production: dict[str, Any], expected: str
) -> None:
    overlays = _overlays(**production)
    output = _problems(tmp_path, _spec(**variables), overlays)
    assert expected in output, output


def test_host_of_a_service_that_is_not_external(tmp_path: Path) -> None:
    overlays = _overlays()
    overlays["development"]["services"] = {"db": {"host": "db.example.com"}}
    output = _problems(tmp_path, _spec(), overlays)
    assert (
        "environments/development.yaml:5:11: services.db.host: 'host' is where an external "
        "service is reached, and 'db' is not external in 'development' (it is reached as 'db')"
    ) in output, output


def test_overlay_formula_problems_point_at_the_overlay(tmp_path: Path) -> None:
    overlays = _overlays()
    overlays["production"]["variables"]["DB_NAME"] = {"from": "${NAME"}
    output = _problems(tmp_path, _spec(), overlays)
    assert (
        "environments/production.yaml:5:11: variables.DB_NAME.from: '${' is not closed by '}'"
    ) in output, output


def test_diff_and_parity_compare_derived_values_by_formula(tmp_path: Path) -> None:
    spec = _spec(
        DB_HOST={"parity": "strict", "default": {"from": "${services.db.host}"}},
        LABEL={"default": {"from": "db-${DB_NAME}"}},
    )
    overlays = _overlays()
    overlays["production"]["variables"]["LABEL"] = {"from": "database-${DB_NAME}"}
    root = write_spec(tmp_path, spec, overlays)
    result = run("diff", "development", "production", "--format", "json", "--spec", str(root))
    assert result.exit_code == 0, result.output
    differences = {d["path"]: d for d in json.loads(result.output)["differences"]}
    assert "variables.DATABASE_URL" not in differences, "same formula, other host: parity"
    assert "variables.DB_HOST" not in differences, "a strict derived value: the formula counts"
    assert differences["variables.LABEL"] == {
        "path": "variables.LABEL",
        "left": "from 'db-${DB_NAME}' = 'db-shop'",
        "right": "from 'database-${DB_NAME}' = 'database-shop'",
        "status": "expected",
        "reason": "",
    }
    assert "canary" not in result.output
    matrix = json.loads(run("parity", "--format", "json", "--spec", str(root)).output)
    rows = {row["component"]: row for row in matrix["rows"]}
    assert rows["variables"]["verdict"] == "same"
    assert rows["secrets"]["cells"] == {"development": "literal", "production": "secret"}


def test_explain_shows_the_formula_and_each_part(tmp_path: Path) -> None:
    root = write_spec(tmp_path, _spec(), _overlays())
    result = run("explain", "DATABASE_URL", "--format", "json", "--spec", str(root))
    assert result.exit_code == 0, result.output
    assert "canary" not in result.output
    environments = json.loads(result.output)["environments"]
    production = environments["production"]
    assert production["formula"] == URL
    assert production["value"] == f"from {URL!r}"
    parts = {label: part["value"] for label, part in production["parts"].items()}
    assert parts == {
        "DB_USER": "'shop'",
        "DB_PASSWORD": "vault://db/production#password",
        "services.db.host": "'db.example.com'",
        "services.db.port": "'5432'",
        "DB_NAME": "'shop'",
    }
    assert production["parts"]["services.db.host"]["origin"].endswith(
        "environments/production.yaml:7:11"
    )
    development = environments["development"]["parts"]
    assert development["DB_PASSWORD"]["value"] == "<literal secret>"
    assert development["services.db.host"] == {
        "value": "'db'",
        "origin": "the name of service 'db'",
    }
    text = run("explain", "DATABASE_URL", "--spec", str(root)).output
    assert "canary" not in text
    assert "      services.db.host: 'db.example.com'  [" in text
