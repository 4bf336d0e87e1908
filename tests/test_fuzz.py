"""Mutated specs never crash `validate`: exit 0 or 1, a message, no traceback, well under 1 s."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import REPO, run

BASE = (REPO / "envspec.yaml").read_text(encoding="utf-8")
OVERLAY = (REPO / "environments" / "production.yaml").read_text(encoding="utf-8")
NOISE = st.sampled_from(
    [
        "",
        ":",
        "- ",
        "{",
        "}",
        "[",
        "]",
        "&a ",
        "*a",
        "\t",
        "  ",
        "\n",
        "'",
        '"',
        "#",
        "!!int ",
        "~",
        "null",
        "-1",
        "services",
        "latest",
        "{secret: x}",
        "\x00",
        "\ufeff",
        "%YAML 1.1\n",
    ]
)


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 12))
        text = text[:position] + draw(NOISE) + text[position + cut :]
    return text


@pytest.mark.slow
@settings(max_examples=120)
@given(mutated(BASE), mutated(OVERLAY))
def test_validate_never_crashes(
    tmp_path_factory: pytest.TempPathFactory, base: str, overlay: str
) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "envspec.yaml").write_text(base, encoding="utf-8", errors="surrogatepass")
    (root / "environments").mkdir()
    (root / "environments" / "production.yaml").write_text(overlay, encoding="utf-8")
    result = run("validate", "--spec", str(root))
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    if result.exit_code == 1:
        assert result.stderr.strip()
