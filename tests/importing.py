"""The compose corpus (tests/cases/compose/<case>/) and ``init --from-compose`` as tests run it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from click.testing import Result

from tests.helpers import run

CASES = Path(__file__).parent / "cases" / "compose"
CORPUS = sorted(case.name for case in CASES.iterdir() if (case / "docker-compose.yml").is_file())


@dataclass(frozen=True)
class Imported:
    """A corpus case copied to ``source``, imported into ``spec`` and rendered for development."""

    source: Path
    spec: Path
    output: str
    """What ``init`` printed (the summary)."""

    @property
    def original(self) -> Path:
        return self.source / "docker-compose.yml"

    @property
    def rendered(self) -> Path:
        return self.spec / "build" / "development" / "docker-compose.yaml"


def init_from_compose(spec: Path, compose: Path, *env_files: Path) -> Result:
    args = ["init", "--spec", str(spec), "--from-compose", str(compose)]
    for env_file in env_files:
        args += ["--env-file", str(env_file)]
    return run(*args)


def import_case(case: str, tmp_path: Path) -> Imported:
    """Import ``case`` with its .env files (``.env`` first: development), then render
    development; both must succeed."""
    source = tmp_path / "source"
    shutil.copytree(CASES / case, source)
    spec = tmp_path / "spec"
    spec.mkdir()
    result = init_from_compose(spec, source / "docker-compose.yml", *sorted(source.glob(".env*")))
    assert result.exit_code == 0, result.output
    rendered = run("render", "--env", "development", "--spec", str(spec))
    assert rendered.exit_code == 0, rendered.output
    return Imported(source, spec, result.output)
