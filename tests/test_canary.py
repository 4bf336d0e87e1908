"""Guarantee 3 end to end: every command run as a user runs it (the console script, ``--debug``,
its own cache and temporary folders), and every byte it can reach searched for two canaries. A local
environment's secret literal appears only in that environment's files (its overlay and its output
folder); a production secret's literal, refused, appears only in the file that holds it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.apiserver import as_list, made_secret, served
from tests.helpers import dump, minimal, write_spec

ENVSPEC = str(Path(sys.executable).parent / "envspec")
LOCAL = "local-canary-3f9d2e61"
PRODUCTION = "sk_live_51CanaryProd7Hq2xVb9TzLmN4"
LARGE = "# " + "padding " * 40_000 + "\n"
"""A comment that makes a file large enough for the parse cache to keep it."""


def _spec(root: Path, production_token: Any) -> Path:
    spec = minimal(
        variables={
            "API_TOKEN": {"secret": True, "description": "Token of the payment API."},
            "LOG_LEVEL": {"default": "INFO"},
        }
    )
    spec["services"]["web"]["variables"] = ["API_TOKEN", "LOG_LEVEL"]
    spec["services"]["worker"] = {
        "image": "example/worker",
        "version": "1.0.0",
        "variables": ["API_TOKEN", "LOG_LEVEL"],
        "values": {"LOG_LEVEL": "DEBUG"},
    }
    spec["environments"] = {
        "development": {"targets": ["dotenv", "compose", "kubernetes"], "local": True},
        "staging": {"targets": ["kubernetes"], "secrets": {"mode": "skeleton"}},
        "production": {
            "targets": ["dotenv", "compose", "kubernetes"],
            "secrets": {"mode": "external-secrets", "store": "vault-backend"},
        },
    }
    return write_spec(
        root,
        LARGE + dump(spec),
        {
            "development": {
                "variables": {"API_TOKEN": LOCAL},
                "services": {"worker": {"values": {"API_TOKEN": f"{LOCAL}-worker"}}},
            },
            "staging": {"variables": {"API_TOKEN": {"secret": "k8s://payments#token"}}},
            "production": LARGE
            + dump(
                {
                    "variables": {"API_TOKEN": production_token},
                    "services": {"worker": {"values": {"API_TOKEN": production_token}}},
                }
            ),
        },
    )


class Runner:
    """Runs the console script with the home, cache and temporary folders inside the test's own,
    and keeps every byte each command printed."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.printed: list[tuple[list[str], bytes]] = []
        self.environ = dict(os.environ)
        for variable, folder in (("HOME", "home"), ("XDG_CACHE_HOME", "cache"), ("TMPDIR", "tmp")):
            (tmp_path / folder).mkdir()
            self.environ[variable] = str(tmp_path / folder)
        self.environ.pop("ENVSPEC_OUT", None)

    def __call__(
        self, *args: str, stdin: bytes = b"", code: int = 0
    ) -> subprocess.CompletedProcess[bytes]:
        command = [ENVSPEC, "--debug", *args]
        result = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            env=self.environ,
            cwd=self.tmp_path,
            check=False,
        )
        self.printed.append((command, result.stdout + result.stderr))
        assert result.returncode == code, (command, result.stderr.decode())
        return result


def _reachable(tmp_path: Path, own: list[Path]) -> Iterator[tuple[Path, bytes]]:
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file() and not any(path.is_relative_to(folder) for folder in own):
            yield path, path.read_bytes()


def _live(runner: Runner, spec: Path, environment: str, value: str) -> Path:
    """The environment as a cluster holds it, its Secrets' data set to ``value``."""
    stream = runner(
        "render", "--spec", str(spec), "-e", environment, "-t", "kubernetes", "--stdout"
    ).stdout
    live = []
    for document in yaml.safe_load_all(stream):
        if document["kind"] == "Secret":
            document["stringData"] = dict.fromkeys(document.get("stringData") or {}, value)
        live.append(served(document))
        if document["kind"] == "ExternalSecret":
            keys = [entry["secretKey"] for entry in document["spec"]["data"]]
            live.append(made_secret(document, dict.fromkeys(keys, value)))
        if document["kind"] == "Deployment":
            container = live[-1]["spec"]["template"]["spec"]["containers"][0]
            container["env"] = [{"name": "API_TOKEN", "value": value}]
    path = spec.parent / f"live-{environment}.json"
    path.write_text(as_list(live), encoding="utf-8")
    return path


