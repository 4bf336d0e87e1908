"""Where every node of the spec was written: file, line and column, by path.

Paths are tuples of mapping keys and sequence indexes, e.g. ``("services", "web", "ports", 0)``.
The loader records the position of each value and of each mapping key; later stages ask for the
closest recorded position of any path, so a problem always points at real text.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple


def display_path(path: Path) -> str:
    """A file name as a user would type it: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative


PathKey = str | int
SpecPath = tuple[PathKey, ...]


class Position(NamedTuple):
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class SourceMap:
    """Positions of the values and keys of one spec file.

    Recording positions costs more than reading the data, and they are needed only to report
    something, so a map may be given a ``reader`` that fills it on first use.
    """

    __slots__ = ("_keys", "_values", "file", "reader")

    def __init__(self, file: str, reader: Callable[[SourceMap], None] | None = None) -> None:
        self.file = file
        self._values: dict[SpecPath, Position] = {}
        self._keys: dict[SpecPath, Position] = {}
        self.reader = reader

    @property
    def values(self) -> dict[SpecPath, Position]:
        self._read()
        return self._values

    @property
    def keys(self) -> dict[SpecPath, Position]:
        self._read()
        return self._keys

    def _read(self) -> None:
        if self.reader is not None:
            reader, self.reader = self.reader, None
            reader(self)

    def value(self, path: SpecPath) -> Position:
        """The position of the value at ``path``, or of its closest recorded ancestor."""
        return self._closest(self.values, path)

    def key(self, path: SpecPath) -> Position:
        """The position of the key that names ``path`` (falls back to its value)."""
        if path in self.keys:
            return self.keys[path]
        return self._closest(self.values, path)

    def _closest(self, table: dict[SpecPath, Position], path: SpecPath) -> Position:
        for end in range(len(path), -1, -1):
            found = table.get(path[:end])
            if found is not None:
                return found
        return Position(self.file, 1, 1)


class Origin(NamedTuple):
    """Where a value was written, found only when asked for."""

    source: SourceMap
    path: SpecPath

    def position(self) -> Position:
        return self.source.value(self.path)

    def __str__(self) -> str:
        return str(self.position())


def dotted(path: SpecPath) -> str:
    """``services.web.ports[0]``: how a path is shown in messages."""
    text = ""
    for key in path:
        if isinstance(key, int):
            text += f"[{key}]"
        else:
            text += f".{key}" if text else key
    return text
