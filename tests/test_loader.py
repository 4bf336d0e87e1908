"""The loader's one YAML builder: without a source map it builds the same data as with one, or
refuses exactly the files the recording build reports, and what it records points at the text."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from envspec import loader
from envspec.errors import SpecError
from envspec.location import SourceMap, SpecPath
from tests.test_fuzz import BASE, OVERLAY, mutated


def _quick(text: str) -> list[tuple[Any, tuple[int, int]]] | None:
    try:
        return loader._Builder().documents(text)
    except (loader._AbortError, yaml.YAMLError):
        return None


def _recording(text: str) -> tuple[list[tuple[Any, tuple[int, int]]] | None, SourceMap]:
    source = SourceMap("spec.yaml")
    builder = loader._Builder("spec.yaml", source, [])
    try:
        documents = builder.documents(text)
    except (loader._AbortError, yaml.YAMLError):
        return None, source
    return (None if builder.failed else documents), source


def _paths(value: Any, path: SpecPath = ()) -> list[SpecPath]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


@settings(max_examples=150)
@given(st.one_of(mutated(BASE), mutated(OVERLAY)))
def test_recording_changes_only_what_is_recorded(text: str) -> None:
    quick = _quick(text)
    recorded, source = _recording(text)
    assert quick == recorded
    for value, _ in recorded or []:
        if isinstance(value, dict):
            assert all((key,) in source._keys for key in value)
        if "*" not in text:  # what an alias repeats is recorded where its anchor is
            assert all(path in source._values for path in _paths(value))


def test_merge_keys_take_the_quick_path() -> None:
    text = "base: &base {a: '1', b: '2'}\nuse:\n  <<: [*base, {a: x, d: '4'}]\n  b: own\n"
    [(data, _)] = _quick(text) or [({}, (0, 0))]
    assert data["use"] == {"a": "1", "b": "own", "d": "4"}
    recorded, source = _recording(text)
    assert recorded == [(data, (1, 1))]
    assert source.key(("use", "b")).line == 4


@pytest.mark.parametrize("mode", ["quick", "recording"])
def test_nesting_stops_at_the_limit_in_both_modes(mode: str) -> None:
    def nested(inner: str) -> str:
        depth = loader.MAX_DEPTH - 1  # under 'a', itself one level down
        return "a: " + "[" * depth + inner + "]" * depth + "\n"

    build = _quick if mode == "quick" else (lambda text: _recording(text)[0])
    assert build(nested("[]")) is not None, "an empty list at the deepest level"
    assert build(nested("x")) is not None
    assert build(nested("[x]")) is None
    with pytest.raises(SpecError, match=r"spec\.yaml:1:\d+: a(\[0\]){64}: nested deeper than 64"):
        loader.load_yaml_text(nested("[x]"), "spec.yaml")


def test_an_anchored_null_is_an_alias_like_any_other() -> None:
    assert _quick("a: &empty\nb: *empty\n") == [({"a": None, "b": None}, (1, 1))]


def test_aliases_count_the_nodes_they_repeat() -> None:
    one = "[" + ", ".join(["x"] * 99) + "]"
    text = f"a: &a {one}\n" + "".join(
        f"b{index}: *a\n" for index in range(loader.MAX_ALIAS_EXPANSION // 100)
    )
    assert _quick(text) is not None, "each alias repeats 100 nodes: exactly at the limit"
    assert _quick(text + "last: *a\n") is None
    with pytest.raises(SpecError, match="alias bomb"):
        loader.load_yaml_text(text + "last: *a\n", "spec.yaml")
