"""Large spec files are cut into pieces that two processes parse at once. Joined, the pieces must
give exactly the whole file's data, or nothing (the loader then parses the file whole): for any
text, including the YAML that can carry on across a cut (quoted and block scalars, flow
collections, aliases, repeated keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envspec import loader
from envspec.errors import SpecError
from envspec.pieces import Piece, cut_text, join
from tests.helpers import minimal, write_spec

KEYS = st.sampled_from(["a", "b", "web", "x.y", "k_1", "a-b"])
STRAYS = st.sampled_from(["---", "...", "%YAML 1.1", "- item", "\tkey: 1", "--- !!map", "'q'"])
WORDS = st.sampled_from(["v", "1", "on", "null", "", "a b", "x: y", "'q'", "#c"])


def _scalar(word: str) -> str:
    return f" {word}" if word and not word.startswith(("#", "'")) else f" '{word}'"


@st.composite
def values(draw: st.DrawFn, indent: int) -> str:
    """A value for a key at ``indent``: inline, or on the lines below, in the shapes that can
    reach a line at the key's own indentation or less."""
    pad = " " * indent
    deeper = " " * (indent + 2)
    key, word = draw(KEYS), draw(WORDS)
    shape = draw(st.integers(0, 11))
    if shape == 0:
        return _scalar(word)
    if shape == 1:  # a block scalar whose lines look like keys
        return f" |\n{deeper}{key}: {word}\n{deeper}  more\n"
    if shape == 2:  # a quoted scalar carried on at the key's indentation, or at column 0
        return f' "{word}\n{draw(st.sampled_from([pad, ""]))}{key}: {word}"'
    if shape == 3:  # a flow mapping over lines that look like keys
        return f" {{\n{pad}{key}: 1,\n{deeper}{key}x: 2 }}"
    if shape == 4:
        return f" &{key.replace('.', '')} {{one: 1}}"
    if shape == 5:
        return f" *{key.replace('.', '')}"
    if shape == 6:  # an indentless sequence of mappings
        return f"\n{pad}- {key}: 1\n{pad}  {key}: 2"
    if shape == 7:  # a plain scalar carried on to the next, deeper line
        return f" {word or 'w'}\n{deeper}more words"
    if shape == 8:
        return f"\n{pad}# a comment\n\n{deeper}{key}:{_scalar(word)}"
    if shape == 9:  # a line indented less than the mapping it is in
        return f"\n{deeper}{key}: 1\n{' ' * (indent + 1)}{key}: 2"
    if shape == 10:
        return f" !!str {word or 'w'}"
    return f"\n{draw(STRAYS)}"


@st.composite
def texts(draw: st.DrawFn) -> str:
    lines = [draw(st.sampled_from(["", "# spec\n", "\n", "  lead: 1\n"]))]
    for _ in range(draw(st.integers(1, 5))):
        key = draw(KEYS)
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(STRAYS) + "\n")
        if draw(st.booleans()):
            lines.append(f"{key}:{draw(values(0))}\n")
            continue
        indent = draw(st.sampled_from([1, 2, 4]))
        children = [
            f"{' ' * indent}{draw(KEYS)}:{draw(values(indent))}\n"
            for _ in range(draw(st.integers(1, 6)))
        ]
        lines.append(f"{key}:{draw(st.sampled_from(['', '  # note', ' &m', ' |']))}\n")
        lines.extend(children)
    text = "".join(lines)
    return text.replace("\n", "\r\n") if draw(st.integers(0, 4)) == 0 else text


def _in_pieces(text: str, size: int) -> tuple[list[Piece], loader.Documents | None]:
    cut = cut_text(text, size)
    return cut, loader._joined([(piece, loader._parse_piece(piece)) for piece in cut])


@settings(max_examples=1500, deadline=None)
@given(texts(), st.integers(1, 24))
def test_pieces_join_to_the_whole_file_or_to_nothing(text: str, size: int) -> None:
    _, joined = _in_pieces(text, size)
    if joined is not None:
        assert joined == loader._fast_documents(text)


def _spec_text(services: int) -> str:
    lines = ["version: 1\n", "project: shop\n", "services:\n"]
    for index in range(services):
        lines += [f"  svc-{index}:\n", "    image: registry/app\n", "    variables:\n"]
        lines += [f"    - V{index}_{number}\n" for number in range(5)]
    lines.append("variables:\n")
    for index in range(services):
        lines += [f"  V{index}_{number}:\n    default: 'x {number}'\n" for number in range(5)]
    return "".join(lines)


