"""The one atomic-write helper (init, var, the cache, the writer's journal) and the signals held
while files change."""

from __future__ import annotations

import os
import shutil
import signal
import stat
from pathlib import Path

import pytest

from envspec import atomic
from envspec.atomic import InterruptedAfterWriteError, deferred_signals, write_atomic
from tests.helpers import REPO, run


def test_a_replaced_file_keeps_its_mode_and_nothing_else_is_left(tmp_path: Path) -> None:
    target = tmp_path / "envspec.yaml"
    target.write_text("old\n")
    target.chmod(0o640)
    write_atomic(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["envspec.yaml"]
    write_atomic(tmp_path / "cache-entry", b"x", 0o600, durable=False)
    assert stat.S_IMODE((tmp_path / "cache-entry").stat().st_mode) == 0o600


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "file"
    target.write_text("old\n")

    def refuse(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", refuse)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, b"new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_var_set_goes_through_the_helper_and_keeps_the_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "shop"
    root.mkdir()
    shutil.copy(REPO / "envspec.yaml", root / "envspec.yaml")
    shutil.copytree(REPO / "environments", root / "environments")
    overlay = root / "environments" / "production.yaml"
    overlay.chmod(0o600)
    written: list[Path] = []
    real = atomic.write_atomic

    def recording(
        path: Path, data: bytes, mode: int | None = None, *, durable: bool = True
    ) -> None:
        written.append(path)
        real(path, data, mode, durable=durable)

    monkeypatch.setattr("envspec.edit.write_atomic", recording)
    result = run("var", "set", "LOG_LEVEL", "prod=ERROR", "--spec", str(root))
    assert result.exit_code == 0, result.output
    assert written == [overlay]
    assert "LOG_LEVEL: ERROR" in overlay.read_text()
    assert stat.S_IMODE(overlay.stat().st_mode) == 0o600, "a private overlay stays private"
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_init_goes_through_the_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    real = atomic.write_atomic

    def recording(
        path: Path, data: bytes, mode: int | None = None, *, durable: bool = True
    ) -> None:
        written.append(path.name)
        real(path, data, mode, durable=durable)

    monkeypatch.setattr("envspec.api.write_atomic", recording)
    (tmp_path / "new").mkdir()
    result = run("init", "--spec", str(tmp_path / "new"))
    assert result.exit_code == 0, result.output
    assert "envspec.yaml" in written
    assert sorted(written) == sorted(p.name for p in (tmp_path / "new").rglob("*") if p.is_file())


def test_ctrl_c_inside_the_block_waits_for_its_end() -> None:
    steps = []
    with pytest.raises(InterruptedAfterWriteError, match="written completely"), deferred_signals():
        signal.raise_signal(signal.SIGINT)
        steps.append("after the signal")
    assert steps == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_with_a_handler_reaches_it_after_the_block() -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGHUP, lambda number, _: received.append(number))
    try:
        with deferred_signals():
            signal.raise_signal(signal.SIGHUP)
            assert received == []
        assert received == [signal.SIGHUP]
    finally:
        signal.signal(signal.SIGHUP, previous)
