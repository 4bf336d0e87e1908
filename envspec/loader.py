"""Read the spec folder into plain data and a source map, refusing hostile YAML.

Scalars become strings exactly as written (quoted or not); only a plain ``null``, ``~`` or empty
scalar becomes ``None``. Types come from the spec's models, never from YAML's resolver, so ``on``,
``0123``, ``1e3`` and ``8.10`` reach the model as the text the user typed.

Nodes are composed by PyYAML's C parser (positions at C speed) and converted here, which is where
duplicate keys, alias expansion limits, nesting depth and non-string keys are checked.
"""

from __future__ import annotations

import functools
import marshal
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml

from envspec import cache
from envspec.errors import Problem, SpecError
from envspec.layout import BASE_FILE, OVERLAY_DIR, OVERLAY_SUFFIXES, TEMPLATE_DIR
from envspec.location import Position, SourceMap, SpecPath, display_path, dotted

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_ALIAS_EXPANSION = 50_000
MAX_ALIAS_CHARS = MAX_FILE_BYTES
"""Aliases may not repeat more text than a spec file may hold."""
MAX_DEPTH = 64

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})

if TYPE_CHECKING:
    from envspec.pieces import Piece

Documents = list[tuple[Any, tuple[int, int]]]
"""Each YAML document of a file: its data and where it starts (line, column)."""


class Document(NamedTuple):
    """One spec file: its data (a mapping) and where each node was written."""

    data: dict[str, Any]
    source: SourceMap


class RawSpec(NamedTuple):
    root: Path
    base: Document
    overlays: dict[str, Document]
    templates: Path | None
    parses: dict[str | None, _File]
    """Files whose parse the cache has a place for and does not hold yet: the base (None) and
    overlays by environment name."""

    def keep_parses(self, files: Iterable[str | None]) -> None:
        """Cache the parses of the named files (None: the base; a name: that environment's
        overlay). The loader knows YAML, not what a file may hold: the caller names only files
        that validation accepted and that hold no secret's literal."""
        for name in files:
            file = self.parses.get(name)
            if file is not None:
                file.store()


def load_spec(root: Path) -> RawSpec:
    """Load ``envspec.yaml`` and every overlay in ``root``; raise all problems at once."""
    problems: list[Problem] = []
    base_file = _read(root / BASE_FILE, problems)
    overlay_files: dict[str, _File | None] = {}
    overlay_dir = root / OVERLAY_DIR
    if overlay_dir.is_dir():
        for path in sorted(overlay_dir.iterdir()):
            if path.suffix in OVERLAY_SUFFIXES and path.is_file():
                if path.stem in overlay_files:
                    problems.append(
                        Problem(display_path(path), 1, 1, "", f"second overlay for '{path.stem}'")
                    )
                    continue
                overlay_files[path.stem] = _read(path, problems)
    _parse_fast([file for file in (base_file, *overlay_files.values()) if file is not None])
    base = _parse(base_file, problems) if base_file is not None else None
    parses: dict[str | None, _File] = {}
    if base_file is not None and base_file.storable():
        parses[None] = base_file
    overlays: dict[str, Document] = {}
    for name, file in overlay_files.items():
        document = _parse(file, problems) if file is not None else None
        if document is not None:
            overlays[name] = document
            if file is not None and file.storable():
                parses[name] = file
    if problems or base is None:
        raise SpecError(problems)
    templates = root / TEMPLATE_DIR
    return RawSpec(root, base, overlays, templates if templates.is_dir() else None, parses)


def stray_files(root: Path) -> list[Problem]:
    """Warnings for files in ``environments/`` that are not read as overlays (``production.YAML``,
    ``prod.json``): an overlay is ``<env>.yaml`` or ``<env>.yml``."""
    folder = root / OVERLAY_DIR
    if not folder.is_dir():
        return []
    return [
        Problem(
            display_path(path),
            0,
            0,
            "",
            f"'{path.name}' is not read: an overlay is {OVERLAY_DIR}/<environment>.yaml",
            "warning",
        )
        for path in sorted(folder.iterdir())
        if path.suffix not in OVERLAY_SUFFIXES and not path.name.startswith(".")
    ]


