"""The bundled example renders, matches its golden files, and every real reader accepts it."""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, run
from tests.readers import (
    compose_config,
    compose_environment,
    compose_v1,
    compose_v2,
    kustomize,
    posix_shell,
    python_dotenv,
    validate_kubernetes,
)

GOLDEN = Path(__file__).parent / "golden" / "example"
UPDATE = os.environ.get("ENVSPEC_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("example") / "build"
    result = run("render", "--all", "--spec", str(REPO), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "written" in result.output
    return out


def _files(root: Path) -> dict[str, str]:
    """The output, with the lock's input fingerprint left out (it covers envspec's own code)."""
    files = {
        str(path.relative_to(root)): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
    lock = json.loads(files[".envspec-lock.json"])
    assert set(lock["inputs"]) <= {"all"}
    lock["inputs"] = {}
    files[".envspec-lock.json"] = json.dumps(lock, indent=2, sort_keys=True) + "\n"
    return files


def test_matches_golden_files(example: Path) -> None:
    """Refresh with: ENVSPEC_UPDATE_GOLDEN=1 pytest tests/test_example.py"""
    actual = _files(example)
    if UPDATE:
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for name, content in actual.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_text(content, encoding="utf-8")
    expected = _files(GOLDEN)
    assert sorted(actual) == sorted(expected)
    for name in expected:
        if actual[name] != expected[name]:
            diff = difflib.unified_diff(
                expected[name].splitlines(),
                actual[name].splitlines(),
                "golden/" + name,
                name,
                lineterm="",
            )
            pytest.fail("\n".join(diff))


def test_layout(example: Path) -> None:
    names = set(_files(example))
    assert {
        ".env.example",
        ".envspec-lock.json",
        "development/.env.development",
        "development/docker-compose.yaml",
        "production/kubernetes/kustomization.yaml",
        "production/kubernetes/externalsecret.yaml",
        "production/kubernetes/services/backend.yaml",
        "staging/kubernetes/secret.yaml",
    } <= names
    assert not any(name.startswith("production/kubernetes/services/postgres") for name in names), (
        "external"
    )
    assert not any("minio" in name for name in names if name.startswith("staging")), "dev-only"


def test_dotenv_readers_agree(example: Path) -> None:
    path = example / "development" / ".env.development"
    values = python_dotenv(path)
    assert values["SECRET_KEY"] == "django-insecure-dev-only-$ecret-with-a-dollar"
    assert values["DEBUG"] == "true"
    assert values["ALLOWED_HOSTS"] == "localhost,127.0.0.1"
    assert values["S3_BUCKET"] == "shop-media"
    assert "STRIPE_SECRET_KEY" not in values, "a reference is never written"
    assert posix_shell(path, list(values)) == values


@pytest.mark.parametrize("binary", [compose_v2, compose_v1], ids=["compose-v2", "compose-v1"])
def test_compose_config(example: Path, binary: object) -> None:
    assert callable(binary)
    data = compose_config(
        binary(), example / "development", {"STRIPE_SECRET_KEY": "sk_test_x"}, ("tasks",)
    )
    assert set(data["services"]) == {
        "backend",
        "worker",
        "postgres",
        "redis",
        "rabbitmq",
        "search",
        "minio",
        "prometheus",
        "migrate",
        "clearsessions",
    }
    migrate = data["services"]["migrate"]
    assert migrate["profiles"] == ["tasks"]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert migrate["user"] == data["services"]["backend"]["user"] == "1000:1000"
    assert compose_environment(data, "migrate") == compose_environment(data, "backend")
    backend = compose_environment(data, "backend")
    assert backend["SECRET_KEY"] == "django-insecure-dev-only-$ecret-with-a-dollar"
    assert backend["STRIPE_SECRET_KEY"] == "sk_test_x"
    assert data["services"]["backend"]["image"] == "ghcr.io/example-shop/backend:2.14.0"
    depends = data["services"]["backend"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert compose_environment(data, "search")["discovery.type"] == "single-node"
    assert "pgdata" in data["volumes"]


def test_compose_requires_secret_from_shell(example: Path) -> None:
    result = subprocess.run(
        [compose_v2(), "-f", "docker-compose.yaml", "config"],
        cwd=example / "development",
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
        check=False,
    )
    assert result.returncode != 0
    assert "STRIPE_SECRET_KEY" in result.stderr


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_kustomize_builds_and_documents_validate(example: Path, environment: str) -> None:
    documents = kustomize(example / environment / "kubernetes")
    kinds = sorted({document["kind"] for document in documents})
    assert {"Namespace", "ConfigMap", "Deployment", "Service"} <= set(kinds)
    for document in documents:
        assert document["metadata"].get("namespace", f"shop-{environment}") == f"shop-{environment}"
        validate_kubernetes(document)
    manual = yaml.safe_load(
        (example / environment / "kubernetes/tasks/clearsessions.yaml").read_text()
    )
    assert manual["kind"] == "Job" and manual not in documents, "a manual task is not deployed"
    validate_kubernetes(manual)


def test_production_workloads_are_restricted_pinned_and_budgeted(example: Path) -> None:
    documents = kustomize(example / "production" / "kubernetes")
    namespace = next(d for d in documents if d["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    for deployment in deployments.values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert "@sha256:" in pod["containers"][0]["image"]
    backend = deployments["backend"]["spec"]["template"]["spec"]
    assert backend["terminationGracePeriodSeconds"] == 35
    assert backend["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert deployments["worker"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60
    budgets = sorted(d["metadata"]["name"] for d in documents if d["kind"] == "PodDisruptionBudget")
    assert budgets == ["backend", "worker"]
    (job,) = [d for d in documents if d["kind"] == "Job"]
    assert job["metadata"]["name"].startswith("migrate-")
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert (
        job["spec"]["template"]["spec"]["containers"][0]["image"]
        == (backend["containers"][0]["image"])
    )
    staging = kustomize(example / "staging" / "kubernetes")
    labels = next(d for d in staging if d["kind"] == "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline", "postgres runs as root"


def test_production_autoscales_and_reads_external_secrets(example: Path) -> None:
    documents = {
        (d["kind"], d["metadata"]["name"]): d
        for d in kustomize(example / "production" / "kubernetes")
    }
    hpa = documents[("HorizontalPodAutoscaler", "backend")]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (4, 10)
    assert "replicas" not in documents[("Deployment", "backend")]["spec"]
    external = documents[("ExternalSecret", "shop-secrets")]
    keys = {item["secretKey"]: item["remoteRef"] for item in external["spec"]["data"]}
    assert keys["SECRET_KEY"] == {"key": "shop/production/django", "property": "secret_key"}
    assert ("Deployment", "postgres") not in documents
    config = documents[("ConfigMap", "backend-config")]["data"]
    assert config["DEBUG"] == "false"
    assert config["ALLOWED_HOSTS"] == "shop.example.com,www.shop.example.com"
    assert "SECRET_KEY" not in config


def test_render_twice_is_unchanged_and_check_passes(example: Path) -> None:
    again = run("render", "--all", "--spec", str(REPO), "--out", str(example))
    assert again.exit_code == 0
    assert "0 written" in again.output
    check = run("render", "--all", "--check", "--spec", str(REPO), "--out", str(example))
    assert check.exit_code == 0, check.output
