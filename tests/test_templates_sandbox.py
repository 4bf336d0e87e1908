"""A spec's own templates run in Jinja's immutable sandbox: they cannot run code, and any way they
fail at render time is a positioned problem at the template's file and line, never a traceback or
a value repeated."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from envspec import cache
from tests.helpers import minimal, run, write_spec


def _spec_with_template(tmp_path: Path, text: str | bytes) -> Path:
    spec = minimal(variables={"GREETING": {"default": "hello"}, "TOKEN": {"secret": True}})
    spec["environments"] = {"development": {"targets": ["dotenv"], "local": True}}
    root = write_spec(tmp_path / "spec", spec, {"development": {"variables": {"TOKEN": "canary"}}})
    folder = root / "templates" / "dotenv"
    folder.mkdir(parents=True)
    if isinstance(text, str):
        (folder / "env.j2").write_text(text, encoding="utf-8")
    else:
        (folder / "env.j2").write_bytes(text)
    return root


def _render(root: Path) -> str:
    result = run("render", "--all", "--spec", str(root))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert "canary" not in result.output
    assert not (root / "build").exists()
    return result.output


def test_a_template_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    root = _spec_with_template(
        tmp_path,
        "# ours\n{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}\n",
    )
    output = _render(root)
    assert "templates/dotenv/env.j2:2:1: template: access to attribute '__init__'" in output
    assert not marker.exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("a\n{{ 1 // 0 }}\n", "fails when rendered: ZeroDivisionError (division by zero)"),
        ("a\n\n{{ 1 + 'x' }}\n", "fails when rendered: TypeError"),
        ("a\n{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}\n", "calls nested deeper than 100"),
        ("a\n{{ 'x' * 10 ** 9 }}\n", "'*' would make more than 1000000 items"),
        ("a\n{{ 2 ** 10000000 }}\n", "'**' would make a number of more than 1000000 bits"),
        ("a\n{% include '../envspec.yaml' %}\n", "no template '../envspec.yaml'"),
        ("a\n{% include '/etc/passwd' %}\n", "no template '/etc/passwd'"),
        ("{% for v in variables %}{{ variables[v.value] }}{% endfor %}", "undefined: an attribute"),
        ("a\n{% include 'dotenv/env.j2' %}\n", "fails when rendered: RecursionError"),
    ],
    ids=[
        "zero-division",
        "type-error",
        "recursive-macro",
        "string-bomb",
        "power-bomb",
        "include-outside",
        "include-absolute",
        "undefined-key-is-a-value",
        "recursive-include",
    ],
)
def test_render_time_failures_are_positioned(tmp_path: Path, text: str, message: str) -> None:
    output = _render(_spec_with_template(tmp_path, text))
    line = text.count("\n", 0, text.index("{{" if "{{" in text else "{%")) + 1
    assert f"templates/dotenv/env.j2:{line}:1: template: {message}" in output, output


def test_a_template_that_is_not_utf8_is_positioned(tmp_path: Path) -> None:
    root = _spec_with_template(tmp_path, b"# ours\nGREETING=\xff\n")
    output = _render(root)
    assert "templates/dotenv/env.j2:2:10: template: not UTF-8: byte 0xff" in output


def test_a_template_symlinked_from_outside_is_refused(tmp_path: Path) -> None:
    root = _spec_with_template(tmp_path, "x")
    outside = tmp_path / "outside.j2"
    outside.write_text("{{ 1 }}")
    (root / "templates" / "dotenv" / "env.j2").unlink()
    (root / "templates" / "dotenv" / "env.j2").symlink_to(outside)
    assert "templates/dotenv/env.j2:1:1: templates: leads outside templates/" in _render(root)


def test_sandboxed_templates_are_compiled_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[str | None] = []
    compile_template = jinja2.Environment.compile

    def counting(self: jinja2.Environment, source: str, name: str | None = None, *a, **k):  # type: ignore[no-untyped-def]
        compiled.append(name)
        return compile_template(self, source, name, *a, **k)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    root = _spec_with_template(tmp_path, "# ours\n{{ variables | length }}\n")
    out = tmp_path / "out"
    assert run("render", "--all", "--spec", str(root), "--out", str(out)).exit_code == 0
    assert "dotenv/env.j2" in compiled
    folder = cache.folder("templates-sandboxed")
    assert folder is not None and any(folder.iterdir())
    compiled.clear()
    assert run("render", "--all", "--spec", str(root), "--out", str(out)).exit_code == 0
    assert compiled == [], "the second run loads compiled templates from the cache"
    assert (out / "development" / ".env.development").read_text() == "# ours\n2\n"