def section_names(root: Path, section: str) -> list[str]:
    """Names under a top-level ``section`` of ``root``'s envspec.yaml; none if it cannot load."""
    try:
        data = load_yaml_text((root / BASE_FILE).read_text(encoding="utf-8"), BASE_FILE).data
    except (OSError, SpecError):
        return []
    names = data.get(section)
    return list(names) if isinstance(names, dict) else []


def load_yaml_text(text: str, file: str) -> Document:
    """Parse one YAML document given as text (used for in-memory specs and tests)."""
    problems: list[Problem] = []
    document = _parse(_File(file, text, documents=_fast_documents(text)), problems)
    if document is None:
        raise SpecError(problems)
    return document


def check_yaml(text: str, file: str) -> None:
    """Refuse a YAML file that is not a spec file (a compose file to import) where the spec
    loader would refuse its own for its size, an alias bomb, nesting beyond the limit or a
    character YAML does not allow; its other mistakes are the caller's to report."""
    if len(text) > MAX_FILE_BYTES:
        raise SpecError([Problem(file, 1, 1, "", f"file is larger than {MAX_FILE_BYTES} bytes")])
    if _fast_documents(text) is not None:
        return
    problems: list[Problem] = []
    try:
        _Builder(file, SourceMap(file), problems).documents(text)
    except _AbortError:
        raise SpecError(problems) from None
    except yaml.reader.ReaderError:
        _parse_recording(text, file, problems)
        raise SpecError(problems) from None
    except yaml.YAMLError:
        return


class _File:
    """A spec file read into memory, and its data once parsed without positions."""

    __slots__ = ("documents", "entry", "file", "from_cache", "text")

    def __init__(self, file: str, text: str, documents: Documents | None = None) -> None:
        self.file = file
        self.text = text
        self.entry: Path | None = None
        """Where the cache keeps its parse (large files only)."""
        self.documents = documents
        """Its documents, or None when the quick parse refused it: the recording parse says
        why."""
        self.from_cache = False

    def storable(self) -> bool:
        """Whether the cache has a place for this file's parse and does not hold it yet."""
        return self.entry is not None and self.documents is not None and not self.from_cache

    def store(self) -> None:
        assert self.entry is not None
        cache.store_parsed(self.entry, self.documents)


def _read(path: Path, problems: list[Problem]) -> _File | None:
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
    return _File(file, text.removeprefix("\ufeff"))


PARALLEL_PARSE_CHARS = 256 * 1024
"""From this much text to parse on, a second process parses about half of it."""
PIECE_CHARS = 128 * 1024
"""Files are cut into pieces of about this size to share them between the two processes."""


def _parse_fast(files: list[_File]) -> None:
    """Give each file its documents, parsed without positions: from the cache when it holds
    them, else parsed here, with a second process when there is much to parse (this one then
    reads the cache while the other parses)."""
    stored: list[_File] = []
    todo: list[_File] = []
    for file in files:
        file.entry = cache.parsed_entry(file.text, _parser_code())
        (stored if file.entry is not None and file.entry.exists() else todo).append(file)
    if sum(len(file.text) for file in todo) >= PARALLEL_PARSE_CHARS and _parse_in_two(todo, stored):
        return
    _read_stored(stored)
    for file in todo:
        file.documents = _fast_documents(file.text)


def _read_stored(files: list[_File]) -> None:
    for file in files:
        assert file.entry is not None
        file.from_cache, file.documents = cache.read_parsed(file.entry)
        if not file.from_cache:
            file.documents = _fast_documents(file.text)


def _parse_in_two(files: list[_File], stored: list[_File]) -> bool:
    """Cut ``files`` into pieces; a child parses the first half of them while this process
    reads the ``stored`` files from the cache and parses the second half; then each file's
    pieces are joined, and a file whose pieces do not join is parsed whole. False, having
    done nothing, when there is no second process or no half to give it."""
    from envspec import workers
    from envspec.pieces import cut_text

    if not workers.available():
        return False
    cut = [
        (index, piece)
        for index, file in enumerate(files)
        for piece in cut_text(file.text, PIECE_CHARS)
    ]
    half = sum(len(piece.text) for _, piece in cut) / 2
    theirs = 0
    size = 0
    while theirs < len(cut) and size + len(cut[theirs][1].text) <= half:
        size += len(cut[theirs][1].text)
        theirs += 1
    if theirs == 0:
        return False
    with workers.Children[int](1) as children:
        children.submit(0, functools.partial(_parse_pieces, [piece for _, piece in cut[:theirs]]))
        _read_stored(stored)
        mine = [_parse_piece(piece) for _, piece in cut[theirs:]]
        [(_, data)] = children.finished(block=True)
    parsed = [*marshal.loads(data), *mine]
    for index, file in enumerate(files):
        own = [
            (piece, result)
            for (owner, piece), result in zip(cut, parsed, strict=True)
            if owner == index
        ]
        file.documents = _joined(own) or _fast_documents(file.text)
    return True


