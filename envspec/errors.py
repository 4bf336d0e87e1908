"""Problems as values, one exception family, and the exit codes in one place.

A :class:`Problem` is one positioned finding in the spec. Stages collect problems and raise a single
:class:`SpecError` holding all of them, so a user sees every mistake in one run. Messages never
contain a secret's value: the stage that builds a message knows whether the value is secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from envspec.location import Position

Severity = Literal["error", "warning"]


class ExitCode(IntEnum):
    """What envspec exits with besides 0 (click's own usage errors exit 2)."""

    FAILURE = 1
    INTERRUPTED = 130


class Problem(NamedTuple):
    """One finding, printed as ``file:line:col: path: message``."""

    file: str
    line: int
    column: int
    path: str
    message: str
    severity: Severity = "error"

    @classmethod
    def at(
        cls, position: Position, path: str, message: str, severity: Severity = "error"
    ) -> Problem:
        """The problem ``message`` about ``path``, at ``position`` in a spec file."""
        return cls(position.file, position.line, position.column, path, message, severity)

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


class ProblemsError(EnvspecError):
    """An error made of positioned problems, each reported once, sorted by file and position."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(sorted(set(problems)))
        super().__init__("\n".join(str(p) for p in self.problems))


class SpecError(ProblemsError):
    """The spec is invalid; carries every problem found."""


class RenderError(ProblemsError):
    """A target could not render (a value it cannot carry, a broken user template)."""


class OutputError(EnvspecError):
    """Writing was refused or failed; nothing was changed."""


class UnknownEnvironmentError(EnvspecError):
    """An environment named on the command line does not exist or is ambiguous."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a candidate is close to ``name``, else an empty string."""
    import difflib

    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""
