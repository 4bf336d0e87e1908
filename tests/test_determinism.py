"""Guarantee 5: byte-identical output across processes, hash seeds, locales and time zones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from envspec import api, rendering
from envspec.errors import RenderError
from tests.helpers import REPO, minimal, output_files, run, write_spec


def _render(out: Path, seed: str, locale: str, zone: str) -> dict[str, bytes]:
    environment = {
        **os.environ,
        "PYTHONHASHSEED": seed,
        "LC_ALL": locale,
        "LANG": locale,
        "TZ": zone,
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "envspec",
            "render",
            "--all",
            "--spec",
            str(REPO),
            "--out",
            str(out),
        ],
        check=True,
        env=environment,
        capture_output=True,
    )
    return output_files(out)


def test_same_bytes_in_two_processes(tmp_path: Path) -> None:
    first = _render(tmp_path / "a", "1", "C.UTF-8", "UTC")
    second = _render(tmp_path / "b", "4242", "C", "Pacific/Kiritimati")
    assert first.keys() == second.keys()
    assert first == second


def test_parallel_rendering_gives_the_same_files(monkeypatch: pytest.MonkeyPatch) -> None:
    project = api.load(REPO)
    names = list(project.environments)
    monkeypatch.setenv("ENVSPEC_JOBS", "1")
    serial = api.render_files(project, names, ())
    monkeypatch.delenv("ENVSPEC_JOBS")
    monkeypatch.setattr(rendering, "PARALLEL_THRESHOLD", 0)
    parallel = api.render_files(project, names, ())
    assert parallel == serial


def test_parallel_rendering_reports_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = minimal(variables={"BROKEN": {"default": "a${b}", "description": "x"}})
    project = api.load(write_spec(tmp_path / "spec", spec))
    monkeypatch.setattr(rendering, "PARALLEL_THRESHOLD", 0)
    with pytest.raises(RenderError) as error:
        api.render_files(project, list(project.environments), ())
    assert [p.path for p in error.value.problems] == ["variables.BROKEN"]


def test_writing_while_workers_render_gives_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVSPEC_JOBS", "1")
    assert (
        run("render", "--all", "--spec", str(REPO), "--out", str(tmp_path / "serial")).exit_code
        == 0
    )
    monkeypatch.delenv("ENVSPEC_JOBS")
    monkeypatch.setattr(rendering, "PARALLEL_THRESHOLD", 0)
    result = run("render", "--all", "--spec", str(REPO), "--out", str(tmp_path / "parallel"))
    assert result.exit_code == 0, result.output
    assert output_files(tmp_path / "parallel") == output_files(tmp_path / "serial")


def test_a_worker_failing_late_leaves_no_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_spec(tmp_path / "spec", minimal())
    (root / "templates" / "settings").mkdir(parents=True)
    (root / "templates" / "settings" / "settings.py.j2").write_text("{{ no_such_name }}\n")
    monkeypatch.setattr(rendering, "PARALLEL_THRESHOLD", 0)
    result = run("render", "--all", "--spec", str(root))
    assert result.exit_code == 1 and "undefined" in result.output
    assert not (root / "build").exists()
