"""The example's production manifests through a real policy scanner (checkov's Kubernetes
checks): what envspec takes care of passes, and what fails is only what docs/spec.md leaves to
the user, each with its reason."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, run

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"

ENSURED = {
    "CKV_K8S_14": "the image tag is fixed",
    "CKV_K8S_20": "no privilege escalation",
    "CKV_K8S_23": "no root containers",
    "CKV_K8S_28": "no NET_RAW capability",
    "CKV_K8S_29": "a pod securityContext",
    "CKV_K8S_30": "a container securityContext",
    "CKV_K8S_31": "the RuntimeDefault seccomp profile",
    "CKV_K8S_37": "all capabilities dropped",
    "CKV_K8S_43": "the image pinned by digest",
}
"""Checks that every workload of the example's production passes."""

LEFT_TO_THE_USER = {
    "CKV2_K8S_6",  # NetworkPolicy: the traffic between services is not in the spec
    "CKV_K8S_8",  # liveness probe: only services with a healthcheck get probes
    "CKV_K8S_9",  # readiness probe: likewise
    "CKV_K8S_10",  # CPU requests: the spec's resources
    "CKV_K8S_11",  # CPU limits: likewise
    "CKV_K8S_12",  # memory requests: likewise
    "CKV_K8S_13",  # memory limits: likewise
    "CKV_K8S_22",  # read-only root filesystem: most applications write somewhere
    "CKV_K8S_35",  # secrets as files: envspec's contract is environment variables
    "CKV_K8S_38",  # service account token: some workloads (prometheus) read the API
    "CKV_K8S_40",  # a UID above 10,000: the image decides its user
}
"""Checks that may fail, each explained in docs/spec.md ("Policy scanners")."""


def _scan(folder: Path) -> list[dict[str, Any]]:
    if not CHECKOV.is_file():
        found = shutil.which("checkov")
        assert found, "./scripts/test installs checkov into .venv-checkov"
    command = [str(CHECKOV) if CHECKOV.is_file() else "checkov"]
    result = subprocess.run(
        [
            *command,
            "--directory",
            str(folder),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"},
    )
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    reports: list[dict[str, Any]] = report if isinstance(report, list) else [report]
    return reports


@pytest.mark.slow
def test_production_meets_the_checks_envspec_takes_care_of(tmp_path: Path) -> None:
    out = tmp_path / "build"
    assert (
        run("render", "--env", "production", "--spec", str(REPO), "--out", str(out)).exit_code == 0
    )
    built = subprocess.run(
        ["kubectl", "kustomize", str(out / "production" / "kubernetes")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    scanned = tmp_path / "scanned"
    scanned.mkdir()
    (scanned / "production.yaml").write_text(built)
    results = [r["results"] for r in _scan(scanned)]
    failed = [c for r in results for c in r["failed_checks"]]
    passed = [c for r in results for c in r["passed_checks"]]
    unexpected = sorted(
        {(c["check_id"], c["resource"]) for c in failed}
        - {(c["check_id"], c["resource"]) for c in failed if c["check_id"] in LEFT_TO_THE_USER}
    )
    assert not unexpected, unexpected
    workloads = {
        c["resource"]
        for c in passed + failed
        if c["resource"].split(".")[0] in ("Deployment", "Job")
    }
    assert len(workloads) >= 5, workloads
    for check, meaning in ENSURED.items():
        passing = {c["resource"] for c in passed if c["check_id"] == check}
        assert workloads <= passing, f"{check} ({meaning}) fails for {workloads - passing}"
