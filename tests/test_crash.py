"""Guarantee 4 under crashes: a render killed at any step of its commit (SIGKILL, SIGTERM, SIGINT)
leaves the output folder wholly as it was or wholly rendered, at the latest once the next envspec
command has recovered it, with nothing of the transaction left behind.

The writer's fault injector (``ENVSPEC_TEST_KILL_AT=<n>:<signal>``) makes the process send itself
the signal at its n-th step that changes the disk (each staged file, the syncfs, the journal's
write, rename and fsync, each link, rename and rmdir, each folder's fsync, the clean-up). Each
victim is a forked copy of this process running the CLI (no interpreter start-up per step); one
test runs the real ``python -m envspec`` too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from envspec.writer import FAULT_VARIABLE, LOCK_FILE, TRANSACTION_DIR
from tests.helpers import REPO, minimal, output_files, run, staged_leftovers, write_spec


def _changed() -> dict[str, Any]:
    """The spec after a change that replaces files, removes one, and adds a folder."""
    spec = minimal()
    spec["variables"]["GREETING"]["default"] = "changed"
    spec["environments"]["development"]["targets"] = ["dotenv"]
    spec["environments"]["staging"] = {"targets": ["dotenv"]}
    return spec


@dataclass
class Scenario:
    pristine: Path
    """A spec folder holding the changed spec and the output of the spec before the change."""
    old: dict[str, bytes]
    new: dict[str, bytes]
    steps: list[str]
    """The names of the steps of the commit, in order (from an unharmed run)."""

    def copy(self, where: Path) -> Path:
        shutil.copytree(self.pristine, where, symlinks=True)
        return where


def _victim(spec: Path, fault: str, *command: str) -> tuple[int, str]:
    """Run ``envspec <command>`` in a forked child armed with ``fault``; how it ended (a
    negative number: killed by that signal) and what it printed (nothing when killed)."""
    report = spec.parent / f"{spec.name}.output"
    report.unlink(missing_ok=True)
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child, which never returns
        code = 1
        try:
            os.environ[FAULT_VARIABLE] = fault
            result = run(*(command or ("render", "--all")), "--spec", str(spec))
            report.write_text(result.output)
            code = result.exit_code
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    ended = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return ended, report.read_text() if report.exists() else ""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENVSPEC_NO_CACHE", "1")
        base = tmp_path_factory.mktemp("crash")
        pristine = write_spec(base / "pristine", minimal())
        assert run("render", "--all", "--spec", str(pristine)).exit_code == 0
        write_spec(pristine, _changed())
        old = output_files(pristine / "build")
        unharmed = shutil.copytree(pristine, base / "unharmed", symlinks=True)
        code, output = _victim(unharmed, "0")
        assert code == 0, output
        steps = [line.split(" ", 2)[2] for line in output.splitlines() if "envspec-step" in line]
        new = output_files(unharmed / "build")
        assert new != old and set(new) != set(old)
        yield Scenario(pristine, old, new, steps)


def _recovered(spec: Path, scenario: Scenario) -> dict[str, bytes]:
    """The output folder after the next command (a read-only ``render --check``): wholly old or
    wholly new, nothing of the transaction left; ``--check`` agrees with what it found."""
    out = spec / "build"
    result = run("render", "--all", "--check", "--spec", str(spec))
    assert not staged_leftovers(out)
    found = output_files(out)
    assert found in (scenario.old, scenario.new)
    assert result.exit_code == (0 if found == scenario.new else 1), result.output
    return found


def _rendered_again(spec: Path, scenario: Scenario) -> None:
    result = run("render", "--all", "--spec", str(spec))
    assert result.exit_code == 0, result.output
    assert output_files(spec / "build") == scenario.new
    assert not staged_leftovers(spec / "build")


def test_the_fault_injector_reaches_every_kind_of_step(scenario: Scenario) -> None:
    kinds = set(scenario.steps)
    expected = {"stage", "syncfs", "write journal", "rename journal", "fsync the folder of journal"}
    expected |= {"link backup", "rename", "rename folder", "rename to old", "rmdir"}
    expected |= {"fsync folder", "unlink journal", "remove staging"}
    assert expected <= kinds, kinds


def test_sigkill_at_every_step_leaves_old_or_new(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVSPEC_NO_CACHE", "1")
    commit = scenario.steps.index("syncfs") + 1
    outcomes = []
    for step in range(1, len(scenario.steps) + 1):
        spec = scenario.copy(tmp_path / f"at-{step}")
        code, _ = _victim(spec, f"{step}:SIGKILL")
        assert code == -signal.SIGKILL, step
        found = _recovered(spec, scenario)
        journal = scenario.steps.index("rename journal") + 1
        assert found == (scenario.new if step > journal else scenario.old), step
        outcomes.append(found == scenario.new)
        _rendered_again(spec, scenario)
    assert not outcomes[0] and outcomes[-1] and commit < len(outcomes)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_wait_for_the_commit(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, number: signal.Signals
) -> None:
    monkeypatch.setenv("ENVSPEC_NO_CACHE", "1")
    commit = scenario.steps.index("syncfs") + 1
    for step in range(1, len(scenario.steps) + 1):
        spec = scenario.copy(tmp_path / f"at-{step}")
        code, output = _victim(spec, f"{step}:{number.name}")
        out = spec / "build"
        if step >= commit:  # held until the commit is done, then acted on
            assert output_files(out) == scenario.new, step
            assert not staged_leftovers(out)
            if number == signal.SIGINT:
                assert code == 130
                assert "interrupted; the files being written were written completely" in output
            else:
                assert code == -number
        elif number == signal.SIGINT:  # before the commit: nothing staged survives Ctrl-C
            assert code == 130 and "interrupted; nothing was changed" in output, output
            assert output_files(out) == scenario.old
            assert not staged_leftovers(out)
        else:
            assert code == -number
        _recovered(spec, scenario)
        _rendered_again(spec, scenario)


def test_a_recovery_killed_midway_is_finished_by_the_next_command(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVSPEC_NO_CACHE", "1")
    middle = scenario.steps.index("rename folder") + 1
    for second in (1, 2, 3):
        spec = scenario.copy(tmp_path / f"twice-{second}")
        assert _victim(spec, f"{middle}:SIGKILL")[0] == -signal.SIGKILL
        code, _ = _victim(spec, f"{second}:SIGKILL", "render", "--all", "--check")
        assert code == -signal.SIGKILL, "the recovery itself was killed"
        assert (spec / "build" / TRANSACTION_DIR).exists()
        assert _recovered(spec, scenario) == scenario.new


def test_a_commit_undone_midway_is_undone_by_the_next_command(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that fails puts the old files back; killed while doing so, the next command
    finishes putting them back once the journal is marked 'abort' (before that, it carries the
    journal out: either is a whole state)."""
    monkeypatch.setenv("ENVSPEC_NO_CACHE", "1")
    failing = scenario.steps.index("rename folder") + 1
    spec = scenario.copy(tmp_path / "undone")
    code, output = _victim(spec, f"{failing}:EIO")
    assert code == 1 and "Input/output error; nothing was changed" in output, output
    assert output_files(spec / "build") == scenario.old
    assert not staged_leftovers(spec / "build")
    last = output.count("envspec-step")
    assert last > failing + 3, "the abort mark, its fsync, steps undone, the clean-up"
    for undoing in range(failing + 1, last + 1):
        spec = scenario.copy(tmp_path / f"undoing-{undoing}")
        code, _ = _victim(spec, f"{failing}:EIO,{undoing}:SIGKILL")
        assert code == -signal.SIGKILL
        marked = (spec / "build" / TRANSACTION_DIR / "abort").exists()
        assert marked == (undoing > failing + 1), "killed before the mark: the journal holds"
        assert _recovered(spec, scenario) == (scenario.old if marked else scenario.new)


def test_the_real_command_killed_mid_commit(scenario: Scenario, tmp_path: Path) -> None:
    """The same through ``python -m envspec`` in a fresh interpreter."""
    environment = {**os.environ, "ENVSPEC_NO_CACHE": "1", "PYTHONPATH": str(REPO)}
    middle = scenario.steps.index("rename folder") + 1
    for fault, ended in ((f"{middle}:SIGKILL", -signal.SIGKILL), (f"{middle}:SIGTERM", -15)):
        spec = scenario.copy(tmp_path / fault.replace(":", "-"))
        command = [sys.executable, "-m", "envspec", "render", "--all", "--spec", str(spec)]
        killed = subprocess.run(
            command,
            env={**environment, FAULT_VARIABLE: fault},
            capture_output=True,
            check=False,
            timeout=300,
        )
        assert killed.returncode == ended
        if ended == -signal.SIGTERM:
            assert output_files(spec / "build") == scenario.new
        finished = subprocess.run(
            [*command, "--check"], env=environment, capture_output=True, check=False, timeout=300
        )
        assert finished.returncode == 0, finished.stderr
        assert output_files(spec / "build") == scenario.new
        assert not staged_leftovers(spec / "build")
        assert (spec / "build" / LOCK_FILE).exists()
