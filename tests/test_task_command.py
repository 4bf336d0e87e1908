"""``envspec task NAME --env E``: the command that runs a task, pointing at the rendered files."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import minimal, run, write_spec
from tests.readers import compose_config, compose_v2


def _spec(tmp_path: Path) -> Path:
    spec = minimal(
        tasks={
            "migrate": {"service": "web", "command": ["manage", "migrate"], "when": "before-deploy"}
        }
    )
    spec["environments"]["development"]["targets"] = ["compose"]
    spec["environments"]["both"] = {"targets": ["compose", "kubernetes"], "local": True}
    spec["environments"]["plain"] = {"targets": ["dotenv"], "local": True}
    return write_spec(tmp_path / "spec", spec)


@pytest.fixture
def rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = _spec(tmp_path)
    monkeypatch.chdir(root)
    assert run("render", "--all").exit_code == 0
    return root


def test_compose_command_runs_the_tasks_profile_service(rendered: Path) -> None:
    result = run("task", "migrate", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "docker compose -f build/development/docker-compose.yaml run --rm migrate\n"
    )
    words = shlex.split(result.output)
    config = compose_config(compose_v2(), rendered / Path(words[3]).parent, profiles=("tasks",))
    assert config["services"][words[-1]]["command"] == ["manage", "migrate"]


def test_kubernetes_command_creates_the_job_and_follows_it(rendered: Path) -> None:
    result = run("task", "migrate", "--env", "prod")
    assert result.exit_code == 0, result.output
    path = "build/production/kubernetes/tasks/migrate.yaml"
    job: dict[str, Any] = yaml.safe_load((rendered / path).read_text())
    name = job["metadata"]["name"]
    assert result.output == (
        f"kubectl create -f {path} && "
        f"kubectl logs --namespace demo-production --follow job/{name}\n"
    )


def test_one_line_per_target_or_the_one_asked_for(rendered: Path, tmp_path: Path) -> None:
    lines = run("task", "migrate", "--env", "both").output.splitlines()
    assert [line.split()[0] for line in lines] == ["docker", "kubectl"]
    only = run("task", "migrate", "--env", "both", "--target", "kubernetes")
    assert only.output.splitlines() == lines[1:]
    elsewhere = run("task", "migrate", "--env", "both", "--out", str(tmp_path / "o u t"))
    assert f"-f '{tmp_path}/o u t/both/docker-compose.yaml' run" in elsewhere.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["migrat", "--env", "dev"],
            "envspec: unknown task 'migrat' (did you mean 'migrate'?); known: migrate",
        ),
        (
            ["migrate", "--env", "plain"],
            "envspec: environment 'plain' renders no target that runs tasks; its targets: dotenv",
        ),
        (
            ["migrate", "--env", "dev", "--target", "kubernetes"],
            "envspec: environment 'development' renders no target that runs tasks "
            "(kubernetes); its targets: compose",
        ),
        (["migrate", "--env", "nowhere"], "envspec: unknown environment 'nowhere'"),
    ],
)
def test_refusals(rendered: Path, arguments: list[str], message: str) -> None:
    result = run("task", *arguments)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(message), result.stderr


def test_task_whose_service_is_not_deployed(tmp_path: Path) -> None:
    spec = minimal(tasks={"migrate": {"service": "web", "command": ["migrate"]}})
    overlays = {"production": {"services": {"web": {"external": True}}}}
    root = write_spec(tmp_path / "spec", spec, overlays)
    result = run("task", "migrate", "--env", "prod", "--spec", str(root))
    assert result.exit_code == 1
    assert result.stderr == (
        "envspec: task 'migrate' runs with service 'web', which is not deployed in 'production'\n"
    )