def _parse_pieces(cut: list[Piece]) -> bytes:
    return marshal.dumps([_parse_piece(piece) for piece in cut])


Expansion = tuple[int, int]
"""How much aliases repeated: nodes and characters."""


def _parse_piece(piece: Piece) -> tuple[Any, tuple[int, int], Expansion] | None:
    """A piece's value, where its document starts and how much its aliases expanded; None when
    it does not parse as one document."""
    builder = _Builder()
    try:
        documents = builder.documents(piece.document())
    except (_AbortError, yaml.YAMLError):
        return None
    if len(documents) != 1:
        return None
    value, start = documents[0]
    return value, start, (builder.aliases.nodes, builder.aliases.chars)


def _joined(
    parsed: list[tuple[Piece, tuple[Any, tuple[int, int], Expansion] | None]],
) -> Documents | None:
    """The one document that a file's parsed pieces make; None when a piece failed, when their
    aliases together expand beyond the limit, or when the pieces do not join."""
    from envspec.pieces import join

    complete = [(piece, result) for piece, result in parsed if result is not None]
    nodes = sum(count for _, (_, _, (count, _)) in complete)
    chars = sum(count for _, (_, _, (_, count)) in complete)
    if len(complete) != len(parsed) or nodes > MAX_ALIAS_EXPANSION or chars > MAX_ALIAS_CHARS:
        return None
    joined = join([piece for piece, _ in complete], [value for _, (value, _, _) in complete])
    return None if joined is None else [(joined, complete[0][1][1])]


@functools.cache
def _parser_code() -> bytes:
    """The parser's own source: part of the key of its cached results."""
    return Path(__file__).read_bytes()


def _line_column(raw: bytes, offset: int) -> tuple[int, int]:
    """The line and column (in characters) of the byte at ``offset`` of UTF-8 text."""
    before = raw[:offset].decode("utf-8", "ignore")
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return line, column


def _parse(file: _File, problems: list[Problem]) -> Document | None:
    text = file.text
    if not text.strip():
        problems.append(Problem(file.file, 1, 1, "", "file is empty; expected a mapping"))
        return None
    if file.documents is None:
        return _parse_recording(text, file.file, problems)
    source = SourceMap(file.file)

    def read_positions(source: SourceMap) -> None:
        _Builder(file.file, source).documents(text)

    source.reader = read_positions
    return _document(file.documents, file.file, source, problems)


def _fast_documents(text: str) -> Documents | None:
    """The documents of ``text`` without positions; None on anything the recording parse must
    report."""
    try:
        return _Builder().documents(text)
    except (_AbortError, yaml.YAMLError):
        return None


def _parse_recording(text: str, file: str, problems: list[Problem]) -> Document | None:
    """The slow path, recording every position: used when something is wrong."""
    source = SourceMap(file)
    builder = _Builder(file, source, problems)
    try:
        documents = builder.documents(text)
    except _AbortError:
        return None
    except yaml.reader.ReaderError as error:
        line, column = _line_column(text.encode("utf-8"), error.position)
        problems.append(
            Problem(
                file,
                line,
                column,
                "",
                f"invalid YAML: the character U+{error.character:04X} is not allowed here "
                "(write it as an escape in a double-quoted string)",
            )
        )
        return None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = error.problem or error.context or "invalid YAML"
        problems.append(Problem(file, line, column, "", f"invalid YAML: {reason}"))
        return None
    except yaml.YAMLError as error:
        problems.append(Problem(file, 1, 1, "", f"invalid YAML: {error}"))
        return None
    if builder.failed:
        return None
    return _document(documents, file, source, problems)


def _document(
    documents: list[tuple[Any, tuple[int, int]]],
    file: str,
    source: SourceMap,
    problems: list[Problem],
) -> Document | None:
    if len(documents) != 1:
        what = "no document" if not documents else f"{len(documents)} documents"
        problems.append(Problem(file, 1, 1, "", f"expected one YAML document, found {what}"))
        return None
    data, (line, column) = documents[0]
    if not isinstance(data, dict):
        problems.append(Problem(file, line, column, "", f"expected a mapping, found {_kind(data)}"))
        return None
    return Document(data, source)


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return "a scalar"


