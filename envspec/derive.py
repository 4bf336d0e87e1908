"""Derived values: ``{from: "..."}`` formulas and what they compose to.

A formula is literal text with references in it: ``${NAME}`` (variable NAME's value in the same
environment), ``${services.<svc>.host}`` and ``${services.<svc>.port}`` (where a service is
reached), and ``$$`` for a literal ``$``. Any other text, a lone ``$`` included, is literal.

Resolved in an environment, a formula becomes a :data:`Composition` when one of its parts is a
secret reference that envspec never resolves: literal text and the names of the variables whose
references fill the gaps, composed by each target's own mechanism at run time.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Literal, NamedTuple

Fact = Literal["host", "port"]
FACTS: tuple[Fact, ...] = ("host", "port")
_VARIABLE = re.compile(r"[A-Z_][A-Z0-9_]*")
_SERVICE = re.compile(r"services\.([^.}]*)\.([^.}]*)")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class Text(NamedTuple):
    """Literal text of a formula (``$$`` already read as ``$``)."""

    text: str


class VariablePart(NamedTuple):
    """``${NAME}``."""

    name: str


class FactPart(NamedTuple):
    """``${services.<service>.<fact>}``."""

    service: str
    fact: Fact

    @property
    def label(self) -> str:
        return f"services.{self.service}.{self.fact}"


Token = Text | VariablePart | FactPart


class SecretPart(NamedTuple):
    """A gap in a composition: the value of variable ``name``, a secret reference."""

    name: str


Piece = str | SecretPart
Composition = tuple[Piece, ...]


@functools.lru_cache(maxsize=4096)
def parse(formula: str) -> tuple[Token, ...]:
    """The tokens of ``formula``; a ``ValueError`` says what is wrong (the formula is spec text,
    never a resolved value, so a message may quote a reference from it)."""
    tokens: list[Token] = []
    text: list[str] = []
    index = 0
    while True:
        dollar = formula.find("$", index)
        if dollar < 0 or dollar == len(formula) - 1:
            text.append(formula[index:])
            break
        text.append(formula[index:dollar])
        following = formula[dollar + 1]
        if following == "$":
            text.append("$")
            index = dollar + 2
        elif following == "{":
            end = formula.find("}", dollar + 2)
            if end < 0:
                raise ValueError("'${' is not closed by '}' (write '$$' for a literal '$')")
            if text:
                tokens.append(Text("".join(text)))
                text = []
            tokens.append(_reference(formula[dollar + 2 : end]))
            index = end + 1
        else:
            text.append("$")
            index = dollar + 1
    if any(text):
        tokens.append(Text("".join(text)))
    return tuple(token for token in tokens if not (isinstance(token, Text) and not token.text))


def _reference(inside: str) -> VariablePart | FactPart:
    if _VARIABLE.fullmatch(inside):
        return VariablePart(inside)
    service = _SERVICE.fullmatch(inside)
    if service is None:
        raise ValueError(
            f"'${{{inside}}}' is neither a variable (${{NAME}}) nor a service fact "
            "(${services.<service>.host} or ${services.<service>.port}); "
            "write '$$' for a literal '$'"
        )
    name, fact = service.groups()
    if not _DNS_LABEL.fullmatch(name):
        raise ValueError(f"'${{{inside}}}': '{name}' is not a service name")
    if fact not in FACTS:
        raise ValueError(f"'${{{inside}}}': a service has no fact '{fact}' (expected host or port)")
    return FactPart(name, "host" if fact == "host" else "port")


def joined(pieces: list[Piece]) -> Composition:
    """``pieces`` with neighbouring texts joined and empty texts left out."""
    result: list[Piece] = []
    for piece in pieces:
        if isinstance(piece, str):
            if not piece:
                continue
            if result and isinstance(result[-1], str):
                result[-1] += piece
                continue
        result.append(piece)
    return tuple(result)


def compose(
    composition: Composition, literal: Callable[[str], str], part: Callable[[str], str]
) -> str:
    """A composition written for one target: each text through ``literal``, each secret part
    named through ``part``."""
    return "".join(
        part(piece.name) if isinstance(piece, SecretPart) else literal(piece)
        for piece in composition
    )


def literal_text(composition: Composition) -> str:
    """Every literal piece of ``composition``, joined (what a target must be able to carry)."""
    return "".join(piece for piece in composition if isinstance(piece, str))


def parts(composition: Composition) -> tuple[str, ...]:
    """The names of the secret parts, each once, in order."""
    return tuple(
        dict.fromkeys(piece.name for piece in composition if isinstance(piece, SecretPart))
    )
