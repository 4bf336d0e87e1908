"""Read the spec folder into plain data and a source map, refusing hostile YAML.

Scalars become strings exactly as written (quoted or not); only a plain ``null``, ``~`` or empty
scalar becomes ``None``. Types come from the spec's models, never from YAML's resolver, so ``on``,
``0123``, ``1e3`` and ``8.10`` reach the model as the text the user typed.

Nodes are composed by PyYAML's C parser (positions at C speed) and converted here, which is where
duplicate keys, alias expansion limits, nesting depth and non-string keys are checked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from envspec.errors import Problem, SpecError
from envspec.location import PathKey, Position, SourceMap, SpecPath, dotted

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

BASE_FILE = "envspec.yaml"
OVERLAY_DIR = "environments"
TEMPLATE_DIR = "templates"
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_ALIAS_EXPANSION = 50_000
MAX_DEPTH = 64

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class Document:
    """One spec file: its data (a mapping) and where each node was written."""

    data: dict[str, Any]
    source: SourceMap


@dataclass
class RawSpec:
    root: Path
    base: Document
    overlays: dict[str, Document] = field(default_factory=dict)
    templates: Path | None = None


def display_path(path: Path) -> str:
    """A file name as a user would type it: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative


def find_spec_root(start: Path) -> Path | None:
    """The closest folder holding ``envspec.yaml``, from ``start`` up to the filesystem root."""
    for folder in (start, *start.parents):
        if (folder / BASE_FILE).is_file():
            return folder
    return None


def load_spec(root: Path) -> RawSpec:
    """Load ``envspec.yaml`` and every overlay in ``root``; raise all problems at once."""
    problems: list[Problem] = []
    base_path = root / BASE_FILE
    base = _load_document(base_path, problems)
    overlays: dict[str, Document] = {}
    overlay_dir = root / OVERLAY_DIR
    if overlay_dir.is_dir():
        for path in sorted(overlay_dir.iterdir()):
            if path.suffix in {".yaml", ".yml"} and path.is_file():
                name = path.stem
                if name in overlays:
                    problems.append(
                        Problem(display_path(path), 1, 1, "", f"second overlay for '{name}'")
                    )
                    continue
                document = _load_document(path, problems)
                if document is not None:
                    overlays[name] = document
    if problems or base is None:
        raise SpecError(problems)
    templates = root / TEMPLATE_DIR
    return RawSpec(root, base, overlays, templates if templates.is_dir() else None)


def load_yaml_text(text: str, file: str) -> Document:
    """Parse one YAML document given as text (used for in-memory specs and tests)."""
    problems: list[Problem] = []
    document = _parse(text, file, problems)
    if document is None:
        raise SpecError(problems)
    return document


def _load_document(path: Path, problems: list[Problem]) -> Document | None:
    file = display_path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            problems.append(
                Problem(file, 1, 1, "", f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
            )
            return None
        raw = path.read_bytes()
    except FileNotFoundError:
        problems.append(Problem(file, 0, 0, "", "no such file: a spec folder needs envspec.yaml"))
        return None
    except OSError as error:
        problems.append(Problem(file, 0, 0, "", f"cannot read: {error.strerror}"))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _line_column(raw, error.start)
        problems.append(
            Problem(file, line, column, "", f"not UTF-8: byte 0x{raw[error.start]:02x}")
        )
        return None
    return _parse(text.removeprefix("\ufeff"), file, problems)


def _line_column(raw: bytes, offset: int) -> tuple[int, int]:
    before = raw[:offset]
    line = before.count(b"\n") + 1
    column = offset - (before.rfind(b"\n") + 1) + 1
    return line, column


def _parse(text: str, file: str, problems: list[Problem]) -> Document | None:
    if not text.strip():
        problems.append(Problem(file, 1, 1, "", "file is empty; expected a mapping"))
        return None
    try:
        nodes = list(_compose_all(text))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = error.problem or error.context or "invalid YAML"
        problems.append(Problem(file, line, column, "", f"invalid YAML: {reason}"))
        return None
    except yaml.YAMLError as error:
        problems.append(Problem(file, 1, 1, "", f"invalid YAML: {error}"))
        return None
    documents = [node for node in nodes if node is not None]
    if len(documents) != 1:
        what = "no document" if not documents else f"{len(documents)} documents"
        problems.append(Problem(file, 1, 1, "", f"expected one YAML document, found {what}"))
        return None
    root = documents[0]
    source = SourceMap(file)
    converter = _Converter(file, source, problems)
    data = converter.convert(root, ())
    if not isinstance(data, dict):
        mark = root.start_mark
        problems.append(
            Problem(
                file, mark.line + 1, mark.column + 1, "", f"expected a mapping, found {_kind(data)}"
            )
        )
        return None
    if converter.failed:
        return None
    return Document(data, source)


def _compose_all(text: str) -> Iterator[yaml.Node | None]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            yield loader.get_node()
    finally:
        loader.dispose()


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return "a scalar"


class _Converter:
    """Turns composed nodes into dicts, lists, strings and None, recording positions."""

    def __init__(self, file: str, source: SourceMap, problems: list[Problem]) -> None:
        self.file = file
        self.source = source
        self.problems = problems
        self.failed = False
        self.seen: set[int] = set()
        self.active: set[int] = set()
        self.built = 0

    def _fail(self, node: yaml.Node, path: SpecPath, message: str) -> None:
        mark = node.start_mark
        self.problems.append(
            Problem(self.file, mark.line + 1, mark.column + 1, dotted(path), message)
        )
        self.failed = True

    def convert(self, node: yaml.Node, path: SpecPath) -> Any:
        self.built += 1
        self.seen.add(id(node))
        if self.built - len(self.seen) > MAX_ALIAS_EXPANSION:
            self._fail(node, path, "aliases expand beyond the limit (an alias bomb?)")
            return None
        if len(path) > MAX_DEPTH:
            self._fail(node, path, f"nested deeper than {MAX_DEPTH} levels")
            return None
        if id(node) in self.active:
            self._fail(node, path, "alias refers to itself")
            return None
        mark = node.start_mark
        self.source.values.setdefault(path, Position(self.file, mark.line + 1, mark.column + 1))
        if isinstance(node, yaml.ScalarNode):
            if not node.style and node.value in _NULLS:
                return None
            return node.value
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.convert(item, (*path, index)) for index, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, path)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: SpecPath) -> dict[str, Any] | None:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.update(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._fail(key_node, path, "mapping keys must be plain strings")
                continue
            key: PathKey = key_node.value
            assert isinstance(key, str)
            child = (*path, key)
            if key in result:
                first = self.source.keys[child]
                self._fail(
                    key_node, child, f"duplicate key '{key}' (first defined at line {first.line})"
                )
                continue
            mark = key_node.start_mark
            self.source.keys[child] = Position(self.file, mark.line + 1, mark.column + 1)
            result[key] = self.convert(value_node, child)
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def _merge_sources(self, node: yaml.Node, path: SpecPath) -> dict[str, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            value = self.convert(source, path)
            if not isinstance(value, dict):
                self._fail(source, path, "'<<' merges mappings only")
                continue
            merged.update(value)
        return merged
