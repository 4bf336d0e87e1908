"""``action.yml``: checked against the GitHub Action metadata schema, and its shell steps run
one after another as a runner runs them."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import BIN, REPO, run


def action() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    return document


def check_action(folder: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema on ``folder``'s action.yml, with its own copy of the GitHub Action
    metadata schema (vendored in the package, not downloaded)."""
    return subprocess.run(
        [f"{BIN}/check-jsonschema", "--builtin-schema", "vendor.github-actions", "action.yml"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_action_passes_the_github_action_metadata_schema() -> None:
    result = check_action(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    metadata = action()
    assert metadata["runs"]["using"] == "composite"
    assert {"spec", "environments", "min-score"} <= set(metadata["inputs"])


def test_the_schema_refuses_a_broken_action(tmp_path: Path) -> None:
    broken = action()
    del broken["runs"]["steps"][1]["shell"]  # a composite run step must name its shell
    (tmp_path / "action.yml").write_text(yaml.safe_dump(broken))
    assert check_action(tmp_path).returncode == 1


EXPRESSION = re.compile(r"\$\{\{\s*inputs\.([a-z-]+)\s*\}\}")


def run_action(workspace: Path, inputs: dict[str, str]) -> tuple[list[int], str]:
    """The action's shell steps, one after another as a runner runs them (stopping at the first
    that fails), with envspec already installed; returns their exit codes and the summary."""
    metadata = action()
    values = {name: spec.get("default", "") for name, spec in metadata["inputs"].items()}
    values.update(inputs)
    summary = workspace / "summary.md"
    summary.write_text("")
    codes = []
    for step in metadata["runs"]["steps"]:
        if "run" not in step or step["name"] == "Install envspec":
            continue
        variables = {
            key: EXPRESSION.sub(lambda match: values[match.group(1)], value)
            for key, value in step.get("env", {}).items()
        }
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], "inputs reach scripts through env only"
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", step["run"]],
            cwd=workspace,
            env={
                "PATH": f"{BIN}:{os.environ['PATH']}",
                "HOME": str(workspace),
                "GITHUB_STEP_SUMMARY": str(summary),
                "GITHUB_ACTION_PATH": str(REPO),
                **variables,
            },
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        codes.append(result.returncode)
        if result.returncode != 0:
            break
    return codes, summary.read_text()


def test_action_steps_pass_and_report_parity(example_copy: Path) -> None:
    workspace = example_copy.parent
    assert run("render", "--all", "--spec", str(example_copy)).exit_code == 0
    codes, summary = run_action(workspace, {"spec": "deploy", "min-score": "10"})
    assert codes == [0, 0, 0]
    report = run("parity", "--format", "markdown", "--spec", str(example_copy)).stdout
    assert summary == f"## envspec parity\n\n{report}"


def test_action_steps_for_some_environments(example_copy: Path) -> None:
    workspace = example_copy.parent
    assert run("render", "--env", "staging", "--spec", str(example_copy)).exit_code == 0
    codes, _ = run_action(workspace, {"spec": "deploy", "environments": "stag"})
    assert codes == [0, 0, 0]
    codes, _ = run_action(workspace, {"spec": "deploy", "environments": "stag,prod"})
    assert codes == [0, 1], "production's files were never rendered"


def test_action_fails_below_the_minimum_score_with_the_report(example_copy: Path) -> None:
    workspace = example_copy.parent
    assert run("render", "--all", "--spec", str(example_copy)).exit_code == 0
    codes, summary = run_action(workspace, {"spec": "deploy", "min-score": "100"})
    assert codes == [0, 0, 1]
    assert "| " in summary and "## envspec parity" in summary


def test_action_fails_on_a_stale_render(example_copy: Path) -> None:
    workspace = example_copy.parent
    assert run("render", "--all", "--spec", str(example_copy)).exit_code == 0
    overlay = example_copy / "environments" / "staging.yaml"
    overlay.write_text(overlay.read_text().replace("pk_test_51Hstaging", "pk_test_51Hchanged"))
    codes, summary = run_action(workspace, {"spec": "deploy"})
    assert codes == [0, 1]
    assert summary == ""
