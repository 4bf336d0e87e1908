"""Parity: declared, expected and undeclared differences; validate and diff fail on undeclared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.helpers import REPO, run


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
        'postgres: {external: true, version: "15.5"}', 'postgres: {external: true, version: "16.1"}'
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