class _Builder:
    """Builds dicts, lists, strings and None straight from the C parser's events.

    Working from events rather than composed nodes skips PyYAML's tag resolution, which we do not
    use (scalars stay text) and which costs most of the time of ``yaml.compose``. An alias refers
    to the value built for its anchor; what aliases repeat is counted (see :class:`_Aliases`), so
    an alias bomb is refused before any stage expands it.

    Given a ``source``, the builder records there where each key and value was written, and
    reports every problem it finds into ``problems``. Without one it records nothing and stops at
    the first problem (:class:`_AbortError`): the quick path taken when a file is fine, as
    positions cost more than the data; a file it refuses is built again, recording, to say why.
    """

    next: Callable[[], Any]
    """The parser's next event."""
    peek: Callable[[], Any]
    """The parser's next event, left to come."""

    def __init__(
        self, file: str = "", source: SourceMap | None = None, problems: list[Problem] | None = None
    ) -> None:
        self.file = file
        self.source = source
        self.problems = [] if problems is None else problems
        self.failed = False
        self.anchors: dict[str, Any] = {}
        self.aliases = _Aliases()

    def _fail(self, mark: Any, path: SpecPath, message: str) -> None:
        """Report a problem, or stop when not recording (the recording build reports it)."""
        if self.source is None:
            raise _AbortError
        self.problems.append(
            Problem(self.file, mark.line + 1, mark.column + 1, dotted(path), message)
        )
        self.failed = True

    def documents(self, text: str) -> list[tuple[Any, tuple[int, int]]]:
        parser = _Loader(text)
        try:
            self.next = parser.get_event
            self.peek = parser.peek_event
            found = []
            while (event := self.next()) is not None:
                if type(event) is yaml.DocumentStartEvent:
                    start: Any = self.next()
                    mark = start.start_mark
                    if self.source is not None:
                        self.source._values.setdefault((), self._position(mark))
                    value = self._value(start, (), 0)
                    self.next()  # DocumentEndEvent
                    if value is not None or type(start) is not yaml.ScalarEvent:
                        found.append((value, (mark.line + 1, mark.column + 1)))
            return found
        finally:
            parser.dispose()

    def _position(self, mark: Any) -> Position:
        return Position(self.file, mark.line + 1, mark.column + 1)

    def _value(self, event: Any, path: SpecPath, depth: int) -> Any:
        """The value starting with ``event``, at ``path`` (recorded by the caller), ``depth``
        levels down."""
        kind = type(event)
        if kind is yaml.ScalarEvent:
            value = None if not event.style and event.value in _NULLS else event.value
        elif kind is yaml.MappingStartEvent:
            value = self._mapping(path, depth)
        elif kind is yaml.SequenceStartEvent:
            value = self._sequence(path, depth)
        else:
            return self._alias(event, path, depth)
        if event.anchor:
            self.anchors[event.anchor] = value
            self.aliases.forget(event.anchor)
        return value

    def _alias(self, event: Any, path: SpecPath, depth: int) -> Any:
        if event.anchor not in self.anchors:
            self._fail(event.start_mark, path, f"unknown alias '{event.anchor}'")
            raise _AbortError
        value = self.anchors[event.anchor]
        refusal = self.aliases.use(event.anchor, value, depth)
        if refusal is not None:
            self._fail(event.start_mark, path, refusal)
            raise _AbortError
        return value

    def _nothing_deeper(self, path: SpecPath, end: type[yaml.Event]) -> None:
        """Refuse the first item of a collection ``MAX_DEPTH`` levels down (it may be empty)."""
        first = self.peek()
        if type(first) is not end:
            if end is yaml.SequenceEndEvent:
                path = (*path, 0)
            elif type(first) is yaml.ScalarEvent:
                path = (*path, first.value)
            self._fail(first.start_mark, path, f"nested deeper than {MAX_DEPTH} levels")
            raise _AbortError

    def _sequence(self, path: SpecPath, depth: int) -> list[Any]:
        source = self.source
        following = self.next
        items: list[Any] = []
        if depth >= MAX_DEPTH:
            self._nothing_deeper(path, yaml.SequenceEndEvent)
        inner = depth + 1
        while type(event := following()) is not yaml.SequenceEndEvent:
            child = path
            if source is not None:
                child = (*path, len(items))
                source._values.setdefault(child, self._position(event.start_mark))
            items.append(self._value(event, child, inner))
        return items

    def _mapping(self, path: SpecPath, depth: int) -> dict[str, Any]:
        source = self.source
        following = self.next
        result: dict[str, Any] = {}
        merged: dict[str, Any] | None = None
        if depth >= MAX_DEPTH:
            self._nothing_deeper(path, yaml.MappingEndEvent)
        inner = depth + 1
        while type(key := following()) is not yaml.MappingEndEvent:
            if type(key) is not yaml.ScalarEvent:
                self._fail(key.start_mark, path, "mapping keys must be plain strings")
                self._value(key, path, depth)  # the key's own events come before its value's
                self._value(following(), path, depth)
                continue
            event = following()
            name = key.value
            if name == "<<" and not key.style:
                merged = self._merge(merged, self._value(event, path, depth), event, path)
                continue
            child = path
            if source is not None:
                child = (*path, name)
                if name not in result:
                    source._keys[child] = self._position(key.start_mark)
                source._values.setdefault(child, self._position(event.start_mark))
            if name in result:
                first = source._keys[child].line if source is not None else 0
                self._fail(
                    key.start_mark, child, f"duplicate key '{name}' (first defined at line {first})"
                )
                self._value(event, child, inner)
                continue
            result[name] = self._value(event, child, inner)
        if merged:
            for name, value in merged.items():
                result.setdefault(name, value)
        return result

    def _merge(
        self, merged: dict[str, Any] | None, sources: Any, event: Any, path: SpecPath
    ) -> dict[str, Any]:
        """What a ``<<`` key merges (of a list, the first mapping wins), over what earlier ones
        merged."""
        merged = {} if merged is None else merged
        for source in reversed(sources if isinstance(sources, list) else [sources]):
            if not isinstance(source, dict):
                self._fail(event.start_mark, path, "'<<' merges mappings only")
                continue
            merged.update(source)
        return merged