def _every_command(runner: Runner, spec: Path, out: Path) -> None:
    at = ["--spec", str(spec)]
    for environment, value in (("production", PRODUCTION), ("development", LOCAL)):
        live = _live(runner, spec, environment, value)
        for output_format in ("text", "json"):
            drift = runner(
                "verify",
                *at,
                "-e",
                environment,
                "--from",
                str(live),
                "--format",
                output_format,
                code=1,
            )
            assert b"API_TOKEN" in drift.stdout
        runner("verify", *at, "-e", environment, "--from", "-", stdin=live.read_bytes(), code=1)
    for output_format in ("text", "json"):
        runner("validate", *at, "--format", output_format)
    runner("render", *at, "--all", "--out", str(out))
    runner("render", *at, "--all", "--out", str(out), "--check")
    for environment in ("staging", "production"):
        runner("render", *at, "--env", environment, "--target", "kubernetes", "--stdout")
    for output_format in ("text", "json", "markdown"):
        runner("diff", *at, "development", "production", "--format", output_format)
        runner("diff", *at, "staging", "production", "--format", output_format)
        runner("parity", *at, "--format", output_format)
    for output_format in ("text", "json"):
        runner("explain", *at, "API_TOKEN", "--format", output_format)
    runner("targets")
    runner("argocd-plugin")
    runner("schema")


def test_a_local_literal_stays_in_its_environment(tmp_path: Path) -> None:
    spec = _spec(tmp_path / "spec", {"secret": "vault://payments/production#token"})
    out = tmp_path / "out"
    runner = Runner(tmp_path)
    _every_command(runner, spec, out)
    assert (out / ".envspec-lock.json").is_file()
    assert LOCAL.encode() in (out / "development" / ".env.development").read_bytes()
    assert any((tmp_path / "cache").rglob("*")), "the parse cache was not exercised"
    for command, printed in runner.printed:
        assert b"Traceback" not in printed, (command, printed.decode())
        if "--stdout" not in command or "development" not in command:
            assert LOCAL.encode() not in printed, (command, printed.decode())
    own = [spec / "environments" / "development.yaml", out / "development"]
    for path, data in _reachable(tmp_path, own):
        if path.name != "live-development.json":
            assert LOCAL.encode() not in data, path
        assert PRODUCTION.encode() not in data or path.name == "live-production.json", path


def test_a_refused_production_literal_is_nowhere_else(tmp_path: Path) -> None:
    spec = _spec(tmp_path / "spec", PRODUCTION)
    out = tmp_path / "out"
    runner = Runner(tmp_path)
    at = ["--spec", str(spec)]
    commands = [
        ["validate"],
        ["validate", "--format", "json"],
        ["render", "--all", "--out", str(out)],
        ["render", "--all", "--out", str(out), "--check"],
        ["render", "--env", "production", "--target", "kubernetes", "--stdout"],
        ["diff", "development", "production"],
        ["diff", "staging", "production", "--format", "json"],
        ["parity", "--format", "markdown"],
        ["explain", "API_TOKEN"],
        ["explain", "API_TOKEN", "--format", "json"],
        ["verify", "--env", "production", "--from", str(spec / "envspec.yaml")],
        ["var", "set", "LOG_LEVEL", "production=WARNING"],
        ["var", "add", "OTHER_TOKEN", "--secret", "--default", PRODUCTION],
    ]
    for command in commands:
        split = 2 if command[0] == "var" else 1
        result = runner(*command[:split], *at, *command[split:], code=1)
        assert b"API_TOKEN" in result.stdout + result.stderr, command
    for command, printed in runner.printed:
        assert b"Traceback" not in printed, (command, printed.decode())
        assert PRODUCTION.encode() not in printed, (command, printed.decode())
    assert not out.exists()
    for path, data in _reachable(tmp_path, [spec / "environments" / "production.yaml"]):
        assert PRODUCTION.encode() not in data, path


def test_an_imported_production_literal_stays_out_of_the_spec(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    compose = {"services": {"web": {"image": "example/web:1.0", "environment": ["API_TOKEN"]}}}
    (project / "compose.yaml").write_text(dump(compose), encoding="utf-8")
    (project / ".env").write_text(f"API_TOKEN={LOCAL}\n", encoding="utf-8")
    (project / ".env.production").write_text(f"API_TOKEN={PRODUCTION}\n", encoding="utf-8")
    runner = Runner(tmp_path)
    spec = tmp_path / "spec"
    result = runner(
        "init",
        "--spec",
        str(spec),
        "--from-compose",
        str(project / "compose.yaml"),
        "--env-file",
        str(project / ".env"),
        "--env-file",
        str(project / ".env.production"),
    )
    assert result.returncode == 0, result.stderr.decode()
    assert LOCAL in (spec / "environments" / "development.yaml").read_text(encoding="utf-8")
    for output_format in ("text", "json"):
        runner("validate", "--spec", str(spec), "--format", output_format)
    for command, printed in runner.printed:
        assert b"Traceback" not in printed, (command, printed.decode())
        assert LOCAL.encode() not in printed, (command, printed.decode())
        assert PRODUCTION.encode() not in printed, (command, printed.decode())
    own = [project, spec / "environments" / "development.yaml"]
    for path, data in _reachable(tmp_path, own):
        assert LOCAL.encode() not in data, path
        assert PRODUCTION.encode() not in data, path
    assert json.loads(runner("validate", "--spec", str(spec), "--format", "json").stdout)["valid"]
