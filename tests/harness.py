"""A renderer test harness: a target called directly on a spec built from a dict, and golden
folders per target (``tests/golden/targets/<target>/<case>/``; ``tests/golden/example/`` is the
bundled example's whole output).

Refresh the golden folders with ``ENVSPEC_UPDATE_GOLDEN=1 pytest tests/test_renderers.py``.
"""

from __future__ import annotations

import difflib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from envspec import api, targets
from envspec.render.base import Templates
from tests.helpers import write_spec

GOLDEN = Path(__file__).parent / "golden" / "targets"
UPDATE = os.environ.get("ENVSPEC_UPDATE_GOLDEN") == "1"


def render_target(
    folder: Path,
    target: str,
    base: Mapping[str, Any],
    overlays: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, str]:
    """The files ``target``'s renderer returns for the spec ``base`` (and ``overlays``), written
    into ``folder`` and resolved: every environment that lists it, or the whole spec for a
    project-wide target. Nothing is written to an output folder."""
    project = api.load(write_spec(folder, base, overlays))
    renderer = targets.get(target).renderer
    templates = Templates(project.templates_dir)
    if renderer.scope == "project":
        rendered = list(
            renderer.render(project.bundle.base, project.environments, project.defaults, templates)
        )
    else:
        rendered = [
            file
            for environment in project.environments.values()
            if target in environment.config.targets
            for file in renderer.render(environment, templates)
        ]
    return {file.path: file.content for file in rendered}


def assert_golden(target: str, case: str, files: Mapping[str, str]) -> None:
    """``files`` are those of ``tests/golden/targets/<target>/<case>/``; else fail with a diff."""
    folder = GOLDEN / target / case
    if UPDATE:
        shutil.rmtree(folder, ignore_errors=True)
        for name, content in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(content, encoding="utf-8")
    expected = {
        str(path.relative_to(folder)): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    assert sorted(files) == sorted(expected), f"golden/{target}/{case}: other files"
    for name, content in expected.items():
        if files[name] != content:
            diff = difflib.unified_diff(
                content.splitlines(),
                files[name].splitlines(),
                f"golden/{target}/{case}/{name}",
                name,
                lineterm="",
            )
            pytest.fail("\n".join(diff))
