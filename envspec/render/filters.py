"""Quoting for every output format, so each value reaches the application byte for byte.

Each function either returns text that the format's real readers turn back into exactly ``value``
or raises :class:`CannotCarry` saying why the format cannot hold it. The dotenv rules were chosen
for the readers that meet a ``.env`` file: python-dotenv (and so pydantic-settings), a POSIX shell
sourcing it, and Compose v1 and v2 reading it as an ``env_file``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from envspec.derive import Composition, compose

_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*")
_RESERVED = frozenset(
    {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "yaml", "nan", "inf"}
)
_NEEDS_ESCAPE = re.compile('[\\x00-\\x1f\\x7f-\\x9f"\\\\\u2028\u2029\ufeff\ud800-\udfff]')
_KUBECTL_REFUSED = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff"
_KUBECTL_REFUSES = re.compile(f"[{_KUBECTL_REFUSED}]")
_COMMENT_BREAKS = re.compile("[\x00-\x1f\x7f\u2028\u2029]")
_NAMED_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", '"': '\\"', "\\": "\\\\", "\0": "\\0"}


class CannotCarry(ValueError):  # noqa: N818 - reads as "this format cannot carry the value"
    """A format cannot represent a value exactly; the message never contains the value."""


def yaml_quote(value: str) -> str:
    """A double-quoted YAML scalar that YAML 1.1 and 1.2 readers both read as ``value``."""
    return '"' + _NEEDS_ESCAPE.sub(_escape, value) + '"'


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        raise CannotCarry("a lone surrogate is not a character that UTF-8 YAML can carry")
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def yaml_scalar(value: object) -> str:
    """A YAML scalar for ``value``: strings quoted unless plainly unambiguous."""
    if type(value) is str:
        return _yaml_text(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value)
    return _yaml_text(str(value))


def _plain_or_quoted(text: str) -> str:
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return yaml_quote(text)


_yaml_text = functools.lru_cache(maxsize=4096)(_plain_or_quoted)
"""Labels and namespaces repeat in every document: each is quoted once."""


class YamlScalars(dict[str, str]):
    """Texts as :func:`yaml_scalar` writes them, each worked out once: ``scalars[text]``. For
    the names of one environment's variables, which outnumber what a bounded cache holds."""

    def __missing__(self, text: str) -> str:
        quoted = self[text] = _plain_or_quoted(text)
        return quoted


def to_yaml(data: Any) -> str:
    """Block-style YAML for plain data, every string quoted by :func:`yaml_scalar`."""
    lines: list[str] = []
    _emit(data, 0, lines)
    return "\n".join(lines) + "\n"


