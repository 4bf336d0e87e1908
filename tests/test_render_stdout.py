"""``envspec render --env E --target kubernetes --stdout``: kustomize's documents, nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, minimal, output_files, run, write_spec
from tests.readers import _yaml12, kustomize, validate_kubernetes


def envspec(*args: str) -> subprocess.CompletedProcess[str]:
    """The console script, as users run it (stdout and stderr apart)."""
    command = [str(Path(sys.executable).parent / "envspec"), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the bundled example's spec, so that a stray write would show."""
    spec = tmp_path_factory.mktemp("spec")
    shutil.copy(REPO / "envspec.yaml", spec)
    shutil.copytree(REPO / "environments", spec / "environments")
    return spec


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_stream_is_what_kustomize_builds(example: Path, tmp_path: Path, environment: str) -> None:
    before = output_files(example)
    streamed = envspec(
        "render", "--env", environment, "--target", "kubernetes", "--stdout", "--spec", str(example)
    )
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stderr == ""
    assert output_files(example) == before, "--stdout wrote a file"

    out = tmp_path / "build"
    assert (
        run("render", "--env", environment, "--spec", str(example), "--out", str(out)).exit_code
        == 0
    )
    built = kustomize(out / environment / "kubernetes")
    documents = list(_yaml12().load_all(streamed.stdout))
    assert documents == built
    assert {d["kind"] for d in documents} >= {"Namespace", "ConfigMap", "Deployment", "Service"}
    for document in documents:
        validate_kubernetes(document)


def test_invalid_spec_prints_nothing_on_stdout(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "spec", minimal(services={"web": {"image": "x", "replicas": "two"}})
    )
    result = envspec(
        "render", "--env", "prod", "--target", "kubernetes", "--stdout", "--spec", str(spec)
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "envspec.yaml:" in result.stderr and "services.web.replicas" in result.stderr
    assert not (spec / "build").exists()


def test_environment_without_kubernetes_is_refused(example: Path) -> None:
    result = run(
        "render", "--env", "dev", "--target", "kubernetes", "--stdout", "--spec", str(example)
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "environment 'development' does not render kubernetes" in result.stderr


@pytest.mark.parametrize(
    "options",
    [
        ["--env", "prod"],
        ["--env", "prod", "--env", "staging", "--target", "kubernetes"],
        ["--all", "--target", "kubernetes"],
        ["--env", "prod", "--target", "kubernetes", "--check"],
        ["--env", "prod", "--target", "compose"],
    ],
)
def test_stdout_needs_one_environment_and_kubernetes(example: Path, options: list[str]) -> None:
    result = run("render", *options, "--stdout", "--spec", str(example))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--stdout prints one environment's Kubernetes documents" in result.stderr
