"""Guarantee 4: nothing lost. Transactions, the lock file, hand edits, scope of removal."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from envspec import api, atomic, writer
from envspec.errors import OutputError
from envspec.writer import OutputFile, Scope, plan, write
from tests.helpers import minimal, output_files, run, staged_leftovers, write_spec


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "spec", minimal())


def _render(spec: Path, *extra: str) -> tuple[int, str]:
    result = run("render", "--spec", str(spec), *extra)
    return result.exit_code, result.output


def test_failure_while_staging_leaves_output_as_before(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _render(spec, "--all")[0] == 0
    out = spec / "build"
    before = output_files(out)
    (spec / "envspec.yaml").write_text(
        (spec / "envspec.yaml").read_text().replace("hello", "changed")
    )
    real_create = atomic.create_new
    calls = {"count": 0}

    def failing_create(folder: int, name: str, data: bytes, mode: int, *, durable: bool) -> None:
        calls["count"] += 1
        real_create(folder, name, data[: len(data) // 2], mode, durable=durable)
        if calls["count"] == 2:
            raise OSError(28, "No space left on device", name)

    monkeypatch.setattr(writer, "create_new", failing_create)
    code, output = _render(spec, "--all")
    assert code == 1
    assert "No space left on device" in output and "nothing was changed" in output
    assert output_files(out) == before
    assert not staged_leftovers(out)


def test_failure_while_renaming_rolls_back(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _render(spec, "--all")[0] == 0
    out = spec / "build"
    before = output_files(out)
    (spec / "envspec.yaml").write_text(
        (spec / "envspec.yaml").read_text().replace("hello", "changed")
    )
    real_rename = os.rename
    calls = {"count": 0}

    def failing_rename(source: str, target: str, **folders: int) -> None:
        calls["count"] += 1
        if calls["count"] == 3:  # the journal's, one file's, then this one
            raise OSError(5, "Input/output error", target)
        real_rename(source, target, **folders)

    monkeypatch.setattr(os, "rename", failing_rename)
    code, output = _render(spec, "--all")
    assert code == 1
    assert "Input/output error; nothing was changed" in output
    assert output_files(out) == before
    assert not staged_leftovers(out)


def test_hand_edited_file_is_protected_until_force(spec: Path) -> None:
    assert _render(spec, "--all")[0] == 0
    env_file = spec / "build" / "development" / ".env.development"
    env_file.write_text(env_file.read_text() + "MINE=1\n")
    (spec / "envspec.yaml").write_text(
        (spec / "envspec.yaml").read_text().replace("hello", "changed")
    )
    before = output_files(spec / "build")
    code, output = _render(spec, "--all")
    assert code == 1
    assert ".env.development: edited by hand" in output
    assert output_files(spec / "build") == before, "nothing is written when one file is protected"
    code, output = _render(spec, "--all", "--force")
    assert code == 0
    assert "GREETING='changed'" in env_file.read_text()
    assert "MINE" not in env_file.read_text()


def test_file_not_written_by_envspec_is_not_overwritten(spec: Path) -> None:
    target = spec / "build" / "development" / ".env.development"
    target.parent.mkdir(parents=True)
    target.write_text("SOMEONE_ELSES=1\n")
    code, output = _render(spec, "--all")
    assert code == 1
    assert "was not written by envspec" in output
    assert target.read_text() == "SOMEONE_ELSES=1\n"


def test_stale_files_removed_only_within_scope(spec: Path) -> None:
    assert _render(spec, "--all")[0] == 0
    out = spec / "build"
    assert (out / "development" / "docker-compose.yaml").exists()
    changed = minimal()
    changed["environments"]["development"]["targets"] = ["dotenv"]
    write_spec(spec, changed)
    code, output = _render(spec, "--env", "prod")
    assert code == 0, output
    assert (out / "development" / "docker-compose.yaml").exists(), "prod's render never touches dev"
    code, output = _render(spec, "--env", "dev")
    assert code == 0
    assert "1 removed" in output
    assert not (out / "development" / "docker-compose.yaml").exists()
    lock = json.loads((out / writer.LOCK_FILE).read_text())["files"]
    assert "development/docker-compose.yaml" not in lock
    assert lock["development/.env.development"]["target"] == "dotenv"


def test_check_reports_drift_and_writes_nothing(spec: Path) -> None:
    code, output = _render(spec, "--all", "--check")
    assert code == 1 and "would write" in output
    assert not (spec / "build").exists()
    assert _render(spec, "--all")[0] == 0
    assert _render(spec, "--all", "--check")[0] == 0
    (spec / "envspec.yaml").write_text(
        (spec / "envspec.yaml").read_text().replace("hello", "changed")
    )
    before = output_files(spec / "build")
    code, output = _render(spec, "--all", "--check")
    assert code == 1
    assert ".env.development" in output
    assert output_files(spec / "build") == before


@pytest.mark.parametrize(
    "path", ["../escape", "/etc/passwd", "a/../../b", "", "a//b", "a/./b", "folder/"]
)
def test_paths_outside_out_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(OutputError, match="leave the output folder"):
        plan(tmp_path, [OutputFile(path, "x", None, "t")], Scope(frozenset(), None), False)


def test_a_second_writer_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "MUTEX_WAIT_SECONDS", 0.2)
    files = [OutputFile("a.txt", "x", None, "t")]
    holder = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(OutputError, match="another envspec is writing"):
            write(tmp_path, [files], Scope(frozenset(), None), False)
    finally:
        os.close(holder)
    assert not (tmp_path / "a.txt").exists()
    write(tmp_path, [files], Scope(frozenset(), None), False)
    assert (tmp_path / "a.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".envspec-lock.json", "a.txt"]


def test_unchanged_render_skips_loading(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _render(spec, "--all")[0] == 0
    real_check = api.check

    def refuse(root: Path | None = None) -> api.Checked:
        raise AssertionError("the spec was loaded although nothing changed")

    monkeypatch.setattr(api, "check", refuse)
    code, output = _render(spec, "--all", "--check")
    assert code == 0 and "7 files up to date" in output
    code, output = _render(spec, "--all")
    assert code == 0 and "0 written, 7 unchanged" in output

    env_file = spec / "build" / "development" / ".env.development"
    env_file.write_text(env_file.read_text() + "# mine\n")
    monkeypatch.setattr(api, "check", real_check)
    code, output = _render(spec, "--all", "--check")
    assert code == 1 and "edited by hand" in output, "an edited output means a full check"
    env_file.write_text(env_file.read_text().replace("# mine\n", ""))
    (spec / "envspec.yaml").write_text((spec / "envspec.yaml").read_text().replace("hello", "hi"))
    code, output = _render(spec, "--all", "--check")
    assert code == 1 and "would write" in output, "a changed input means a full check"


def test_a_failing_later_target_discards_what_earlier_targets_staged(spec: Path) -> None:
    (spec / "templates" / "settings").mkdir(parents=True)
    (spec / "templates" / "settings" / "settings.py.j2").write_text("{{ no_such_name }}\n")
    code, output = _render(spec, "--all")
    assert code == 1 and "undefined" in output
    assert not (spec / "build").exists(), "the output folder it created is gone again"
    (spec / "templates" / "settings" / "settings.py.j2").unlink()
    assert _render(spec, "--all")[0] == 0
    before = output_files(spec / "build")
    (spec / "templates" / "settings" / "settings.py.j2").write_text("{{ no_such_name }}\n")
    (spec / "envspec.yaml").write_text(
        (spec / "envspec.yaml").read_text().replace("hello", "changed")
    )
    code, _ = _render(spec, "--all")
    assert code == 1
    assert output_files(spec / "build") == before
    assert not staged_leftovers(spec / "build")


def test_a_conflict_in_a_later_target_discards_what_was_staged(spec: Path) -> None:
    assert _render(spec, "--all")[0] == 0
    settings = spec / "build" / "settings.py"
    settings.write_text(settings.read_text() + "# mine\n")
    (spec / "envspec.yaml").write_text(
        (spec / "envspec.yaml").read_text().replace("hello", "changed")
    )
    before = output_files(spec / "build")
    code, output = _render(spec, "--all")
    assert code == 1 and "settings.py: edited by hand" in output
    assert output_files(spec / "build") == before
    assert not staged_leftovers(spec / "build")
