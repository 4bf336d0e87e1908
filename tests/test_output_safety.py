"""Nothing written outside --out, nothing lost to a race, no traceback for a hostile lock: planted
symbolic links, --out over the spec's own files, two real processes rendering at once, and lock
files damaged or written to mislead."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from envspec import writer
from envspec.writer import LOCK_FILE, TRANSACTION_DIR, sha256
from tests.helpers import REPO, minimal, output_files, run, staged_leftovers, write_spec


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "spec", minimal())


def _render(spec: Path, *extra: str) -> tuple[int, str]:
    result = run("render", "--all", "--spec", str(spec), *extra)
    return result.exit_code, result.output


def _tree(folder: Path) -> dict[str, bytes | str]:
    """Everything under ``folder``: files' bytes, links' targets."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            found[name] = f"-> {path.readlink()}"
        elif path.is_file():
            found[name] = path.read_bytes()
    return found


def test_the_output_folder_holds_the_lock_and_the_outputs_only(spec: Path) -> None:
    assert _render(spec)[0] == 0
    out = spec / "build"
    names = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    lock = json.loads((out / LOCK_FILE).read_text())["files"]
    assert names == {*lock, LOCK_FILE}, "no mutex file, no staging left beside the outputs"


@pytest.mark.parametrize(
    ("planted", "to_folder"),
    [
        ("development/.env.development", False),  # a file envspec writes
        ("production", True),  # a folder envspec writes into
        ("production/kubernetes/services", True),  # a folder deeper down
        (LOCK_FILE, False),  # the lock
        (TRANSACTION_DIR, True),  # the transaction folder
    ],
)
def test_a_planted_link_is_refused_and_never_followed(
    spec: Path, tmp_path: Path, planted: str, to_folder: bool
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("the attacker's target\n")
    out = spec / "build"
    link = out / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside if to_folder else outside / "keep.txt")
    before = _tree(outside)
    code, output = _render(spec)
    assert code == 1
    assert f"{link}: is a symbolic link" in output, output
    assert "Traceback" not in output
    assert _tree(outside) == before, "nothing written, created or removed through the link"
    assert link.is_symlink()
    code, output = _render(spec, "--force")
    assert code == 1 and "is a symbolic link" in output, "--force does not write through a link"
    assert _tree(outside) == before


