"""``.env.example``: every variable described, defaults filled in, secrets left empty."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from envspec.models import LiteralValue, SecretSource, Spec, Variable
from envspec.render.base import RenderedFile, Templates
from envspec.render.filters import CannotCarry, dotenv_quote
from envspec.resolve import ResolvedEnvironment, coerce


@dataclass(frozen=True)
class ExampleEntry:
    name: str
    kind: str
    description: str
    notes: tuple[str, ...]
    value: str | None
    quoted: str
    """The value as the .env line carries it (empty when there is none)."""


class ExampleRenderer:
    def render(
        self, spec: Spec, environments: Mapping[str, ResolvedEnvironment], templates: Templates
    ) -> Iterable[RenderedFile]:
        entries = [self._entry(spec, name, environments) for name in spec.variables]
        yield RenderedFile(
            ".env.example",
            templates.render("example/env.example.j2", project=spec.project, entries=entries),
        )

    def _entry(
        self, spec: Spec, name: str, environments: Mapping[str, ResolvedEnvironment]
    ) -> ExampleEntry:
        variable = spec.variables[name]
        kind = (
            variable.type
            + (", secret" if variable.secret else "")
            + (", required" if variable.is_required else "")
        )
        if variable.type == "enum" and variable.choices:
            kind += ": " + " | ".join(variable.choices)
        notes: list[str] = []
        value: str | None = None
        quoted = ""
        if variable.secret:
            sources = []
            for env_name, environment in environments.items():
                resolved = environment.variables.get(name)
                if resolved is None:
                    continue
                source = str(resolved.reference) if resolved.reference else "a literal in the spec"
                sources.append(f"{env_name}: {source}")
            notes.append("secret, from " + "; ".join(sources) if sources else "secret")
        else:
            value, quoted = _example_value(variable, (variable.default, variable.example))
        return ExampleEntry(name, kind, variable.description, tuple(notes), value, quoted)


def _example_value(
    variable: Variable, candidates: tuple[LiteralValue | SecretSource | None, ...]
) -> tuple[str | None, str]:
    """The first candidate that is valid for the variable and that a .env line can carry."""
    for candidate in candidates:
        if candidate is None or isinstance(candidate, SecretSource):
            continue
        try:
            text = coerce(variable, candidate)
            return text, dotenv_quote(text)
        except (ValueError, CannotCarry):
            continue
    return None, ""
