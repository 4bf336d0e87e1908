"""The editor schema (schema/envspec.schema.json) read as an editor reads a spec: YAML 1.2 types
its scalars, and the schema accepts every spec that ``validate`` accepts and refuses its shape
errors."""

from __future__ import annotations

import datetime
import json
import os
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from tests.helpers import REPO, run
from tests.test_spec_properties import _spec, variable_cases

SHAPE_ERRORS = (
    "empty-file",
    "list-not-mapping",
    "unknown-field",
    "unknown-target",
    "bad-service-name",
    "bad-variable-name",
)
"""Cases of the invalid corpus whose problem is the shape of a file, which a schema can see."""


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads((REPO / "schema" / "envspec.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _as_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def editor_errors(text: str) -> list[str]:
    """What an editor with the schema marks in ``text``, read as YAML 1.2 (as editors read it)."""
    data = _as_json(YAML(typ="safe", pure=True).load(text))
    return [error.message for error in _validator().iter_errors(data)]


def _spec_files(root: Path) -> list[Path]:
    return [root / "envspec.yaml", *sorted((root / "environments").glob("*.yaml"))]


def test_the_bundled_example_is_valid_in_an_editor() -> None:
    for path in _spec_files(REPO):
        assert editor_errors(path.read_text(encoding="utf-8")) == [], path


@pytest.mark.parametrize("project", sorted((REPO / "tests" / "cases" / "compose").iterdir()))
def test_imported_specs_are_valid_in_an_editor(project: Path, tmp_path: Path) -> None:
    source = tmp_path / "project"
    shutil.copytree(project, source)
    env_files = [f"--env-file={path}" for path in sorted(source.glob(".env*"))]
    spec = tmp_path / "spec"
    compose = next(source.glob("*compose*.y*ml"))
    result = run("init", "--from-compose", str(compose), *env_files, "--spec", str(spec))
    assert result.exit_code == 0, result.output
    assert run("validate", "--spec", str(spec)).exit_code == 0
    for path in _spec_files(spec):
        assert editor_errors(path.read_text(encoding="utf-8")) == [], path


@pytest.mark.parametrize("case", SHAPE_ERRORS)
def test_shape_errors_are_marked_in_an_editor(case: str) -> None:
    text = (REPO / "tests" / "cases" / "invalid" / f"{case}.yaml").read_text(encoding="utf-8")
    assert editor_errors(text), f"the schema accepts {case}"


SPELLINGS: dict[str, tuple[str, ...]] = {
    "local": ("true", "false", "yes", "'on'", "Off", "NO", "1", "maybe", "[true]"),
    "targets": ("[dotenv]", "[dotenv, compose]", "[]", "dotenv", "[podman]"),
    "version": ("'2.14.0'", "1.10", "15", "true", "1e3", "[1]", "{tag: 1}"),
    "replicas": ("3", "'3'", "0", "-1", "three", "{min: 2, max: 4}", "{min: 2}", "[3]"),
    "ports": ("[8000]", "['8000']", "[{port: 8000, name: http}]", "[{port: 8000, nme: x}]", "8000"),
    "volumes": ("{data: /var/lib/data}", "{data: {path: /data, size: 2Gi}}", "{data: relative}"),
    "interval": ("10", "'10'", "ten", "0", "[10]"),
    "default": ("plain", "false", "1.10", "''", "[a, b]", "{secret: 'vault://app#k'}", "{a: 1}"),
    "description": ("text", "yes", "3", "[text]"),
}
"""Ways users write each field, valid and invalid, as YAML text."""


def _spelled_spec(spelling: dict[str, str]) -> str:
    return f"""version: 1
project: demo
environments:
  dev: {{local: {spelling["local"]}, targets: {spelling["targets"]}}}
services:
  web:
    image: example/web
    version: {spelling["version"]}
    replicas: {spelling["replicas"]}
    ports: {spelling["ports"]}
    volumes: {spelling["volumes"]}
    healthcheck: {{command: ["true"], interval: {spelling["interval"]}}}
    description: {spelling["description"]}
variables:
  NOTE: {{default: {spelling["default"]}}}
"""


def _agree(root: Path, spelling: dict[str, str]) -> None:
    text = _spelled_spec(spelling)
    (root / "envspec.yaml").write_text(text, encoding="utf-8")
    validated = run("validate", "--spec", str(root))
    assert validated.exit_code in (0, 1), validated.output
    marked = editor_errors(text)
    assert (validated.exit_code == 0) == (not marked), (validated.output, marked)


@pytest.mark.parametrize(
    ("field", "way"), [(field, way) for field, ways in SPELLINGS.items() for way in ways]
)
def test_schema_and_validate_agree_on_each_spelling(tmp_path: Path, field: str, way: str) -> None:
    """Each spelling of one field, every other field written its first (valid) way."""
    _agree(tmp_path, {**{name: ways[0] for name, ways in SPELLINGS.items()}, field: way})


@settings(max_examples=int(os.environ.get("EDITOR_SCHEMA_EXAMPLES", "80")), deadline=None)
@given(st.fixed_dictionaries({field: st.sampled_from(ways) for field, ways in SPELLINGS.items()}))
def test_schema_and_validate_agree_on_how_fields_are_written(
    tmp_path_factory: pytest.TempPathFactory, spelling: dict[str, str]
) -> None:
    _agree(tmp_path_factory.mktemp("spec"), spelling)


@settings(max_examples=40, deadline=None)
@given(st.lists(variable_cases(), min_size=1, max_size=5))
def test_generated_specs_are_valid_in_an_editor(cases: list[Any]) -> None:
    base, overlays = _spec(cases)
    assert editor_errors(json.dumps(base)) == []
    for name, overlay in overlays.items():
        unset = None in overlay["variables"].values()
        assert bool(editor_errors(json.dumps(overlay))) == unset, name
