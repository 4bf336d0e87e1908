"""Guarantee 2: every value reaches the application exactly, through every real reader, or the
render is refused with a message naming the variable (and never repeating a secret's value)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from envspec.render.filters import CannotCarry, compose_value, dotenv_quote, kubernetes_value
from tests.helpers import minimal, run, write_spec
from tests.readers import (
    compose_config,
    compose_environment,
    compose_v1,
    compose_v2,
    kustomize,
    posix_shell,
    python_dotenv,
)

VALUE = st.text(
    st.characters(
        categories=("L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Co"), exclude_characters="\0"
    ),
    max_size=24,
)
TRICKY = [
    "",
    " ",
    "on",
    "no",
    "0123",
    "1e3",
    "~",
    "null",
    "#x",
    "a #b",
    "'",
    '"',
    "\\",
    "\\n",
    "$",
    "$$",
    "$HOME",
    "a$b",
    "`id`",
    "\n",
    "line1\nline2",
    "\t",
    "\r\n",
    "x\u2028y",
    "\x85",
    "\ufeff",
    "ünïcödé ✓ 😀",
    "- item",
    ": x",
    "{a: b}",
    "[1]",
    "@x",
    "*x",
    "&x",
    "!x",
    "%x",
    "|",
    ">",
]


def _render(tmp_path: Path, values: list[str], targets: list[str]) -> Path:
    variables = {f"V{index}": {"default": value} for index, value in enumerate(values)}
    spec = minimal(variables=variables)
    spec["environments"] = {"development": {"targets": targets, "local": True}}
    root = write_spec(tmp_path / "spec", spec)
    result = run("render", "--all", "--spec", str(root), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    return tmp_path / "out" / "development"


def _carried_by_dotenv(value: str) -> bool:
    try:
        dotenv_quote(value)
    except CannotCarry:
        return False
    return True


def _carried_by_compose(value: str) -> bool:
    try:
        compose_value(value)
        kubernetes_value(value)
    except CannotCarry:
        return False
    return True


def _expected(values: list[str]) -> dict[str, str]:
    """What the application reads: the values, and the environment envspec names."""
    return {"ENVSPEC_ENVIRONMENT": "development"} | {
        f"V{index}": value for index, value in enumerate(values)
    }


def _check_dotenv(folder: Path, values: list[str]) -> None:
    expected = _expected(values)
    path = folder / ".env.development"
    assert python_dotenv(path) == expected
    assert posix_shell(path, list(expected)) == expected
    (folder / "env-file.yaml").write_text(
        "services:\n  probe:\n    image: busybox:1.36\n    env_file: .env.development\n"
    )
    for binary in (compose_v2(), compose_v1()):
        compose_file = folder / "docker-compose.yaml"
        compose_file.write_text((folder / "env-file.yaml").read_text())
        assert compose_environment(compose_config(binary, folder), "probe") == expected, binary


def _check_yaml(folder: Path, values: list[str]) -> None:
    expected = _expected(values)
    for binary in (compose_v2(), compose_v1()):
        data = compose_config(binary, folder)
        assert compose_environment(data, "web") == expected, binary


def _check_kubernetes(folder: Path, values: list[str]) -> None:
    expected = _expected(values)
    text = (folder / "kubernetes" / "services" / "web.yaml").read_text(encoding="utf-8")
    config_map = next(yaml.safe_load_all(text))
    assert config_map["kind"] == "ConfigMap"
    assert config_map["data"] == expected, "YAML 1.1 (PyYAML)"
    first = next(iter(YAML(typ="safe", pure=True).load_all(text)))
    assert dict(first["data"]) == expected, "YAML 1.2 (ruamel)"
    documents = kustomize(folder / "kubernetes")
    config = next(d for d in documents if d["kind"] == "ConfigMap")
    assert config["data"] == expected, "kubectl kustomize"


def test_tricky_values_through_dotenv(tmp_path: Path) -> None:
    values = [value for value in TRICKY if _carried_by_dotenv(value)]
    assert [value for value in TRICKY if value not in values] == ["\\", "\r\n", "\x85"]
    _check_dotenv(_render(tmp_path, values, ["dotenv"]), values)


def test_tricky_values_through_compose_and_kubernetes(tmp_path: Path) -> None:
    values = [value for value in TRICKY if _carried_by_compose(value)]
    folder = _render(tmp_path, values, ["compose", "kubernetes"])
    _check_yaml(folder, values)
    _check_kubernetes(folder, values)


@pytest.mark.parametrize("target", ["dotenv", "compose", "kubernetes"])
def test_next_line_is_refused_by_every_target(tmp_path: Path, target: str) -> None:
    assert [value for value in TRICKY if not _carried_by_compose(value)] == ["\x85"]
    spec = minimal(variables={"NEL": {"default": "a\x85b"}})
    spec["environments"] = {"development": {"targets": [target], "local": True}}
    result = run("render", "--all", "--spec", str(write_spec(tmp_path / "spec", spec)))
    assert result.exit_code == 1
    assert "variables.NEL" in result.output and "U+0085" in result.output


@pytest.mark.slow
@settings(max_examples=8, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.lists(VALUE, min_size=1, max_size=12))
def test_any_value_through_dotenv_or_refused(
    tmp_path_factory: pytest.TempPathFactory, values: list[str]
) -> None:
    tmp_path = tmp_path_factory.mktemp("dotenv")
    carried = [value for value in values if _carried_by_dotenv(value)]
    refused = [value for value in values if not _carried_by_dotenv(value)]
    if carried:
        _check_dotenv(_render(tmp_path, carried, ["dotenv"]), carried)
    for value in refused[:1]:
        spec = minimal(variables={"TRICKY_VALUE": {"default": value, "secret": True}})
        spec["environments"] = {"development": {"targets": ["dotenv"], "local": True}}
        root = write_spec(tmp_path / "refused", spec)
        result = run("render", "--all", "--spec", str(root), "--out", str(tmp_path / "refused-out"))
        assert result.exit_code == 1
        assert "variables.TRICKY_VALUE" in result.output and "cannot carry" in result.output
        try:
            dotenv_quote(value)
        except CannotCarry as refusal:
            rule = str(refusal)  # it may name what cannot be carried, such as '${'
        shown = result.output.replace("TRICKY_VALUE", "").replace(rule, "")
        assert value not in shown or len(value) < 2
        assert not (tmp_path / "refused-out").exists()


@pytest.mark.slow
@settings(max_examples=8, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.lists(VALUE, min_size=1, max_size=12))
def test_any_value_through_compose_and_kubernetes(
    tmp_path_factory: pytest.TempPathFactory, values: list[str]
) -> None:
    values = [value for value in values if _carried_by_compose(value)]
    assume(values)
    folder = _render(tmp_path_factory.mktemp("yaml"), values, ["compose", "kubernetes"])
    _check_yaml(folder, values)
    _check_kubernetes(folder, values)
