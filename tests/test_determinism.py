"""Guarantee 5: byte-identical output across processes, hash seeds, locales and time zones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO


def _render(out: Path, seed: str, locale: str, zone: str) -> dict[str, bytes]:
    environment = {
        **os.environ,
        "PYTHONHASHSEED": seed,
        "LC_ALL": locale,
        "LANG": locale,
        "TZ": zone,
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "envspec",
            "render",
            "--all",
            "--spec",
            str(REPO),
            "--out",
            str(out),
        ],
        check=True,
        env=environment,
        capture_output=True,
    )
    return {
        str(path.relative_to(out)): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.name != ".envspec.lock"
    }


def test_same_bytes_in_two_processes(tmp_path: Path) -> None:
    first = _render(tmp_path / "a", "1", "C.UTF-8", "UTC")
    second = _render(tmp_path / "b", "4242", "C", "Pacific/Kiritimati")
    assert first.keys() == second.keys()
    assert first == second
