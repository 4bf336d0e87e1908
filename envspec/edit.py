"""Edit the spec in place: add, remove or set a variable, keeping every other line byte for byte.

ruamel.yaml's round-trip parser locates the nodes (line and column of each key, item and value);
the edits themselves are made on the text, line by line, so comments, key order, quoting and the
layout of everything else stay exactly as the user wrote them. The edited spec is loaded and
validated before anything is written; files are then replaced atomically.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from envspec.atomic import deferred_signals, note_change, write_atomic
from envspec.errors import EnvspecError, RenderError, SpecError, did_you_mean
from envspec.layout import BASE_FILE, OVERLAY_DIR, TEMPLATE_DIR
from envspec.location import display_path
from envspec.models import VARIABLE_NAME
from envspec.project import select_environment
from envspec.render.filters import yaml_scalar
from envspec.secrets import BACKENDS

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\']|\'\')*\'')
_FLOW_SCALAR = re.compile(_QUOTED.pattern + r"|[^,{}\[\]\s#]+")
"""A scalar inside a flow collection: quoted, or plain up to a separator."""
_REFERENCE = re.compile(rf"^({'|'.join(re.escape(b) for b in BACKENDS)})://")


Validate = Callable[[Path], object]
"""Checks a spec folder whole (:func:`envspec.api.validate`); raises its problems."""


@dataclass
class VariableChange:
    name: str
    type: str | None = None
    default: str | None = None
    secret: bool = False
    description: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = ()


def _parser() -> YAML:
    parser = YAML(typ="rt")
    parser.preserve_quotes = True
    return parser


class _Text:
    """One spec file as lines, with its round-trip tree for locating nodes."""

    def __init__(self, path: Path, default: str = "") -> None:
        self.path = path
        self.original = path.read_text(encoding="utf-8") if path.is_file() else default
        first_line = path.read_bytes().split(b"\n", 1)[0] if path.is_file() else b""
        self.newline = "\r\n" if first_line.endswith(b"\r") else "\n"
        self.lines = self.original.splitlines(keepends=True)
        loaded = _parser().load(self.original) if self.original.strip() else None
        self.tree: CommentedMap = loaded if isinstance(loaded, CommentedMap) else CommentedMap()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    @property
    def written(self) -> str:
        return self.text if self.newline == "\n" else self.text.replace("\n", self.newline)

    def reload(self) -> None:
        loaded = _parser().load(self.text) if self.text.strip() else None
        self.tree = loaded if isinstance(loaded, CommentedMap) else CommentedMap()

    def block_end(self, mapping: CommentedMap, key: str) -> int:
        """Index of the first line after the entry ``key`` of a block mapping."""
        keys = list(mapping)
        position = keys.index(key)
        if position + 1 < len(keys):
            return int(mapping.lc.key(keys[position + 1])[0])
        start = int(mapping.lc.key(key)[0])
        column = int(mapping.lc.key(key)[1])
        end = start + 1
        while end < len(self.lines):
            line = self.lines[end]
            stripped = line.strip()
            indent = len(line) - len(line.lstrip(" "))
            if stripped and indent <= column and not stripped.startswith("#"):
                break
            if stripped.startswith("#") and indent <= column:
                break
            end += 1
        while end > start + 1 and not self.lines[end - 1].strip():
            end -= 1
        return end

    def add_entry(
        self, mapping_key: str, name: str, value: str, parent: CommentedMap | None = None
    ) -> None:
        """Add ``name: value`` at the end of the block mapping ``parent[mapping_key]``."""
        parent = self.tree if parent is None else parent
        mapping = parent.get(mapping_key)
        if mapping is None or (isinstance(mapping, CommentedMap) and not mapping):
            if mapping_key in parent:
                line = int(parent.lc.key(mapping_key)[0])
                indent = " " * int(parent.lc.key(mapping_key)[1])
                self.lines[line] = f"{indent}{mapping_key}:\n{indent}  {name}: {value}\n"
            else:
                if self.lines and not self.lines[-1].endswith("\n"):
                    self.lines[-1] += "\n"
                self.lines.append(f"{mapping_key}:\n  {name}: {value}\n")
            return
        if not isinstance(mapping, CommentedMap) or mapping.fa.flow_style():
            raise EnvspecError(
                f"{self.path}: '{mapping_key}' is not a block mapping; edit it by hand"
            )
        last = list(mapping)[-1]
        indent = " " * int(mapping.lc.key(last)[1])
        end = self.block_end(mapping, last)
        self.lines.insert(end, f"{indent}{name}: {value}\n")

    def remove_entry(self, mapping: CommentedMap, key: str) -> None:
        if mapping.fa.flow_style():
            raise EnvspecError(f"{self.path}: a flow mapping holds '{key}'; edit it by hand")
        del self.lines[int(mapping.lc.key(key)[0]) : self.block_end(mapping, key)]

    def set_scalar(self, mapping: CommentedMap, key: str, value: str) -> None:
        """Replace the value of ``key`` (a one-line value) keeping any trailing comment."""
        line, column = (int(n) for n in mapping.lc.value(key))
        key_line = int(mapping.lc.key(key)[0])
        end = self.block_end(mapping, key)
        if line != key_line or end - key_line > 1:
            indent = " " * int(mapping.lc.key(key)[1])
            self.lines[key_line:end] = [f"{indent}{key}: {value}\n"]
            return
        text = self.lines[line]
        comment = _trailing_comment(text[column:])
        self.lines[line] = text[:column] + value + comment + "\n"

    def set_path(self, keys: tuple[str, ...], value: str) -> None:
        """Set ``keys[-1]: value`` in the block mappings ``keys[:-1]``, making those missing."""
        mapping = self.tree
        parent: tuple[CommentedMap, str] | None = None
        depth = 0
        while depth < len(keys) - 1:
            child = mapping.get(keys[depth])
            if not isinstance(child, CommentedMap) or not child:
                break
            parent = (mapping, keys[depth])
            mapping, depth = child, depth + 1
        last = depth == len(keys) - 1 and keys[-1] in mapping
        if mapping.fa.flow_style() and mapping:
            if last and self._set_flow_scalar(mapping, keys[-1], value):
                return
            if not last and parent is not None and self._add_to_flow(parent, keys[depth:], value):
                return
            raise EnvspecError(
                f"{self.path}: '{keys[depth]}' is in a flow mapping; edit it by hand"
            )
        if last:
            self.set_scalar(mapping, keys[-1], value)
            return
        column = int(mapping.lc.key(next(iter(mapping)))[1]) if mapping else 0
        missing = keys[depth:]
        block = [f"{' ' * (column + 2 * i)}{key}:\n" for i, key in enumerate(missing[:-1])]
        block.append(f"{' ' * (column + 2 * (len(missing) - 1))}{missing[-1]}: {value}\n")
        if missing[0] in mapping:  # there, but empty
            line = int(mapping.lc.key(missing[0])[0])
            self.lines[line : line + 1] = block
        elif mapping is self.tree or not mapping:
            if self.lines and not self.lines[-1].endswith("\n"):
                self.lines[-1] += "\n"
            self.lines.extend(block)
        else:
            end = self.block_end(mapping, list(mapping)[-1])
            self.lines[end:end] = block

    def _add_to_flow(
        self, parent: tuple[CommentedMap, str], keys: tuple[str, ...], value: str
    ) -> bool:
        """Add ``keys[0]: {keys[1]: ... value}`` at the end of the one-line flow mapping
        ``parent[0][parent[1]]``; False when it spans lines."""
        line, column = (int(n) for n in parent[0].lc.value(parent[1]))
        text = self.lines[line]
        end = _closing_brace(text, column)
        if end is None:
            return False
        entry = f"{keys[-1]}: {value}"
        for key in reversed(keys[:-1]):
            entry = f"{key}: {{{entry}}}"
        self.lines[line] = text[:end].rstrip(" ") + ", " + entry + text[end:]
        return True

    def _set_flow_scalar(self, mapping: CommentedMap, key: str, value: str) -> bool:
        """Replace a plain or quoted scalar inside a flow mapping; False for anything else."""
        line, column = (int(n) for n in mapping.lc.value(key))
        text = self.lines[line]
        token = _FLOW_SCALAR.match(text, column)
        if token is None or not re.match(r"\s*[,}]", text[token.end() :]):
            return False
        self.lines[line] = text[:column] + value + text[token.end() :]
        return True

    def remove_path(self, keys: tuple[str, ...]) -> bool:
        """Remove ``keys[-1]`` from the mappings ``keys[:-1]``, and each mapping that it
        leaves empty; False when it is not there."""
        trail: list[CommentedMap] = [self.tree]
        for key in keys[:-1]:
            child = trail[-1].get(key)
            if not isinstance(child, CommentedMap):
                return False
            trail.append(child)
        if keys[-1] not in trail[-1]:
            return False
        depth = len(keys) - 1
        while depth > 0 and len(trail[depth]) == 1:
            depth -= 1
        mapping, key = trail[depth], keys[depth]
        if not (mapping.fa.flow_style() and self._remove_from_flow(mapping, key)):
            self.remove_entry(mapping, key)
        return True

    def _remove_from_flow(self, mapping: CommentedMap, key: str) -> bool:
        """Remove ``key`` and its value from a flow mapping that holds other keys, when both
        are on one line; False otherwise."""
        line, start = (int(n) for n in mapping.lc.key(key))
        value_line, value_start = (int(n) for n in mapping.lc.value(key))
        text = self.lines[line]
        if value_line != line:
            return False
        if text[value_start : value_start + 1] == "{":
            end = _closing_brace(text, value_start)
            if end is None:
                return False
            end += 1
        else:
            token = _FLOW_SCALAR.match(text, value_start)
            if token is None:
                return False
            end = token.end()
        before = re.search(r",\s*$", text[:start])
        if before is not None:
            self.lines[line] = text[: before.start()] + text[end:]
        else:
            after = re.match(r"\s*,\s*", text[end:])
            if after is None:
                return False
            self.lines[line] = text[:start] + text[end + after.end() :]
        return True

    def append_item(self, sequence: CommentedSeq, item: str) -> None:
        if not sequence:
            raise EnvspecError(f"{self.path}: an empty list; edit it by hand")
        line, column = (int(n) for n in sequence.lc.item(len(sequence) - 1))
        if sequence.fa.flow_style():
            text = self.lines[line]
            end = column + _token_length(text[column:])
            self.lines[line] = text[:end] + ", " + item + text[end:]
        else:
            indent = " " * (column - 2 if column >= 2 else 0)
            self.lines.insert(line + 1, f"{indent}- {item}\n")

    def remove_item(self, sequence: CommentedSeq, index: int) -> None:
        line, column = (int(n) for n in sequence.lc.item(index))
        text = self.lines[line]
        if not sequence.fa.flow_style():
            del self.lines[line]
            return
        length = _token_length(text[column:])
        after = text[column + length :]
        separator = re.match(r"\s*,\s?", after)
        if separator:
            self.lines[line] = text[:column] + after[separator.end() :]
            return
        before = text[:column]
        comma = re.search(r",\s*$", before)
        if comma:
            self.lines[line] = before[: comma.start()] + after
        else:
            self.lines[line] = before + after


def _closing_brace(text: str, start: int) -> int | None:
    """The index of the ``}`` that closes the flow mapping opening at ``text[start]``, when it
    closes on this line."""
    if text[start : start + 1] != "{":
        return None
    depth = 0
    index = start
    while index < len(text):
        character = text[index]
        if character in "\"'":
            quoted = _QUOTED.match(text, index)
            if quoted is None:
                return None
            index = quoted.end()
            continue
        if character in "{[":
            depth += 1
        elif character in "}]":
            depth -= 1
            if depth == 0:
                return index
        elif character == "#" and text[index - 1] in " \t":
            return None
        index += 1
    return None


def _token_length(text: str) -> int:
    match = re.match(r'"(?:[^"\\]|\\.)*"|\'(?:[^\']|\'\')*\'|[^,\]\s#]+', text)
    return match.end() if match else 0


def _trailing_comment(rest: str) -> str:
    """The comment after the one-line scalar that ``rest`` starts with (a quoted scalar may
    hold `` #`` itself)."""
    rest = rest.rstrip("\n")
    quoted = re.match(r'"(?:[^"\\]|\\.)*"|\'(?:[^\']|\'\')*\'', rest)
    match = re.search(r"\s+#.*$", rest[quoted.end() :] if quoted else rest)
    return match.group() if match else ""


def _flow(values: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{key}: {_scalar(value)}" for key, value in values.items()) + "}"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return yaml_scalar(str(value))


class _Editor:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = _Text(root / BASE_FILE)
        self.overlays: dict[str, _Text] = {}

    def environment(self, name: str) -> str:
        environments = self.base.tree.get("environments") or {}
        return select_environment(name, list(environments))

    def overlay(self, environment: str) -> _Text:
        if environment not in self.overlays:
            self.overlays[environment] = _Text(self.root / OVERLAY_DIR / f"{environment}.yaml")
        return self.overlays[environment]

    def variables(self) -> CommentedMap:
        found = self.base.tree.get("variables")
        return found if isinstance(found, CommentedMap) else CommentedMap()

    def check_variable(self, name: str, exists: bool) -> None:
        known = self.variables()
        if exists and name not in known:
            raise EnvspecError(f"unknown variable '{name}'{did_you_mean(name, known)}")
        if not exists and name in known:
            raise EnvspecError(f"variable '{name}' already exists; use `envspec var set`")
        if not re.fullmatch(VARIABLE_NAME, name) or name.startswith("ENVSPEC_"):
            raise EnvspecError(f"invalid name '{name}': a variable name must match [A-Z][A-Z0-9_]*")

    def set_value(self, name: str, environment: str, value: str, secret: bool) -> None:
        text = self.overlay(environment)
        shown = _flow({"secret": value}) if secret and _REFERENCE.match(value) else _scalar(value)
        variables = text.tree.get("variables")
        if isinstance(variables, CommentedMap) and name in variables:
            text.set_scalar(variables, name, shown)
        else:
            text.add_entry("variables", name, shown)
        text.reload()

    def set_service_value(
        self, name: str, service: str, environment: str, value: str, secret: bool
    ) -> None:
        text = self.overlay(environment)
        shown = _flow({"secret": value}) if secret and _REFERENCE.match(value) else _scalar(value)
        text.set_path(("services", service, "values", name), shown)
        text.reload()

    def check_service(self, service: str) -> None:
        services = self.base.tree.get("services") or CommentedMap()
        if service not in services:
            raise EnvspecError(f"unknown service '{service}'{did_you_mean(service, services)}")

    def files(self) -> dict[Path, tuple[str, str]]:
        texts = [self.base, *self.overlays.values()]
        return {
            text.path: (text.original, text.written) for text in texts if text.text != text.original
        }

    @contextmanager
    def candidate(self) -> Iterator[Path]:
        """A copy of the spec folder with the edits applied, for validation before writing."""
        with tempfile.TemporaryDirectory(prefix="envspec-edit-") as folder:
            copy = Path(folder) / "spec"
            copy.mkdir()
            shutil.copy2(self.root / BASE_FILE, copy / BASE_FILE)
            for name in (OVERLAY_DIR, TEMPLATE_DIR):
                if (self.root / name).is_dir():
                    shutil.copytree(self.root / name, copy / name)
            for path, (_, new) in self.files().items():
                target = copy / path.relative_to(self.root)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(new, encoding="utf-8")
            yield copy


def add_variable(root: Path, change: VariableChange, validate: Validate) -> list[Path]:
    editor = _Editor(root)
    editor.check_variable(change.name, exists=False)
    entry: dict[str, Any] = {}
    if change.type:
        entry["type"] = change.type
    if change.default is not None:
        entry["default"] = change.default
    if change.secret:
        entry["secret"] = True
    if change.description:
        entry["description"] = change.description
    editor.base.add_entry("variables", change.name, _flow(entry))
    editor.base.reload()
    services = editor.base.tree.get("services") or CommentedMap()
    for service in change.services:
        if service not in services:
            raise EnvspecError(f"unknown service '{service}'{did_you_mean(service, services)}")
        receives = (
            services[service].get("variables") if isinstance(services[service], Mapping) else None
        )
        if isinstance(receives, CommentedSeq) and change.name not in receives:
            editor.base.append_item(receives, change.name)
            editor.base.reload()
            services = editor.base.tree.get("services") or CommentedMap()
    for environment, value in change.values.items():
        editor.set_value(change.name, editor.environment(environment), value, change.secret)
    return _commit(editor, validate)


def set_variable(
    root: Path,
    name: str,
    values: dict[str, str],
    validate: Validate,
    service: str | None = None,
) -> list[Path]:
    """Set ``name`` in each environment's overlay: its ``variables``, or with ``service`` that
    service's own ``values``."""
    editor = _Editor(root)
    editor.check_variable(name, exists=True)
    if service is not None:
        editor.check_service(service)
    variable = editor.variables()[name]
    secret = isinstance(variable, Mapping) and str(variable.get("secret", "")).lower() == "true"
    for environment, value in values.items():
        if service is None:
            editor.set_value(name, editor.environment(environment), value, secret)
        else:
            editor.set_service_value(name, service, editor.environment(environment), value, secret)
    return _commit(editor, validate)


def remove_service_value(root: Path, name: str, service: str, validate: Validate) -> list[Path]:
    """Remove ``service``'s own values of ``name`` from the base and every overlay."""
    editor = _Editor(root)
    editor.check_variable(name, exists=True)
    editor.check_service(service)
    texts = [editor.base] + [
        editor.overlay(environment) for environment in editor.base.tree.get("environments") or {}
    ]
    found = False
    for text in texts:
        if text.remove_path(("services", service, "values", name)):
            text.reload()
            found = True
    if not found:
        raise EnvspecError(f"service '{service}' has no value of its own for '{name}'")
    return _commit(editor, validate)


def remove_variable(root: Path, name: str, validate: Validate) -> list[Path]:
    """Remove ``name`` everywhere: its declaration, its overlay values, and from every
    service (the lists of what it receives, its own values), in the base and the overlays."""
    editor = _Editor(root)
    editor.check_variable(name, exists=True)
    editor.base.remove_entry(editor.variables(), name)
    editor.base.reload()
    texts = [editor.base] + [
        editor.overlay(environment) for environment in editor.base.tree.get("environments") or {}
    ]
    for text in texts:
        variables = text.tree.get("variables")
        if text is not editor.base and isinstance(variables, CommentedMap) and name in variables:
            text.remove_entry(variables, name)
            text.reload()
        _remove_from_services(text, name)
    return _commit(editor, validate)


def _remove_from_services(text: _Text, name: str) -> None:
    services = text.tree.get("services")
    for service in list(services) if isinstance(services, CommentedMap) else ():
        receives = (
            services[service].get("variables") if isinstance(services[service], Mapping) else None
        )
        if isinstance(receives, CommentedSeq) and name in receives:
            text.remove_item(receives, list(receives).index(name))
            text.reload()
        if text.remove_path(("services", service, "values", name)):
            text.reload()
        services = text.tree.get("services")
        if not isinstance(services, CommentedMap):
            return


def _commit(editor: _Editor, validate: Validate) -> list[Path]:
    with editor.candidate() as copy:
        try:
            validate(copy)
        except (SpecError, RenderError) as error:
            shown = display_path(editor.root)
            raise SpecError(
                problem._replace(file=problem.file.replace(display_path(copy), shown, 1))
                for problem in error.problems
            ) from None
    changed = editor.files()
    with deferred_signals():
        note_change()
        for path, (_, new) in changed.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, new.encode("utf-8"))
    return sorted(changed)
