"""Cutting a large YAML file into pieces that parse on their own, so that two processes can
parse one file at once.

A cut goes before a line that starts a plain key of the root mapping (at column 0), or of the
mapping under a root key (at the indentation of that mapping's first key). Such a line can carry
on something begun above it only inside a quoted scalar or a flow collection, and then the piece
above the cut does not parse on its own: block and plain scalars, sequences and deeper mappings
all end at that indentation. So when every piece parses to the mapping it must give and the
pieces join without a repeated key, the result is the whole file's. Anything else (a piece that
fails, an alias to an anchor in another piece) means parsing the whole file instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

_KEY = r"[A-Za-z0-9_][A-Za-z0-9_.-]*:(?: |$)"
_FIRST_KEY = re.compile(_KEY, re.MULTILINE)
_ROOT_KEY = re.compile(rf"\n{_KEY}", re.MULTILINE)
_HEADER = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.-]*):[ ]*(?:#.*)?$", re.MULTILINE)
_FIRST_CHILD = re.compile(rf"^( +){_KEY}", re.MULTILINE)
_CONTENT = re.compile(r"^[ ]*[^ #\n]", re.MULTILINE)
_STREAM_MARK = re.compile(r"\n(?:---|\.\.\.|%)")


class Piece(NamedTuple):
    parent: str | None
    """The root key whose mapping this piece carries on, or None for a piece of root keys."""
    text: str

    def document(self) -> str:
        """The piece as a YAML document of its own."""
        return self.text if self.parent is None else f"{self.parent}:\n{self.text}"


def cut_text(text: str, size: int) -> list[Piece]:
    """``text`` in pieces of at least ``size`` characters each where it can be cut (the last
    may be shorter), or in one piece."""
    first = _CONTENT.search(text)
    if (
        len(text) < 2 * size
        or first is None
        or not _FIRST_KEY.match(text, first.start())
        or text.startswith(("---", "...", "%"))
        or _STREAM_MARK.search(text)
    ):
        return [Piece(None, text)]
    roots = [first.start()] + [match.start() + 1 for match in _ROOT_KEY.finditer(text)]
    pieces: list[Piece] = []
    start, parent = 0, None
    for begin, end in zip(roots, [*roots[1:], len(text)], strict=True):
        if begin - start >= size:
            pieces.append(Piece(parent, text[start:begin]))
            start, parent = begin, None
        if end - begin < size:
            continue
        header = _HEADER.match(text, begin)
        if header is None:
            continue
        child = _FIRST_CHILD.search(text, header.end(), end)
        content = _CONTENT.search(text, header.end(), end)
        if child is None or content is None or content.start() != child.start():
            continue
        keys = re.compile(rf"\n {{{len(child.group(1))}}}{_KEY}", re.MULTILINE)
        while (found := keys.search(text, max(start + size, child.end()) - 1, end)) is not None:
            pieces.append(Piece(parent, text[start : found.start() + 1]))
            start, parent = found.start() + 1, header.group(1)
    pieces.append(Piece(parent, text[start:]))
    return pieces


def join(pieces: Sequence[Piece], values: Sequence[Any]) -> dict[str, Any] | None:
    """The mapping that the pieces' parsed ``values`` make together, or None when a value is
    not the mapping its piece must give or a key repeats."""
    joined: dict[str, Any] = {}
    for piece, parsed in zip(pieces, values, strict=True):
        if not isinstance(parsed, dict):
            return None
        items = iter(parsed.items())
        if piece.parent is not None:
            key, value = next(items, (None, None))
            if key != piece.parent or not joined or next(reversed(joined)) != key:
                return None
            into = joined[key]
            if not isinstance(into, dict) or not isinstance(value, dict) or not _add(into, value):
                return None
        if not _add(joined, dict(items)):
            return None
    return joined


def _add(into: dict[str, Any], items: dict[str, Any]) -> bool:
    """Add ``items`` to ``into``; False (and nothing added) when a key is in both."""
    if not into.keys().isdisjoint(items):
        return False
    into.update(items)
    return True
