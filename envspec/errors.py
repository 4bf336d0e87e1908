"""Problems as values, one exception family, and the exit codes in one place.

A :class:`Problem` is one positioned finding in the spec. Stages collect problems and raise a single
:class:`SpecError` holding all of them, so a user sees every mistake in one run. Messages never
contain a secret's value: the stage that builds a message knows whether the value is secret.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

Severity = Literal["error", "warning"]


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    INTERRUPTED = 130


@dataclass(frozen=True, order=True)
class Problem:
    """One finding, printed as ``file:line:col: path: message``."""

    file: str
    line: int
    column: int
    path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        prefix = "warning: " if self.severity == "warning" else ""
        subject = f"{self.path}: " if self.path else ""
        return f"{where}: {subject}{prefix}{self.message}"

    def as_dict(self) -> dict[str, str | int]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "severity": self.severity,
        }


class EnvspecError(Exception):
    """Base of every error envspec raises on purpose; the CLI prints it and exits 1."""

    exit_code = ExitCode.FAILURE


class SpecError(EnvspecError):
    """The spec is invalid; carries every problem found, sorted by file and position."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(sorted(set(problems)))
        super().__init__("\n".join(str(p) for p in self.problems))


class RenderError(EnvspecError):
    """A target could not render (a value it cannot carry, a broken user template)."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(sorted(set(problems)))
        super().__init__("\n".join(str(p) for p in self.problems))


class OutputError(EnvspecError):
    """Writing was refused or failed; nothing was changed."""


class UnknownEnvironmentError(EnvspecError):
    """An environment named on the command line does not exist or is ambiguous."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a candidate is close to ``name``, else an empty string."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""
