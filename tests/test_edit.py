"""`envspec var add|set|rm` edit the spec in place: only the intended lines change."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO, run
from tests.readers import python_dotenv


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    root.mkdir()
    shutil.copy(REPO / "envspec.yaml", root / "envspec.yaml")
    shutil.copytree(REPO / "environments", root / "environments")
    return root


def _changes(before: str, after: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def _texts(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.yaml"))}


def test_add_keeps_every_other_line(shop: Path) -> None:
    before = _texts(shop)
    result = run(
        "var",
        "add",
        "STRIPE_WEBHOOK_SECRET",
        "--secret",
        "--description",
        "Webhook # secret",
        "--service",
        "backend",
        "--service",
        "worker",
        "--set",
        "dev=whsec_dev-$1",
        "--set",
        "prod=vault://shop/production/stripe#webhook",
        "--set",
        "staging=vault://shop/staging/stripe#webhook",
        "--render",
        "--spec",
        str(shop),
    )
    assert result.exit_code == 0, result.output
    after = _texts(shop)
    removed, added = _changes(before["envspec.yaml"], after["envspec.yaml"])
    assert removed == ["       STRIPE_PUBLISHABLE_KEY, SENTRY_DSN]"]
    assert added == [
        "       STRIPE_PUBLISHABLE_KEY, SENTRY_DSN, STRIPE_WEBHOOK_SECRET]",
        '  STRIPE_WEBHOOK_SECRET: {secret: true, description: "Webhook # secret"}',
    ]
    assert _changes(
        before["environments/production.yaml"], after["environments/production.yaml"]
    ) == ([], ['  STRIPE_WEBHOOK_SECRET: {secret: "vault://shop/production/stripe#webhook"}'])
    assert "# Laptops: every backing service" in after["environments/development.yaml"]
    env = python_dotenv(shop / "build" / "development" / ".env.development")
    assert env["STRIPE_WEBHOOK_SECRET"] == "whsec_dev-$1"
    assert "written" in result.output


def test_set_replaces_one_value_and_keeps_comments(shop: Path) -> None:
    overlay = shop / "environments" / "production.yaml"
    overlay.write_text(
        overlay.read_text().replace("LOG_LEVEL: WARNING", "LOG_LEVEL: WARNING  # noisy")
    )
    before = overlay.read_text()
    result = run("var", "set", "LOG_LEVEL", "prod=ERROR", "--spec", str(shop))
    assert result.exit_code == 0, result.output
    assert _changes(before, overlay.read_text()) == (
        ["  LOG_LEVEL: WARNING  # noisy"],
        ["  LOG_LEVEL: ERROR  # noisy"],
    )


@pytest.mark.parametrize("service", [[], ["--service", "backend"]], ids=["variable", "service"])
def test_set_over_a_quoted_value_holding_a_hash_leaves_none_of_it(
    shop: Path, service: list[str]
) -> None:
    """A quoted value may hold `` #``: that is the value's, not a comment to keep."""
    overlay = shop / "environments" / "production.yaml"
    for value in ("'it is' #1", 'say "a # b"', "done"):
        result = run("var", "set", "ENVIRONMENT", *service, f"prod={value}", "--spec", str(shop))
        assert result.exit_code == 0, result.output
    overlay.write_text(
        overlay.read_text().replace("ENVIRONMENT: done", "ENVIRONMENT: 'a # b' # kept")
    )
    result = run("var", "set", "ENVIRONMENT", *service, "prod=done", "--spec", str(shop))
    assert result.exit_code == 0, result.output
    lines = [line for line in overlay.read_text().splitlines() if "ENVIRONMENT" in line]
    assert lines == (
        ["  ENVIRONMENT: production", "      ENVIRONMENT: done # kept"]
        if service
        else ["  ENVIRONMENT: done # kept"]
    )


def test_rm_removes_everywhere(shop: Path) -> None:
    result = run("var", "rm", "STRIPE_PUBLISHABLE_KEY", "--spec", str(shop))
    assert result.exit_code == 0, result.output
    for text in _texts(shop).values():
        assert "STRIPE_PUBLISHABLE_KEY" not in text
    assert run("validate", "--spec", str(shop)).exit_code == 0


def test_rm_removes_services_own_values_and_overlay_lists_too(shop: Path) -> None:
    development = shop / "environments" / "development.yaml"
    development.write_text(
        development.read_text()
        + "services:\n  minio:\n    variables: [MINIO_ROOT_USER, LOG_LEVEL, MINIO_ROOT_PASSWORD]\n"
    )
    result = run(
        "var", "set", "LOG_LEVEL", "--service", "backend", "dev=ERROR", "--spec", str(shop)
    )
    assert result.exit_code == 0, result.output
    production = shop / "environments" / "production.yaml"
    before = production.read_text()
    result = run("var", "rm", "LOG_LEVEL", "--spec", str(shop))
    assert result.exit_code == 0, result.output
    for name, text in _texts(shop).items():
        assert "LOG_LEVEL" not in text, name
    assert development.read_text().endswith(
        "services:\n  minio:\n    variables: [MINIO_ROOT_USER, MINIO_ROOT_PASSWORD]\n"
    )
    assert _changes(before, production.read_text()) == (
        [
            "  LOG_LEVEL: WARNING",
            "    values: {LOG_LEVEL: INFO}   # the worker logs each task it runs; the backend "
            "stays at WARNING",
        ],
        [],
    )
    assert run("validate", "--spec", str(shop)).exit_code == 0