def test_an_out_folder_that_is_a_link_is_refused(spec: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (spec / "build").symlink_to(elsewhere)
    code, output = _render(spec)
    assert code == 1 and "is a symbolic link; give --out the folder it points to" in output
    assert list(elsewhere.iterdir()) == []
    assert _render(spec, "--out", str(elsewhere))[0] == 0, "the folder itself, named, is fine"


def test_a_fifo_where_a_file_goes_is_refused_without_blocking(spec: Path) -> None:
    target = spec / "build" / "settings.py"
    target.parent.mkdir()
    os.mkfifo(target)
    code, output = _render(spec)
    assert code == 1 and "settings.py: is not a regular file" in output
    assert stat.S_ISFIFO(target.lstat().st_mode)


@pytest.mark.parametrize(
    ("out", "overlapped"),
    [
        (".", "envspec.yaml"),
        ("environments", "environments"),
        ("environments/build", "environments"),
        ("templates", "templates"),
        ("..", "envspec.yaml"),
    ],
)
def test_out_over_the_spec_inputs_is_refused(spec: Path, out: str, overlapped: str) -> None:
    (spec / "environments").mkdir(exist_ok=True)
    (spec / "environments" / "production.yaml").write_text("variables: {}\n")
    before = _tree(spec.parent)
    code, output = _render(spec, "--out", str(spec / out))
    assert code == 1
    assert f"overlaps the spec's own {overlapped}" in output, output
    assert _tree(spec.parent) == before


def test_two_processes_rendering_different_environments_both_land(tmp_path: Path) -> None:
    spec = minimal()
    spec["environments"]["staging"] = {"targets": ["dotenv"]}
    root = write_spec(tmp_path / "spec", spec)
    environment = {**os.environ, "ENVSPEC_NO_CACHE": "1", "PYTHONPATH": str(REPO)}
    for attempt in range(3):
        out = tmp_path / f"out-{attempt}"
        command = [sys.executable, "-m", "envspec", "render", "--spec", str(root)]
        renders = [
            subprocess.Popen(
                [*command, "--out", str(out), "--env", name],
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for name in ("development", "production", "staging")
        ]
        for process in renders:
            _, error = process.communicate(timeout=300)
            assert process.returncode == 0, error
        lock = json.loads((out / LOCK_FILE).read_text())["files"]
        on_disk = {path: sha256(data) for path, data in output_files(out).items()}
        assert {path: entry["sha256"] for path, entry in lock.items()} == {
            path: digest for path, digest in on_disk.items() if path != LOCK_FILE
        }
        assert {entry["environment"] for entry in lock.values()} == {
            "development",
            "production",
            "staging",
            None,
        }
        assert not staged_leftovers(out)


LOCKS = {
    "truncated": ('{\n  "files": {\n    "a": {"sha256": "ab', "3:21", "not an envspec lock file"),
    "not json": ("version = 1\n", "1:1", "not an envspec lock file"),
    "not utf-8": ('{"files": {"\xff": {}}}', "1:13", "not UTF-8"),
    "deep": ("[" * 100_000, "1:1", "nested too deeply"),
    "a list": ("[]", "1:1", "expected an object"),
    "old version": ('{"version": 7, "files": {}}', "1:2", "version: expected version 1"),
    "files a list": ('{"version": 1, "files": []}', "1:16", "files: expected an object"),
    "escaping path": (
        '{"version": 1,\n "files": {"../../etc/passwd": {}}}',
        "2:12",
        "files.../../etc/passwd: not a path inside the output folder",
    ),
    "bad hash": (
        '{"version": 1, "files": {"a.txt": {"sha256": 5, "environment": null, "target": "t"}}}',
        "1:36",
        "files.a.txt.sha256: expected 64 lowercase hexadecimal digits",
    ),
    "bad target": (
        '{"version": 1, "files": {"a.txt": {"sha256": "' + "0" * 64 + '", "target": []}}}',
        "1:114",
        "files.a.txt.target: expected a target name",
    ),
    "bad inputs": ('{"version": 1, "files": {}, "inputs": {"all": 1}}', "1:29", "inputs:"),
}


@pytest.mark.parametrize("name", sorted(LOCKS))
@pytest.mark.parametrize("command", [(), ("--check",)])
def test_a_damaged_or_hostile_lock_is_a_positioned_error(
    spec: Path, name: str, command: tuple[str, ...]
) -> None:
    text, where, message = LOCKS[name]
    lock = spec / "build" / LOCK_FILE
    lock.parent.mkdir()
    lock.write_bytes(text.encode("latin-1" if name == "not utf-8" else "utf-8"))
    before = _tree(spec)
    code, output = _render(spec, *command)
    assert code == 1
    assert f"{lock}:{where}: " in output and message in output, output
    assert "internal error" not in output and "Traceback" not in output
    assert _tree(spec) == before


def test_a_lock_past_the_size_limit_is_refused(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "MAX_LOCK_BYTES", 100)
    lock = spec / "build" / LOCK_FILE
    lock.parent.mkdir()
    lock.write_text(json.dumps({"version": 1, "files": {}, "inputs": {"x": "y" * 200}}))
    code, output = _render(spec)
    assert code == 1 and "the limit is 100" in output


@pytest.mark.parametrize(
    "journal",
    [
        b"\x00garbage",
        b'{"version": 1, "steps": [["remove", "0", "../../outside.txt"]]}',
        b'{"version": 1, "steps": [["remove", "0", 5]]}',
        b'{"version": 1, "steps": [["format", "0", "a.txt"]]}',
        b'{"version": 1, "steps": "all"}',
    ],
)
def test_a_damaged_or_planted_journal_is_refused_and_not_carried_out(
    spec: Path, tmp_path: Path, journal: bytes
) -> None:
    assert _render(spec)[0] == 0
    (tmp_path / "outside.txt").write_text("keep\n")
    staging = spec / "build" / TRANSACTION_DIR
    for part in ("", "files", "tree", "old"):
        (staging / part).mkdir(exist_ok=True)
    (staging / "journal").write_bytes(journal)
    before = _tree(tmp_path)
    for command in ((), ("--check",)):
        code, output = _render(spec, *command)
        assert code == 1
        assert f"{staging / 'journal'}: damaged; move {staging}" in output, output
        assert "internal error" not in output
    assert _tree(tmp_path) == before
