"""Workloads fit for production: shutdown, user and security, digests and tasks, read back by
the real readers of each target, and compared between environments like every pinned field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import minimal, run, write_spec
from tests.readers import compose_config, compose_v1, compose_v2

DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32


def _workload_spec(**web: Any) -> dict[str, Any]:
    spec = minimal(
        tasks={
            "migrate": {"service": "web", "command": ["manage", "migrate"], "when": "before-deploy"}
        }
    )
    spec["environments"]["development"]["targets"] = ["compose"]
    spec["services"]["web"].update(web)
    spec["services"]["db"] = {"image": "example/db", "version": "2.0", "ports": [5432]}
    spec["services"]["web"]["depends_on"] = ["db"]
    return spec


def _render(tmp_path: Path, spec: dict[str, Any], overlays: Any = None) -> Path:
    root = write_spec(tmp_path / "spec", spec, overlays)
    out = tmp_path / "out"
    result = run("render", "--all", "--spec", str(root), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("binary", [compose_v2(), compose_v1()], ids=["v2", "v1"])
def test_compose_reads_shutdown_user_and_security(tmp_path: Path, binary: str) -> None:
    spec = _workload_spec(
        user="1000:1000", digest=DIGEST, shutdown={"grace": 45, "signal": "SIGQUIT"}
    )
    folder = _render(tmp_path, spec) / "development"
    web = compose_config(binary, folder)["services"]["web"]
    assert web["image"] == f"example/web:1.0.0@{DIGEST}"
    assert web["user"] == "1000:1000"
    assert web["cap_drop"] == ["ALL"]
    assert web["security_opt"] == ["no-new-privileges:true"]
    assert web["stop_signal"] == "SIGQUIT"
    assert web["stop_grace_period"] in ("45s", 45)
    db = compose_config(binary, folder)["services"]["db"]
    assert db["stop_grace_period"] in ("30s", 30), "compose's own default (10 s) is never left"
    assert "cap_drop" not in db and "user" not in db, "a service without user is baseline"


@pytest.mark.parametrize("binary", [compose_v2(), compose_v1()], ids=["v2", "v1"])
def test_compose_task_is_a_service_of_the_tasks_profile(tmp_path: Path, binary: str) -> None:
    spec = _workload_spec(user="1000", compose={"ports": ["9999:8000"], "working_dir": "/srv"})
    folder = _render(tmp_path, spec) / "development"
    if binary == compose_v2():
        assert "migrate" not in compose_config(binary, folder)["services"]
    services = compose_config(binary, folder, profiles=("tasks",))["services"]
    task = services["migrate"]
    assert task["command"] == ["manage", "migrate"]
    assert task["profiles"] == ["tasks"]
    assert task["image"] == services["web"]["image"]
    assert task["user"] == "1000"
    assert task["environment"] == services["web"]["environment"]
    assert "db" in task["depends_on"]
    assert task["working_dir"] == "/srv", "the service's escape hatch reaches its tasks"
    assert "ports" not in task, "but not the fields of a server"


def test_overlay_changes_one_shutdown_field(tmp_path: Path) -> None:
    spec = _workload_spec(shutdown={"grace": 20, "signal": "SIGINT"})
    overlays = {
        "development": {"services": {"web": {"shutdown": {"grace": 60}}}},
        "production": {
            "differences": [{"path": "services.web.shutdown", "reason": "slow drains locally"}]
        },
    }
    folder = _render(tmp_path, spec, overlays) / "development"
    web = compose_config(compose_v2(), folder)["services"]["web"]
    assert (web["stop_grace_period"], web["stop_signal"]) == ("1m0s", "SIGINT")


def _diff(tmp_path: Path, spec: dict[str, Any], overlays: Any) -> dict[str, Any]:
    root = write_spec(tmp_path / "spec", spec, overlays)
    result = run("diff", "development", "production", "--format", "json", "--spec", str(root))
    report: dict[str, Any] = json.loads(result.output)
    assert result.exit_code == (1 if report["undeclared"] else 0)
    return {d["path"]: d for d in report["differences"]}


def test_same_tag_with_other_digest_is_undeclared(tmp_path: Path) -> None:
    spec = _workload_spec(digest=DIGEST)
    overlays = {"production": {"services": {"web": {"digest": OTHER_DIGEST}}}}
    found = _diff(tmp_path, spec, overlays)
    assert found["services.web.digest"]["status"] == "undeclared"
    assert found["services.web.digest"]["right"] == OTHER_DIGEST
    overlays["production"]["differences"] = [  # type: ignore[index]
        {"path": "services.web.digest", "reason": "a rebuilt image is on trial"}
    ]
    assert _diff(tmp_path, spec, overlays)["services.web.digest"]["status"] == "declared"


def test_digest_in_one_environment_or_with_another_tag_is_expected(tmp_path: Path) -> None:
    overlays: dict[str, Any] = {"production": {"services": {"web": {"digest": DIGEST}}}}
    assert _diff(tmp_path, _workload_spec(), overlays)["services.web.digest"]["status"] == (
        "expected"
    )
    overlays = {
        "production": {
            "services": {"web": {"digest": OTHER_DIGEST, "version": "1.0.1"}},
            "differences": [{"path": "services.web.version", "reason": "a canary"}],
        }
    }
    found = _diff(tmp_path, _workload_spec(digest=DIGEST), overlays)
    assert found["services.web.digest"]["status"] == "expected"


@pytest.mark.parametrize(
    ("change", "path", "left", "right"),
    [
        ({"shutdown": {"grace": 90}}, "services.web.shutdown", "grace 30s", "grace 90s"),
        ({"user": "1000"}, "services.web.user", "<absent>", "1000"),
        ({"user": "1000"}, "services.web.security", "baseline", "restricted"),
        ({"security": "restricted"}, "services.web.security", "baseline", "restricted"),
    ],
)
def test_shutdown_and_security_differences_are_undeclared(
    tmp_path: Path, change: dict[str, Any], path: str, left: str, right: str
) -> None:
    found = _diff(tmp_path, _workload_spec(), {"production": {"services": {"web": change}}})
    assert found[path] == {
        "path": path,
        "left": left,
        "right": right,
        "status": "undeclared",
        "reason": "",
    }
    validate = run("validate", "--spec", str(tmp_path / "spec"))
    assert validate.exit_code == 1
    assert f"{path}: 'development' has {left} and 'production' has {right}" in validate.stderr


def test_policy_may_let_shutdown_and_security_vary(tmp_path: Path) -> None:
    spec = _workload_spec()
    spec["parity"] = {"shutdown": False, "security": False}
    overlays = {"production": {"services": {"web": {"user": "1000", "shutdown": {"grace": 5}}}}}
    found = _diff(tmp_path, spec, overlays)
    assert {found[p]["status"] for p in found if p.startswith("services.web.")} == {"expected"}