_BOMB = "aliases expand beyond the limit (an alias bomb?)"


class _Aliases:
    """What aliases repeat: the nodes and the characters of the text they copy (a long string
    repeated is a bomb too), and how deep what they copy goes (the depth limit holds through
    anchors). Each anchor's value is measured once, when an alias first uses it."""

    def __init__(self) -> None:
        self.nodes = 0
        self.chars = 0
        self._measured: dict[str, _Measure] = {}

    def forget(self, anchor: str) -> None:
        self._measured.pop(anchor, None)

    def use(self, anchor: str, value: Any, depth: int) -> str | None:
        """Count one use of ``anchor`` at ``depth``; why it is refused, or None."""
        measured = self._measured.get(anchor)
        if measured is None:
            measured = self._measured[anchor] = _measure(value, {})
        nodes, chars, height = measured
        self.nodes += nodes
        self.chars += chars
        if self.nodes > MAX_ALIAS_EXPANSION or self.chars > MAX_ALIAS_CHARS:
            return _BOMB
        if depth + height > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels (through alias '{anchor}')"
        return None


_Measure = tuple[int, int, int]
"""A value's nodes, characters and height."""


def _measure(value: Any, seen: dict[int, _Measure]) -> _Measure:
    """The nodes of ``value`` (each of its scalars, lists and mappings; keys are not nodes), the
    characters of its keys and strings, and its height (0 for a scalar). What aliases share is
    measured once and counted wherever it appears."""
    if isinstance(value, str):
        return 1, len(value), 0
    if not isinstance(value, dict | list):
        return 1, 0, 0
    known = seen.get(id(value))
    if known is not None:
        return known
    nodes = 1
    chars = sum(len(key) for key in value) if isinstance(value, dict) else 0
    height = 0
    for item in value.values() if isinstance(value, dict) else value:
        item_nodes, item_chars, item_height = _measure(item, seen)
        nodes += item_nodes
        chars += item_chars
        height = max(height, item_height)
    seen[id(value)] = (nodes, chars, height + 1)
    return nodes, chars, height + 1


class _AbortError(Exception):
    """Stops building after a problem that makes the rest meaningless (reported already)."""
