"""The cache of parsed large spec files: the same data as a fresh parse, keyed by content, never
trusted when damaged, bounded, private, and off with ENVSPEC_NO_CACHE."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from envspec import cache, loader
from tests.helpers import minimal, run, write_spec


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cache-home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv("ENVSPEC_NO_CACHE", raising=False)
    return home


def _entries(home: Path) -> list[Path]:
    return sorted((home / "envspec").glob("parsed-*/*"))


def _large_spec(root: Path, greeting: str = "hello") -> Path:
    variables: dict[str, Any] = {
        f"SETTING_{index}": {"default": f"value {index}", "description": "x" * 40}
        for index in range(4000)
    }
    variables["GREETING"] = {"default": greeting}
    write_spec(root, minimal(variables=variables), {"production": {"variables": {}}})
    assert (root / "envspec.yaml").stat().st_size >= cache.PARSED_MIN_BYTES
    return root


def _load(root: Path) -> dict[str, Any]:
    """The base's data, its parse cached as after a validation that accepted the spec."""
    raw = loader.load_spec(root)
    raw.keep_parses([None, *raw.overlays])
    return raw.base.data


def _fresh(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    with monkeypatch.context() as patched:
        patched.setenv("ENVSPEC_NO_CACHE", "1")
        return loader.load_spec(root).base.data


def test_a_cached_parse_equals_a_fresh_one(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _large_spec(tmp_path / "spec")
    first = _load(root)
    [entry] = _entries(cache_home)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o700
    second = _load(root)
    assert first == second == _fresh(root, monkeypatch)
    assert _entries(cache_home) == [entry], "read back, not parsed and stored again"


def test_a_changed_file_is_parsed_again(tmp_path: Path, cache_home: Path) -> None:
    root = _large_spec(tmp_path / "spec")
    assert run("validate", "--spec", str(root)).exit_code == 0
    _large_spec(root, greeting="changed")
    assert _load(root)["variables"]["GREETING"]["default"] == "changed"
    assert len(_entries(cache_home)) == 2


def test_a_damaged_entry_is_ignored_and_replaced(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _large_spec(tmp_path / "spec")
    _load(root)
    [entry] = _entries(cache_home)
    entry.write_bytes(b"\x00not marshal data")
    assert _load(root) == _fresh(root, monkeypatch)
    assert entry.read_bytes() != b"\x00not marshal data"


def test_the_loader_stores_only_the_files_it_is_told(tmp_path: Path, cache_home: Path) -> None:
    root = _large_spec(tmp_path / "spec")
    raw = loader.load_spec(root)
    assert _entries(cache_home) == [], "loading alone stores nothing"
    raw.keep_parses(["production", "staging"])
    assert _entries(cache_home) == [], "the overlay is below the size limit, staging has none"
    raw.keep_parses([None])
    [entry] = _entries(cache_home)
    assert cache.read_parsed(entry) == (True, [(raw.base.data, (1, 1))])


def test_small_files_and_broken_files_are_not_cached(tmp_path: Path, cache_home: Path) -> None:
    small = write_spec(tmp_path / "small", minimal())
    assert run("validate", "--spec", str(small)).exit_code == 0
    broken = _large_spec(tmp_path / "broken")
    text = (broken / "envspec.yaml").read_text()
    (broken / "envspec.yaml").write_text(text + "variables: {}\n")
    result = run("validate", "--spec", str(broken))
    assert result.exit_code == 1 and "duplicate key 'variables'" in result.output
    assert _entries(cache_home) == []


def test_no_cache_writes_nothing(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVSPEC_NO_CACHE", "1")
    root = _large_spec(tmp_path / "spec")
    assert run("render", "--all", "--spec", str(root)).exit_code == 0
    assert not (cache_home / "envspec").exists()


def test_the_cache_keeps_only_the_newest_entries(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "PARSED_MIN_BYTES", 1)

    def entry(index: int) -> Path:
        found = cache.parsed_entry(f"key: {index}\n", b"parser")
        assert found is not None
        return found

    for index in range(cache.PARSED_KEEP + 4):
        assert cache.read_parsed(entry(index)) == (False, None)
        cache.store_parsed(entry(index), {"key": str(index)})
    assert len(_entries(cache_home)) == cache.PARSED_KEEP
    assert cache.read_parsed(entry(19)) == (True, {"key": "19"})
    assert cache.read_parsed(entry(0)) == (False, None)
    assert cache.parsed_entry("key: 0\n", b"another parser") != entry(0)


def test_files_that_may_hold_a_secret_literal_are_never_cached(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "PARSED_MIN_BYTES", 1)
    canary = "canary-local-literal-5e1f"
    spec = minimal(variables={"API_TOKEN": {"secret": True}, "GREETING": {"default": "hello"}})
    overlays: dict[str, dict[str, Any]] = {
        "development": {"variables": {"API_TOKEN": canary}},
        "production": {"variables": {"API_TOKEN": {"secret": "vault://app#token"}}},
    }
    assert run("validate", "--spec", str(write_spec(tmp_path / "a", spec, overlays))).exit_code == 0
    assert len(_entries(cache_home)) == 2, "the base and production's overlay, not development's"
    misnamed = {**overlays, "dev": {"variables": {"API_TOKEN": canary}}}
    result = run("validate", "--spec", str(write_spec(tmp_path / "c", spec, misnamed)))
    assert result.exit_code == 1 and "dev" in result.output
    assert len(_entries(cache_home)) == 2, "an overlay of an unknown environment is not kept"
    all_local = minimal(variables={"API_TOKEN": {"secret": "yes", "default": canary}})
    all_local["environments"] = {"development": {"targets": ["dotenv"], "local": "on"}}
    assert run("validate", "--spec", str(write_spec(tmp_path / "b", all_local))).exit_code == 0
    assert len(_entries(cache_home)) == 2, "a base with a secret's literal default is not kept"
    in_service = minimal(variables={"API_TOKEN": {"secret": True}})
    in_service["services"]["web"]["values"] = {"API_TOKEN": canary}
    overridden = {
        "production": {"services": {"web": {"values": overlays["production"]["variables"]}}}
    }
    root = write_spec(tmp_path / "d", in_service, overridden)
    assert run("validate", "--spec", str(root)).exit_code == 0
    assert len(_entries(cache_home)) == 3, (
        "production's overlay, not a base whose service holds one"
    )
    in_service["services"]["web"]["values"] = {"API_TOKEN": {"from": f"{canary}-${{GREETING}}"}}
    in_service["variables"]["GREETING"] = {"default": "hello"}
    root = write_spec(tmp_path / "e", in_service, overridden)
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 0, result.output
    assert len(_entries(cache_home)) == 3, "nor one whose service derives one from a literal"
    assert not any(canary.encode() in entry.read_bytes() for entry in _entries(cache_home))


def _cache_holds(home: Path, text: str) -> list[Path]:
    """Every file under the cache folder whose bytes contain ``text`` (as grep would find it)."""
    return [p for p in home.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_a_refused_secret_literal_never_reaches_the_cache(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "PARSED_MIN_BYTES", 1)
    canary = "canary-production-literal-77c2"
    spec = minimal(variables={"API_TOKEN": {"secret": True}, "GREETING": {"default": "hello"}})
    local: dict[str, Any] = {"variables": {"API_TOKEN": "local-literal"}}
    refused = {"development": local, "production": {"variables": {"API_TOKEN": canary}}}
    root = write_spec(tmp_path / "spec", spec, refused)
    for command in (["validate"], ["render", "--all"], ["render", "--env", "production"]):
        result = run(*command, "--spec", str(root))
        assert result.exit_code == 1 and "is secret: a literal value" in result.output
    assert _cache_holds(cache_home, canary) == []
    assert _entries(cache_home) == [], "nothing of a refused spec is cached"
    reference: dict[str, Any] = {"API_TOKEN": {"secret": "vault://app#token"}}
    accepted = {"development": local, "production": {"variables": reference}}
    assert run("validate", "--spec", str(write_spec(root, spec, accepted))).exit_code == 0
    assert len(_entries(cache_home)) == 2
    for folder in [cache_home / "envspec", *(p for p in cache_home.rglob("*") if p.is_dir())]:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for file in (p for p in cache_home.rglob("*") if p.is_file()):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_a_file_refused_for_any_reason_is_not_cached(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "PARSED_MIN_BYTES", 1)
    spec = minimal(variables={"PORT": {"type": "int", "default": "8000"}})
    root = write_spec(tmp_path / "spec", spec, {"production": {"variables": {"PORT": "many"}}})
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1 and "not valid for type int" in result.output
    assert _entries(cache_home) == []
