"""Output that programs read stays whole: text tables piped or on a terminal, JSON on failure."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import minimal, run, write_spec

LONG_VALUE = "https://" + "very-long-host-name." * 12 + "example.com/path?query=" + "x" * 60
REASON = "production reads this from the managed service, which a workstation does not have " * 2


def _spec_with_long_rows(tmp_path: Path) -> Path:
    spec = minimal(
        variables={
            "ENDPOINT": {"default": "short", "parity": "strict"},
            "MULTI": {"default": "a", "parity": "strict"},
        }
    )
    overlays = {
        "production": {
            "variables": {"ENDPOINT": LONG_VALUE, "MULTI": "first\nsecond"},
            "differences": [{"path": "variables.ENDPOINT", "reason": REASON.strip()}],
        }
    }
    return write_spec(tmp_path / "spec", spec, overlays)


def test_piped_diff_has_one_whole_line_per_difference(tmp_path: Path) -> None:
    root = _spec_with_long_rows(tmp_path)
    result = run("diff", "dev", "prod", "--spec", str(root))
    lines = result.output.splitlines()
    endpoint = [line for line in lines if line.startswith("variables.ENDPOINT")]
    assert len(endpoint) == 1, result.output
    assert LONG_VALUE in endpoint[0] and REASON.strip() in endpoint[0]
    multi = [line for line in lines if line.startswith("variables.MULTI")]
    assert len(multi) == 1 and "first\\nsecond" in multi[0], result.output
    assert "…" not in result.output
    undeclared = [line for line in lines if "UNDECLARED" in line]
    assert [line.split()[0] for line in undeclared] == ["variables.MULTI"]


def test_piped_parity_has_one_line_per_row(tmp_path: Path) -> None:
    root = _spec_with_long_rows(tmp_path)
    result = run("parity", "--spec", str(root))
    lines = result.output.splitlines()
    rows = [line for line in lines if line.startswith(("services.", "variables."))]
    components = [line.split()[0] for line in rows]
    assert len(components) == len(set(components)), result.output
    assert "…" not in result.output


def _on_a_terminal(args: list[str], columns: int) -> str:
    """Run envspec with its stdout on a pseudo-terminal of ``columns`` columns."""
    leader, follower = pty.openpty()
    environment = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-m", "envspec", *args],
        stdout=follower,
        stderr=subprocess.DEVNULL,
        env=environment,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode()


def test_a_terminal_table_wraps_values_but_never_cuts_them(tmp_path: Path) -> None:
    root = _spec_with_long_rows(tmp_path)
    shown = _on_a_terminal(["diff", "dev", "prod", "--spec", str(root)], columns=80)
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80, shown
    assert "…" not in shown
    rows: list[list[str]] = []
    for line in lines:
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) != 4:
            continue
        if cells[0].startswith(("services.", "variables.")):
            rows.append(cells)
        elif rows:
            rows[-1] = [whole + part for whole, part in zip(rows[-1], cells, strict=True)]
    endpoint = next(row for row in rows if row[0] == "variables.ENDPOINT")
    assert endpoint[2] == repr(LONG_VALUE), "the whole value, wrapped"
    assert endpoint[3].replace(" ", "") == f"declared:{REASON.strip()}".replace(" ", "")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["diff", "dev", "nope"], "unknown environment 'nope'"),
        (["parity"], "no envspec.yaml"),
        (["explain", "NOPE"], "unknown variable 'NOPE'"),
        (["validate", "--env", "nope"], "unknown environment 'nope'"),
    ],
)
def test_json_on_stdout_when_a_command_fails(
    tmp_path: Path, command: list[str], message: str
) -> None:
    root = write_spec(tmp_path / "spec", minimal())
    spec = str(tmp_path / "empty") if command == ["parity"] else str(root)
    (tmp_path / "empty").mkdir()
    result = run(*command, "--spec", spec, "--format", "json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert message in payload["error"]
    assert ("valid" in payload) == (command[0] == "validate")


def test_json_lists_the_problems_of_an_invalid_spec(tmp_path: Path) -> None:
    spec = minimal()
    spec["services"]["web"]["replicas"] = "many"
    root = write_spec(tmp_path / "spec", spec)
    for command in (["diff", "dev", "prod"], ["parity"], ["explain", "GREETING"]):
        result = run(*command, "--spec", str(root), "--format", "json")
        assert result.exit_code == 1
        payload = json.loads(result.stdout)
        assert payload["error"] == "1 problem found; nothing was written"
        [problem] = payload["problems"]
        assert problem["path"] == "services.web.replicas"