def test_invalid_edit_writes_nothing(shop: Path) -> None:
    before = _texts(shop)
    result = run(
        "var",
        "add",
        "API_KEY",
        "--secret",
        "--set",
        "prod=canary-literal-8a7b",
        "--spec",
        str(shop),
    )
    assert result.exit_code == 1
    assert "environments/production.yaml" in result.output
    assert "'API_KEY' is secret" in result.output
    assert "canary" not in result.output and "envspec-edit-" not in result.output
    assert _texts(shop) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["var", "rm", "LOG_LEVL"], "unknown variable 'LOG_LEVL' (did you mean 'LOG_LEVEL'?)"),
        (["var", "add", "DEBUG"], "variable 'DEBUG' already exists"),
        (["var", "add", "bad-name"], "invalid name 'bad-name'"),
        (["var", "add", "NEW", "--service", "backnd"], "unknown service 'backnd'"),
        (["var", "set", "DEBUG", "nowhere=1"], "unknown environment 'nowhere'"),
    ],
)
def test_edit_errors(shop: Path, args: list[str], message: str) -> None:
    before = _texts(shop)
    result = run(*args, "--spec", str(shop))
    assert result.exit_code == 1
    assert message in result.output
    assert _texts(shop) == before


def test_edit_of_a_broken_spec_reports_its_problems(shop: Path) -> None:
    base = shop / "envspec.yaml"
    base.write_text(base.read_text().replace("project: shop", "project: shop\nproject: twice"))
    before = _texts(shop)
    result = run("var", "add", "NEW", "--default", "1", "--spec", str(shop))
    assert result.exit_code == 1
    assert "envspec.yaml:5:1: project: duplicate key 'project' (first defined at line 4)" in (
        result.output
    )
    assert "internal error" not in result.output
    assert _texts(shop) == before


@pytest.mark.parametrize(
    "command",
    [
        ["var", "add", "NEW_FLAG", "--default", "on"],
        ["var", "set", "LOG_LEVEL", "dev=WARNING"],
        ["var", "rm", "SENTRY_DSN"],
    ],
    ids=["add", "set", "rm"],
)
def test_edits_render_where_out_says(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    out = tmp_path / "elsewhere"
    result = run(*command, "--render", "--out", str(out), "--spec", str(shop))
    assert result.exit_code == 0, result.output
    assert not (shop / "build").exists(), "nothing in the default folder"
    assert (out / ".envspec-lock.json").is_file()
    development = python_dotenv(out / "development" / ".env.development")
    expected = {
        "add": ("NEW_FLAG", "on"),
        "set": ("LOG_LEVEL", "WARNING"),
        "rm": ("SENTRY_DSN", None),
    }
    name, value = expected[command[1]]
    assert development.get(name) == value
    from_environment = tmp_path / "from-environment"
    monkeypatch.setenv("ENVSPEC_OUT", str(from_environment))
    result = run("var", "set", "LOG_LEVEL", "dev=INFO", "--render", "--spec", str(shop))
    assert result.exit_code == 0, result.output
    assert (from_environment / ".envspec-lock.json").is_file()
    assert not (shop / "build").exists()


def test_out_without_render_is_a_usage_error(shop: Path, tmp_path: Path) -> None:
    before = _texts(shop)
    result = run(
        "var", "set", "LOG_LEVEL", "dev=DEBUG", "--out", str(tmp_path / "x"), "--spec", str(shop)
    )
    assert result.exit_code == 2
    assert "--out is where --render writes" in result.output
    assert _texts(shop) == before


def test_add_keeps_crlf_line_ends(shop: Path) -> None:
    files = [shop / "envspec.yaml", *sorted((shop / "environments").glob("*.yaml"))]
    for path in files:
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    result = run(
        "var", "add", "NEW_FLAG", "--default", "on", "--set", "prod=off", "--spec", str(shop)
    )
    assert result.exit_code == 0, result.output
    for path in files:
        raw = path.read_bytes()
        assert raw.count(b"\n") == raw.count(b"\r\n"), f"{path.name} has a bare line feed"
    assert b"NEW_FLAG" in (shop / "envspec.yaml").read_bytes()
    assert b"NEW_FLAG: " in (shop / "environments" / "production.yaml").read_bytes()
