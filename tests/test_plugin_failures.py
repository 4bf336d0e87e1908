"""A broken plug-in (a missing module, one that fails on import or in its constructor, an entry
point that is not a renderer) is a clear error naming it, never an internal error or a traceback:
``envspec targets`` lists it with why beside the others, then exits 1; ``envspec schema`` fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ENVSPEC = str(Path(sys.executable).parent / "envspec")

MODULES = {
    "at_import": 'raise RuntimeError("broken at import")\n',
    "bad_syntax": "def (:\n",
    "constructor": (
        "class Renderer:\n"
        "    def __init__(self):\n"
        '        raise ValueError("broken constructor")\n'
        "    def render(self):\n"
        "        pass\n"
    ),
    "not_renderer": "VALUE = 5\n",
}


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("no_such_module:Renderer", "ModuleNotFoundError: No module named 'no_such_module'"),
        ("at_import:Renderer", "RuntimeError: broken at import"),
        ("bad_syntax:Renderer", "SyntaxError: invalid syntax"),
        ("constructor:Renderer", "ValueError: broken constructor"),
        ("not_renderer:VALUE", "not_renderer:VALUE has no render method"),
    ],
)
def test_a_broken_plugin_is_named(tmp_path: Path, reference: str, message: str) -> None:
    dist = tmp_path / "broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[envspec.targets]\nbroken = {reference}\n")
    for module, code in MODULES.items():
        (tmp_path / f"{module}.py").write_text(code)
    environ = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def envspec(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ENVSPEC, command], capture_output=True, text=True, env=environ, check=False
        )

    schema = envspec("schema")
    assert schema.returncode == 1, schema.stderr
    assert schema.stdout == ""
    assert schema.stderr.startswith("envspec: target 'broken': ")
    assert message in schema.stderr
    assert len(schema.stderr.splitlines()) == 1
    listed = envspec("targets")
    assert listed.returncode == 1, listed.stderr
    *built_in, broken = listed.stdout.splitlines()
    assert [row.split()[1] for row in built_in] == ["environment"] * 3 + ["project"] * 2
    assert broken.startswith(f"broken      broken       broken 0.1 ({reference}): ")
    assert message in broken
    assert listed.stderr == "envspec: cannot load target 'broken' (its line says why)\n"
    assert "Traceback" not in schema.stderr + listed.stderr
