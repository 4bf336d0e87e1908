"""``envspec verify`` on live objects no API server would serve: every field compare reads given
another type, JSON nested too deeply. Each is a clear error naming the object and field, never an
internal error, and a Secret's planted value is never shown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envspec import api, verify
from envspec.errors import EnvspecError
from envspec.verify import compare, expected_objects, live_objects
from tests.apiserver import as_list
from tests.helpers import REPO, run
from tests.test_verify import deployed

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("spec")
    shutil.copy(REPO / "envspec.yaml", folder)
    shutil.copytree(REPO / "environments", folder / "environments")
    return folder


@pytest.fixture(scope="module")
def production(spec: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What envspec renders for production, and the objects a cluster serves for it."""
    expected = expected_objects(api.kubernetes_documents(api.check(spec), "production"))
    return expected, deployed(spec, "production")


def _replace(data: st.DataObject, value: Any, replacement: Any) -> Any:
    """``value`` with one field, at any depth, replaced (or the whole value)."""
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(value)))
        return {**value, key: _replace(data, value[key], replacement)}
    if isinstance(value, list) and value and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(value) - 1))
        return [*value[:index], _replace(data, value[index], replacement), *value[index + 1 :]]
    return replacement


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_field_of_another_type_is_a_clear_error_or_drift(
    production: tuple[list[dict[str, Any]], list[dict[str, Any]]], data: Any
) -> None:
    expected, served = production
    live = list(served)
    index = data.draw(st.integers(0, len(live) - 1))
    live[index] = _replace(data, live[index], data.draw(JSON))
    try:
        drift = compare(expected, live_objects(as_list(live), "live.json"))
    except EnvspecError as error:
        assert "live.json" in str(error)
        assert "planted-" not in str(error)
    else:
        assert not any("planted-" in str(d) for d in drift)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"spec": {"template": {"spec": {"containers": "backend"}}}},
            "Deployment/backend: spec.template.spec.containers: expected a list",
        ),
        (
            {"spec": {"template": {"spec": {"containers": [{"name": "backend", "env": [5]}]}}}},
            "Deployment/backend: spec.template.spec.containers[0].env[0]: expected an object",
        ),
        (
            {"metadata": {"name": "backend", "labels": ["app"]}},
            "Deployment/backend: metadata.labels: expected an object",
        ),
    ],
)
def test_a_misshapen_object_is_named_with_its_field(
    spec: Path, tmp_path: Path, item: dict[str, Any], message: str
) -> None:
    live = {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "backend"}, **item}
    source = tmp_path / "live.json"
    source.write_text(json.dumps({"kind": "List", "items": [live]}), encoding="utf-8")
    result = run("verify", "--env", "production", "--from", str(source), "--spec", str(spec))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"envspec: {source}: {message}, as kubectl get -o json prints it\n"


def test_json_nested_too_deeply_is_a_clear_error(spec: Path, tmp_path: Path) -> None:
    source = tmp_path / "live.json"
    source.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    for options in ((), ("--format", "json")):
        result = run(
            "verify", "--env", "production", "--from", str(source), "--spec", str(spec), *options
        )
        assert result.exit_code == 1
        assert "nested too deeply" in result.stderr
        assert "internal error" not in result.output


def test_endless_input_is_bounded(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify, "MAX_LIVE_BYTES", 2**20)
    result = run("verify", "--env", "production", "--from", "/dev/zero", "--spec", str(spec))
    assert result.exit_code == 1
    assert result.stderr == "envspec: /dev/zero: larger than 1 MiB\n"
