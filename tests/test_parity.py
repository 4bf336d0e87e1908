"""Parity: declared, expected and undeclared differences; validate and diff fail on undeclared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from envspec import api, parity
from tests.helpers import REPO, minimal, run, write_spec


def _example(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(REPO / "environments", root / "environments")
    shutil.copy(REPO / "envspec.yaml", root / "envspec.yaml")
    return root


def test_example_diff_shows_the_intended_differences(tmp_path: Path) -> None:
    result = run("diff", "dev", "prod", "--format", "json", "--spec", str(_example(tmp_path)))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["left"] == "development" and report["right"] == "production"
    assert report["undeclared"] == 0
    by_path = {d["path"]: d for d in report["differences"]}
    assert by_path["services.search.image"]["status"] == "declared"
    assert "OpenSearch" in by_path["services.search.image"]["reason"]
    assert by_path["services.backend.replicas"] == {
        "path": "services.backend.replicas",
        "left": "1",
        "right": "4-10 (cpu 70%)",
        "status": "expected",
        "reason": "",
    }
    assert by_path["variables.DEBUG"]["status"] == "expected"
    assert by_path["variables.SECRET_KEY.source"]["right"] == "vault reference"
    assert "django-insecure" not in result.output, "a local secret literal is never shown"
    assert by_path["variables.MINIO_ROOT_PASSWORD"]["left"] == "<literal secret>"


def test_changed_postgres_version_fails_validate_and_diff(tmp_path: Path) -> None:
    root = _example(tmp_path)
    overlay = root / "environments" / "production.yaml"
    text = overlay.read_text().replace(
        'postgres: {external: true, version: "15.5"', 'postgres: {external: true, version: "16.1"'
    )
    overlay.write_text(text)
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 1
    assert (
        "environments/production.yaml:24:39: services.postgres.version: 'development' has 15.5 and "
        "'production' has 16.1, and no overlay declares it; fix the spec or add to "
        "environments/production.yaml: differences: "
        '[{path: services.postgres.version, reason: "..."}]'
    ) in result.stderr.replace(str(root) + "/", "")
    diff = run("diff", "dev", "prod", "--format", "markdown", "--spec", str(root))
    assert diff.exit_code == 1
    assert "| `services.postgres.version` | 15.5 | 16.1 | UNDECLARED |" in diff.output
    overlay.write_text(
        text + "  - path: services.postgres.version\n    reason: Managed PostgreSQL 16 pilot.\n"
    )
    assert run("validate", "--spec", str(root)).exit_code == 0
    assert run("diff", "dev", "prod", "--spec", str(root)).exit_code == 0


def test_stale_declaration_is_a_warning(tmp_path: Path) -> None:
    root = _example(tmp_path)
    overlay = root / "environments" / "production.yaml"
    overlay.write_text(overlay.read_text() + "  - {path: services.redis.image, reason: gone}\n")
    result = run("validate", "--spec", str(root))
    assert result.exit_code == 0
    assert "declared difference 'services.redis.image' no longer exists" in result.stderr


def _schema(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((REPO / "schema" / name).read_text()))


def _pair(tmp_path: Path) -> Path:
    """Two environments whose parity is easy to count by hand."""
    spec = minimal(
        services={
            "web": {"image": "example/web", "version": "1.0.0", "ports": [80]},
            "db": {"image": "postgres", "version": "15.5"},
        },
        variables={
            "SAME": {"default": "x"},
            "VALUE": {"default": "a"},
            "TOKEN": {"secret": True},
            "MODE": {"parity": "strict", "default": "fast"},
        },
    )
    overlays: dict[str, dict[str, Any]] = {
        "development": {"variables": {"TOKEN": "canary-dev-token-1d2c"}},
        "production": {
            "variables": {"VALUE": "b", "TOKEN": {"secret": "vault://app/prod#token"}},
            "services": {"db": {"external": True}},
        },
    }
    return write_spec(tmp_path / "spec", spec, overlays)


def test_score_counted_by_hand(tmp_path: Path) -> None:
    result = run("parity", "--format", "json", "--spec", str(_pair(tmp_path)))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    _schema("parity.schema.json").validate(report)
    rows = {row["component"]: (row["verdict"], row["score"]) for row in report["rows"]}
    assert rows == {
        "services.db": ("expected", 95),
        "services.web": ("same", 100),
        "orchestration": ("expected", 60),
        "variables": ("same", 100),
        "secrets": ("expected", 70),
    }
    assert report["score"] == 85.0, "(95 + 100 + 60 + 100 + 70) / 5"
    assert "canary" not in result.output
    gate = run("parity", "--min-score", "85.1", "--spec", str(_pair(tmp_path / "again")))
    assert gate.exit_code == 1 and "below 85.1%" in gate.output


def test_strict_variable_difference_is_undeclared(tmp_path: Path) -> None:
    root = _pair(tmp_path)
    overlay = root / "environments" / "production.yaml"
    text = overlay.read_text().replace("variables:\n", "variables:\n  MODE: safe\n", 1)
    overlay.write_text(text)
    result = run("diff", "dev", "prod", "--format", "json", "--spec", str(root))
    assert result.exit_code == 1
    report = json.loads(result.output)
    _schema("diff.schema.json").validate(report)
    strict = next(d for d in report["differences"] if d["path"] == "variables.MODE")
    assert strict == {
        "path": "variables.MODE",
        "left": "'fast'",
        "right": "'safe'",
        "status": "undeclared",
        "reason": "",
    }
    token = next(d for d in report["differences"] if d["path"] == "variables.TOKEN.source")
    assert token["left"] == "literal" and token["right"] == "vault reference"
    for output_format in ("text", "markdown", "json"):
        shown = run("diff", "dev", "prod", "--format", output_format, "--spec", str(root)).output
        assert "canary" not in shown
    assert "variables.MODE: 'development' has 'fast'" in run("validate", "--spec", str(root)).output


def test_explain_masks_secrets_and_names_files(tmp_path: Path) -> None:
    root = _pair(tmp_path)
    result = run("explain", "TOKEN", "--format", "json", "--spec", str(root))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["environments"]["development"]["value"] == "<literal secret>"
    assert report["environments"]["production"]["value"] == "vault://app/prod#token"
    assert report["environments"]["production"]["origin"].endswith(
        "environments/production.yaml:4:5"
    )
    assert report["services"] == ["db", "web"]
    assert "production/kubernetes/secret.yaml" in report["files"]
    assert "development/.env.development" in report["files"]
    assert "canary" not in result.output
    text = run("explain", "TOKEN", "--spec", str(root)).output
    assert "canary" not in text and "received by: db, web" in text
    unknown = run("explain", "TOKN", "--spec", str(root))
    assert unknown.exit_code == 1
    assert "unknown variable 'TOKN' (did you mean 'TOKEN'?)" in unknown.output


def test_the_parity_check_finds_every_difference_a_full_diff_judges(tmp_path: Path) -> None:
    """validate compares only what can differ other than as expected; it must find the same
    declared and undeclared differences as a full comparison."""
    spec = minimal(
        variables={
            "GREETING": {"default": "hello"},
            "REGION": {"default": "eu", "parity": "strict"},
            "FEATURE": {"default": "on"},
            "TRACING": {"required": False},
        }
    )
    overlays: dict[str, dict[str, Any]] = {
        "development": {"variables": {"GREETING": "hi", "TRACING": "yes"}},
        "production": {
            "variables": {"REGION": "us", "FEATURE": "off"},
            "services": {"web": {"version": "2.0.0"}},
            "differences": [{"path": "services.web.version", "reason": "canary"}],
        },
    }
    projects = [api.load(write_spec(tmp_path / "spec", spec, overlays)), api.load(REPO)]
    for project in projects:
        policy = project.bundle.base.parity
        full = parity.all_differences(project.environments, policy)
        judged = parity.all_differences(project.environments, policy, judged=True)
        for (a, b, every), (_, _, found) in zip(full, judged, strict=True):
            wanted = [d for d in every if d.status != "expected"]
            assert [d for d in found if d.status != "expected"] == wanted, (a.name, b.name)
    first = projects[0]
    judged = parity.all_differences(first.environments, first.bundle.base.parity, judged=True)
    statuses = {d.path: d.status for _, _, found in judged for d in found}
    assert statuses["variables.REGION"] == "undeclared"
    assert statuses["variables.TRACING"] == "declared"
    assert statuses["services.web.version"] == "declared"
    assert "variables.GREETING" not in statuses, "an expected difference is not even compared"
