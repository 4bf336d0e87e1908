"""The hooks in .pre-commit-hooks.yaml, run by the real pre-commit in a temporary git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, minimal, run, write_spec

IGNORED = shutil.ignore_patterns(".venv", "build", ".git", "*.egg-info", "__pycache__", ".*_cache")


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=ci@envspec.invalid", "-c", "user.name=envspec", *args],
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This project's working tree as a git repository that pre-commit can clone."""
    clone = tmp_path_factory.mktemp("hooks") / "envspec"
    shutil.copytree(REPO, clone, ignore=IGNORED)
    _git(clone, "init", "-q")
    _git(clone, "add", "-A")
    _git(clone, "commit", "-q", "-m", "snapshot")
    return clone, _git(clone, "rev-parse", "HEAD").strip()


def _pre_commit(project: Path, home: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files"],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.mark.slow
def test_hooks_pass_then_catch_problems(hook_repo: tuple[Path, str], tmp_path: Path) -> None:
    clone, revision = hook_repo
    project = write_spec(tmp_path / "project", minimal())
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {clone}\n    rev: {revision}\n    hooks:\n"
        "      - id: envspec-validate\n      - id: envspec-render-check\n"
    )
    assert run("render", "--all", "--spec", str(project)).exit_code == 0
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    home = tmp_path / "pre-commit-home"
    passing = _pre_commit(project, home)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "envspec validate" in passing.stdout and "Passed" in passing.stdout

    spec = project / "envspec.yaml"
    spec.write_text(spec.read_text().replace("hello", "changed"))
    stale = _pre_commit(project, home)
    assert stale.returncode == 1
    assert "generated files are stale" in stale.stdout

    spec.write_text(spec.read_text().replace("version: 1.0.0", "version: latest"))
    broken = _pre_commit(project, home)
    assert broken.returncode == 1
    assert "floating tag 'latest' in non-local environment 'production'" in broken.stdout