def _emit(data: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(data, Mapping):
        if not data:
            lines.append(pad + "{}")
        for key, value in data.items():
            _emit_entry(f"{pad}{yaml_scalar(key)}:", value, indent, lines)
    elif isinstance(data, Sequence) and not isinstance(data, str):
        if not data:
            lines.append(pad + "[]")
        for item in data:
            _emit_entry(f"{pad}-", item, indent, lines, sequence=True)
    else:
        lines.append(pad + yaml_scalar(data))


def _emit_entry(
    head: str, value: Any, indent: int, lines: list[str], sequence: bool = False
) -> None:
    is_mapping = isinstance(value, Mapping)
    is_list = isinstance(value, Sequence) and not isinstance(value, str)
    if (is_mapping or is_list) and value:
        if sequence and is_mapping:
            nested: list[str] = []
            _emit(value, indent + 2, nested)
            lines.append(head + " " + nested[0].lstrip())
            lines.extend(nested[1:])
        else:
            lines.append(head)
            _emit(value, indent + 2, lines)
    elif is_mapping:
        lines.append(head + " {}")
    elif is_list:
        lines.append(head + " []")
    else:
        lines.append(head + " " + yaml_scalar(value))


def compose_escape(value: str) -> str:
    """Escape Compose interpolation: every ``$`` becomes ``$$`` (v1 and v2 alike)."""
    return value.replace("$", "$$")


def compose_composition(composition: Composition, shell_name: Callable[[str], str] = str) -> str:
    """A derived value with secret parts for a compose file: each part interpolated from the
    shell of whoever runs compose (``${PART:?...}``, or the name ``shell_name`` gives the part),
    the literal text escaped."""
    return compose(composition, compose_escape, lambda part: compose_secret(shell_name(part)))


def compose_secret(name: str) -> str:
    """A secret in a compose file: taken from the shell variable ``name`` when compose runs."""
    return "${" + name + ":?" + name + " is a secret; export it in your shell}"


def kubelet_composition(composition: Composition) -> str:
    """A derived value with secret parts for a container's ``env``: the kubelet expands each
    ``$(PART)`` from the variables listed before it and reads ``$$`` as ``$``."""
    return compose(composition, lambda text: text.replace("$", "$$"), lambda part: f"$({part})")


def check_line_breaks(value: str) -> None:
    """Compose v1 and ``kubectl kustomize`` turn U+0085 (NEL) into a line break or a space."""
    if "\x85" in value:
        raise CannotCarry("Compose v1 and kubectl read U+0085 (NEL) as a line break")


def compose_value(value: str) -> str:
    """A value for a compose file: interpolation escaped, quoted for YAML, readers checked."""
    check_line_breaks(value)
    return yaml_quote(compose_escape(value))


def kubernetes_value(value: str) -> str:
    """A value for a Kubernetes manifest, quoted for YAML, readers checked."""
    check_line_breaks(value)
    control = _KUBECTL_REFUSES.search(value)
    if control is not None:
        raise CannotCarry(
            f"kubectl refuses the control character U+{ord(control.group()):04X} in YAML"
        )
    return yaml_quote(value)


_COMPOSE_CANNOT = re.compile("[\x85\ud800-\udfff]")
_KUBERNETES_CANNOT = re.compile(f"[{_KUBECTL_REFUSED}\ud800-\udfff]")


def check_compose_value(value: str) -> None:
    """Raise what :func:`compose_value` raises, in one scan for the characters it refuses."""
    if _COMPOSE_CANNOT.search(value) is not None:
        compose_value(value)


def check_kubernetes_value(value: str) -> None:
    """Raise what :func:`kubernetes_value` raises, in one scan for the characters it refuses."""
    if _KUBERNETES_CANNOT.search(value) is not None:
        kubernetes_value(value)


def dotenv_quote(value: str) -> str:
    """The right-hand side of ``NAME=...`` for a ``.env`` file, exact in every reader.

    Single quotes are literal in a shell and in Compose v2, but python-dotenv (and Compose v1)
    expand ``${...}`` inside them and unescape ``\\\\`` and ``\\'``; double quotes are unescaped
    by both a shell and python-dotenv, but a shell expands ``$`` and backticks inside them.
    python-dotenv also reads ``\\r`` as a line break and a backslash before a closing quote as
    an escaped quote.
    """
    if "\0" in value:
        raise CannotCarry("an environment variable cannot hold a NUL character")
    if "${" in value:
        raise CannotCarry("'${' is expanded by python-dotenv and Compose v1 in every quoting style")
    if "\r" in value:
        raise CannotCarry("python-dotenv reads a carriage return as a line break")
    check_line_breaks(value)
    if value.endswith("\\"):
        raise CannotCarry("python-dotenv reads a backslash before the closing quote as an escape")
    if "'" not in value and "\\" not in value:
        return f"'{value}'"
    if "$" not in value and "`" not in value:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise CannotCarry(
        "it holds a single quote or backslash together with '$' or '`', which no .env quoting "
        "keeps intact for both a shell and python-dotenv"
    )


def comment(text: str) -> str:
    """Text made safe as the body of a ``#`` comment line: one line, no control characters."""
    if text.isprintable() and "  " not in text and text.strip(" ") == text:
        return text  # nothing to replace: printable text holds no whitespace but ' '
    return " ".join(_COMMENT_BREAKS.sub(" ", text).split())


def kubernetes_env(value: str) -> str:
    """A container's ``env`` value, ``command`` or ``args`` item as written, not expanded: the
    kubelet reads ``$(NAME)`` as a reference and ``$$`` as ``$``, so every ``$`` is doubled."""
    return value.replace("$", "$$")


FILTERS = {
    "yaml": yaml_scalar,
    "yaml_quote": yaml_quote,
    "compose_escape": compose_escape,
    "kubernetes_env": kubernetes_env,
    "compose_composition": compose_composition,
    "compose_secret": compose_secret,
    "dotenv": dotenv_quote,
    "comment": comment,
    "pyrepr": repr,
    "tojson_compact": lambda value: json.dumps(value, ensure_ascii=False, sort_keys=True),
}