def test_a_spec_is_cut_inside_its_large_mappings_and_joins_to_the_whole() -> None:
    text = _spec_text(200)
    cut, joined = _in_pieces(text, 2000)
    assert len(cut) > 20
    assert {piece.parent for piece in cut} == {None, "services", "variables"}
    assert all(piece.text.startswith(("  svc-", "  V", "variables:")) for piece in cut[1:])
    assert "".join(piece.text for piece in cut) == text
    assert joined == loader._fast_documents(text)


@pytest.mark.parametrize(
    ("tail", "why"),
    [
        ('  quoted: "one\n  two: three"\n', "a quoted scalar carried on across a cut"),
        ("  block: &shared {a: 1}\n  other: *shared\n", "an alias to an anchor before a cut"),
        ("  V0_0: again\n", "a key repeated after a cut"),
    ],
)
def test_what_crosses_a_cut_makes_the_pieces_refuse_to_join(tail: str, why: str) -> None:
    text = _spec_text(50) + tail
    cut, joined = _in_pieces(text, 1)
    assert len(cut) > 10, why
    assert joined is None, why


def test_a_piece_that_does_not_carry_on_its_parent_does_not_join() -> None:
    root = Piece(None, "a:\n  x: 1\n")
    assert join([root, Piece("a", "  y: 2\n")], [{"a": {"x": "1"}}, {}]) is None
    assert join([root, Piece("a", "  y: 2\n")], [{"a": {"x": "1"}}, {"b": {}}]) is None
    assert join([root, Piece("a", "  y: 2\n")], [{"a": "x"}, {"a": {"y": "2"}}]) is None
    assert join(
        [root, Piece("a", "  y: 2\nb: 3\n")], [{"a": {"x": "1"}}, {"a": {"y": "2"}, "b": "3"}]
    ) == {
        "a": {"x": "1", "y": "2"},
        "b": "3",
    }


def test_aliases_count_against_the_limit_across_pieces() -> None:
    items = ", ".join(["x"] * 10_000)
    half = "{0}: &{0} [{1}]\n{0}_uses: [*{0}, *{0}, *{0}]\n"
    first = half.format("a", items)
    text = first + half.format("b", items)
    assert loader._fast_documents(text) is None, "an alias bomb to the whole-file parse"
    cut, joined = _in_pieces(text, len(first))
    assert [piece.text[:2] for piece in cut] == ["a:", "b:"]
    assert all(loader._parse_piece(piece) is not None for piece in cut)
    assert joined is None


@pytest.fixture
def in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every spec file, however small, parsed in pieces by two processes."""
    monkeypatch.setattr(loader, "PARALLEL_PARSE_CHARS", 0)
    monkeypatch.setattr(loader, "PIECE_CHARS", 300)
    monkeypatch.setenv("ENVSPEC_NO_CACHE", "1")
    monkeypatch.delenv("ENVSPEC_JOBS", raising=False)


def _spec(root: Path, extra: str = "") -> Path:
    variables: dict[str, Any] = {
        f"SETTING_{index}": {"default": f"value {index}"} for index in range(60)
    }
    overlay = {"variables": {f"SETTING_{index}": f"prod {index}" for index in range(60)}}
    write_spec(root, minimal(variables=variables), {"production": overlay})
    with (root / "envspec.yaml").open("a") as handle:
        handle.write(extra)
    return root


@pytest.mark.usefixtures("in_pieces")
def test_a_spec_loaded_in_pieces_is_the_spec_loaded_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _spec(tmp_path / "spec")
    in_pieces = loader.load_spec(root)
    monkeypatch.setenv("ENVSPEC_JOBS", "1")
    whole = loader.load_spec(root)
    assert in_pieces.base.data == whole.base.data
    assert list(in_pieces.base.data["variables"]) == list(whole.base.data["variables"])
    assert in_pieces.overlays["production"].data == whole.overlays["production"].data
    assert in_pieces.base.source.value(("variables", "SETTING_59", "default")).line > 100


@pytest.mark.usefixtures("in_pieces")
def test_a_problem_across_pieces_is_reported_as_in_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _spec(tmp_path / "spec", "  SETTING_0:\n    default: again\n")
    with pytest.raises(SpecError) as in_pieces:
        loader.load_spec(root)
    monkeypatch.setenv("ENVSPEC_JOBS", "1")
    with pytest.raises(SpecError) as whole:
        loader.load_spec(root)
    assert [str(p) for p in in_pieces.value.problems] == [str(p) for p in whole.value.problems]
    [problem] = in_pieces.value.problems
    assert "duplicate key 'SETTING_0'" in str(problem)
