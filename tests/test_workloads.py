"""Workloads fit for production: shutdown, user and security, digests and tasks, read back by
the real readers of each target, and compared between environments like every pinned field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import minimal, run, write_spec
from tests.readers import (
    compose_config,
    compose_v1,
    compose_v2,
    kustomize,
    validate_kubernetes,
)

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
    overlays: dict[str, Any] = {"production": {"services": {"web": {"digest": OTHER_DIGEST}}}}
    found = _diff(tmp_path, spec, overlays)
    assert found["services.web.digest"]["status"] == "undeclared"
    assert found["services.web.digest"]["right"] == OTHER_DIGEST
    overlays["production"]["differences"] = [
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


def _production(tmp_path: Path, spec: dict[str, Any], overlays: Any = None) -> list[dict[str, Any]]:
    """Production's documents as ``kubectl kustomize`` builds them, each strictly valid."""
    documents = kustomize(_render(tmp_path, spec, overlays) / "production" / "kubernetes")
    for document in documents:
        validate_kubernetes(document)
    return documents


def _one(documents: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d
        for d in documents
        if d["kind"] == kind and (name is None or d["metadata"]["name"].startswith(name))
    ]
    assert len(found) == 1, [d["metadata"]["name"] for d in found]
    return found[0]


def test_kubernetes_restricted_workload(tmp_path: Path) -> None:
    spec = _workload_spec(
        user="1000:2000", digest=DIGEST, shutdown={"grace": 40, "pre_stop": 5}, replicas=3
    )
    documents = _production(tmp_path, spec)
    pod = _one(documents, "Deployment", "web")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 45, "the app still has 40 s after SIGTERM"
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 2000,
        "fsGroup": 2000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = pod["containers"][0]
    assert container["image"] == f"example/web:1.0.0@{DIGEST}"
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    budget = _one(documents, "PodDisruptionBudget")
    assert budget["metadata"]["name"] == "web"
    assert budget["spec"] == {
        "maxUnavailable": 1,
        "selector": {
            "matchLabels": {
                "app.kubernetes.io/name": "web",
                "app.kubernetes.io/instance": "demo-production",
            }
        },
    }
    db = _one(documents, "Deployment", "db")["spec"]["template"]["spec"]
    assert db["terminationGracePeriodSeconds"] == 30
    assert "securityContext" not in db and "securityContext" not in db["containers"][0]
    labels = _one(documents, "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline", "db runs as root"
    assert labels["pod-security.kubernetes.io/warn"] == "baseline"


def test_namespace_is_restricted_when_every_workload_is(tmp_path: Path) -> None:
    spec = _workload_spec(user="1000")
    spec["services"]["db"]["security"] = "restricted"
    labels = _one(_production(tmp_path, spec), "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize(
    ("replicas", "budgets"),
    [(1, 0), (2, 1), ({"min": 1, "max": 5}, 0), ({"min": 2, "max": 5}, 1)],
)
def test_disruption_budget_from_two_replicas(tmp_path: Path, replicas: Any, budgets: int) -> None:
    documents = _production(tmp_path, _workload_spec(replicas=replicas))
    assert sum(d["kind"] == "PodDisruptionBudget" for d in documents) == budgets


def test_before_deploy_task_is_a_presync_job(tmp_path: Path) -> None:
    spec = _workload_spec(user="1000", resources={"limits": {"memory": "256Mi"}})
    spec["variables"]["PRICE"] = {"default": "$(HOME) costs $5"}
    spec["variables"]["TOKEN"] = {"secret": True}
    overlays = {
        "development": {"variables": {"TOKEN": "local"}},
        "production": {"variables": {"TOKEN": {"secret": "vault://demo#token"}}},
    }
    documents = _production(tmp_path, spec, overlays)
    job = _one(documents, "Job")
    assert job["metadata"]["name"].startswith("migrate-")
    assert len(job["metadata"]["name"]) == len("migrate-") + 10
    assert job["metadata"]["annotations"] == {
        "argocd.argoproj.io/hook": "PreSync",
        "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
    }
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "task"
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsUser"] == 1000
    container = pod["containers"][0]
    assert container["args"] == ["manage", "migrate"]
    assert container["resources"] == {"limits": {"memory": "256Mi"}}
    web = _one(documents, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == web["image"]
    assert container["securityContext"] == web["securityContext"]
    env = {item["name"]: item for item in container["env"]}
    assert env["GREETING"] == {"name": "GREETING", "value": "hello"}
    assert env["PRICE"]["value"] == "$$(HOME) costs $$5", "the kubelet reads $$ as $"
    assert env["TOKEN"]["valueFrom"] == web["env"][0]["valueFrom"]
    selector = _one(documents, "Service", "web")["spec"]["selector"]
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= pod_labels.items(), "the web Service does not route to it"


def test_job_name_changes_with_image_and_config(tmp_path: Path) -> None:
    def name(case: str, **change: Any) -> str:
        spec = _workload_spec()
        spec["services"]["web"].update(change.pop("web", {}))
        spec["variables"]["GREETING"].update(change)
        return str(_one(_production(tmp_path / case, spec), "Job")["metadata"]["name"])

    first = name("first")
    assert name("again") == first
    assert name("image", web={"version": "1.0.1"}) != first
    assert name("config", default="hi") != first


def test_manual_task_is_rendered_but_not_in_the_kustomization(tmp_path: Path) -> None:
    spec = _workload_spec()
    spec["tasks"]["migrate"]["when"] = "manual"
    out = _render(tmp_path, spec)
    assert not any(d["kind"] == "Job" for d in kustomize(out / "production" / "kubernetes"))
    job = yaml.safe_load((out / "production" / "kubernetes" / "tasks" / "migrate.yaml").read_text())
    validate_kubernetes(job)
    assert "annotations" not in job["metadata"]


def test_task_of_a_service_not_deployed_is_absent(tmp_path: Path) -> None:
    spec = _workload_spec()
    overlays = {"production": {"services": {"web": {"external": True}}}}
    out = _render(tmp_path, spec, overlays)
    assert not (out / "production" / "kubernetes" / "tasks").exists()
