"""The corpus of bad specs: each case ends in exit 1 with its positioned message, no traceback.

A case is a file ``cases/invalid/<name>.yaml`` (an ``envspec.yaml`` whose ``# expect:`` lines give
the expected messages) or a folder with a spec and an ``expect.txt``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import run

CASES = Path(__file__).parent / "cases" / "invalid"


def _cases() -> list[Path]:
    return sorted(CASES.iterdir())


def _prepare(case: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "spec"
    if case.is_dir():
        shutil.copytree(case, root)
        expected = (root / "expect.txt").read_text(encoding="utf-8").splitlines()
        (root / "expect.txt").unlink()
        return root, expected
    root.mkdir()
    text = case.read_text(encoding="utf-8")
    (root / "envspec.yaml").write_text(text, encoding="utf-8")
    expected = [
        line.removeprefix("# expect: ")
        for line in text.splitlines()
        if line.startswith("# expect: ")
    ]
    return root, expected


@pytest.mark.parametrize("case", _cases(), ids=lambda path: path.stem)
def test_invalid_spec(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, expected = _prepare(case, tmp_path)
    assert expected, f"{case} states no expected message"
    monkeypatch.chdir(root)
    out = tmp_path / "out"
    for command in (["validate"], ["render", "--all", "--out", str(out)]):
        result = run(*command)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        for message in expected:
            assert message in result.output, f"expected {message!r} in:\n{result.output}"
        lines = [line for line in result.stderr.splitlines() if not line.startswith("envspec:")]
        assert all(line.count(":") >= 3 for line in lines), lines
        assert len(lines) == len(expected), f"not the stated problems:\n{result.output}"
    assert not out.exists(), "nothing is written when the spec is invalid"
    assert "canary" not in result.output, "a secret literal was repeated in a message"
