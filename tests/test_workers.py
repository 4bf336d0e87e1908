"""Forked workers: results, errors and lost children, and the render pipeline that uses them."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from envspec import loader, rendering
from envspec.workers import Children, WorkerLostError
from tests.helpers import minimal, output_files, run, write_spec


def _all_results(children: Children[str]) -> dict[str, object]:
    results: dict[str, object] = {}
    while children.pending():
        results.update(children.finished(block=True))
    return results


def test_each_child_sees_the_state_of_its_start_and_returns_its_result() -> None:
    state = {"value": 1}
    with Children[str](2) as children:
        children.submit("first", lambda: state["value"] * 10)
        state["value"] = 2
        children.submit("second", lambda: state["value"] * 10)
        children.submit("third", os.getpid)
        results = _all_results(children)
    assert results["first"] == 10 and results["second"] == 20
    assert results["third"] != os.getpid()


def test_a_childs_exception_is_raised_in_the_parent() -> None:
    def fail() -> None:
        raise ValueError("from the child")

    with Children[str](1) as children:
        children.submit("bad", fail)
        with pytest.raises(ValueError, match="from the child"):
            _all_results(children)


def test_a_child_that_dies_is_reported_not_waited_for() -> None:
    with Children[str](1) as children:
        children.submit("killed", lambda: os.kill(os.getpid(), signal.SIGKILL))
        with pytest.raises(WorkerLostError, match="without a result"):
            _all_results(children)


def test_waiting_work_is_done_here_while_every_place_is_busy() -> None:
    read_end, write_end = os.pipe()

    def in_child() -> int:
        os.read(read_end, 1)  # ends only once the parent has done the other work
        return os.getpid()

    def here() -> int:
        os.write(write_end, b"x")
        return os.getpid()

    with Children[str](1) as children:
        children.submit("child", in_child)
        children.submit("here", here)
        results = dict(children.drain())
    os.close(read_end)
    os.close(write_end)
    assert results["here"] == os.getpid() != results["child"]


def test_leaving_early_kills_every_child() -> None:
    read_pid, write_pid = os.pipe()

    def sleep_forever() -> None:
        os.write(write_pid, f"{os.getpid()}\n".encode())
        signal.pause()

    with Children[str](2) as children:
        children.submit("a", sleep_forever)
        children.submit("b", sleep_forever)
        written = b""
        while written.count(b"\n") < 2:  # both children may have written before one read
            written += os.read(read_pid, 64)
        pids = [int(pid) for pid in written.split()]
    os.close(read_pid)
    os.close(write_pid)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped, not a zombie


def test_a_problem_in_the_last_environment_stops_renders_already_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rendering, "PARALLEL_THRESHOLD", 0)
    spec = minimal(variables={"GREETING": {"default": "hello"}, "TOKEN": {"secret": True}})
    overlays = {"development": {"variables": {"TOKEN": "local-only"}}}
    root = write_spec(tmp_path / "spec", spec, overlays)
    result = run("render", "--all", "--spec", str(root))
    assert result.exit_code == 1
    assert "variables.TOKEN: no value in environment 'production'" in result.output
    assert not (root / "build").exists()


def test_validate_in_workers_reports_parity_and_stale_declarations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rendering, "PARALLEL_THRESHOLD", 0)
    spec = minimal(variables={"GREETING": {"default": "hello", "parity": "strict"}})
    overlays = {
        "production": {
            "variables": {"GREETING": "hi"},
            "differences": [{"path": "services.web.image", "reason": "gone"}],
        }
    }
    root = write_spec(tmp_path / "spec", spec, overlays)
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1 and "variables.GREETING" in result.output
    overlays["production"]["variables"] = {}
    write_spec(root, spec, overlays)
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 0, result.output
    assert "declared difference 'services.web.image' no longer exists" in result.output


def _no_fork() -> int:
    raise OSError(errno.EAGAIN, "Resource temporarily unavailable")


@pytest.mark.parametrize("fork", ["works", "refused"])
def test_render_in_workers_matches_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fork: str
) -> None:
    root = write_spec(tmp_path / "spec", minimal())
    monkeypatch.setenv("ENVSPEC_JOBS", "1")
    assert (
        run("render", "--all", "--spec", str(root), "--out", str(tmp_path / "one")).exit_code == 0
    )
    monkeypatch.delenv("ENVSPEC_JOBS")
    monkeypatch.setattr(rendering, "PARALLEL_THRESHOLD", 0)
    monkeypatch.setattr(loader, "PARALLEL_PARSE_CHARS", 0)
    monkeypatch.setattr(loader, "PIECE_CHARS", 100)
    if fork == "refused":
        monkeypatch.setattr(os, "fork", _no_fork)
    assert (
        run("render", "--all", "--spec", str(root), "--out", str(tmp_path / "two")).exit_code == 0
    )
    assert output_files(tmp_path / "one") == output_files(tmp_path / "two")


def test_work_is_done_here_when_the_system_refuses_a_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "fork", _no_fork)
    descriptors = len(list(Path("/proc/self/fd").iterdir()))
    with Children[str](2) as children:
        children.submit("pid", os.getpid)
        children.submit("sum", lambda: sum(range(10)))
        results = _all_results(children)
        assert not children.pending()
    assert results == {"pid": os.getpid(), "sum": 45}
    assert len(list(Path("/proc/self/fd").iterdir())) == descriptors, "no pipe or memfd left open"


def test_a_lost_worker_is_a_clear_error_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_spec(tmp_path / "spec", minimal())
    monkeypatch.setattr(rendering, "PARALLEL_THRESHOLD", 0)
    real_render_job = rendering._render_job
    parent = os.getpid()

    def killed_in_a_worker(*args: Any) -> Any:
        if os.getpid() != parent:  # envspec renders some targets itself, beside the worker
            os.kill(os.getpid(), signal.SIGKILL)
        return real_render_job(*args)

    monkeypatch.setattr(rendering, "_render_job", killed_in_a_worker)
    result = run("render", "--all", "--spec", str(root))
    assert result.exit_code == 1
    assert "envspec: a worker process ended without a result (killed by signal 9" in result.output
    assert "ENVSPEC_JOBS=1" in result.output and "internal error" not in result.output
    assert not (root / "build").exists()
