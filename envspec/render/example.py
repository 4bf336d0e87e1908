"""``.env.example``: every variable described, defaults filled in, secrets left empty."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple

from envspec.models import Spec, Variable
from envspec.render.base import RenderedFile, Templates
from envspec.render.filters import CannotCarry, comment, dotenv_quote
from envspec.resolve import ResolvedEnvironment, ResolvedVariable, coerce


class ExampleEntry(NamedTuple):
    name: str
    kind: str
    description: str
    notes: tuple[str, ...]
    value: str | None
    quoted: str
    """The value as the .env line carries it (empty when there is none)."""
    heading: str
    """The first comment's text: name, kind and description."""
    comments: tuple[str, ...]
    """The notes as comment lines' text."""
    line: str
    """``NAME=quoted``."""


class ExampleRenderer:
    scope: Final = "project"
    needs_environments: Final = True

    def render(
        self,
        spec: Spec,
        environments: Mapping[str, ResolvedEnvironment],
        defaults: Mapping[str, ResolvedVariable],
        templates: Templates,
    ) -> Iterable[RenderedFile]:
        formulas = _formulas(environments)
        own = _own_values(environments)
        entries = [
            _entry(
                name,
                variable,
                environments,
                defaults.get(name),
                formulas=formulas.get(name),
                own=own.get(name),
            )
            for name, variable in spec.variables.items()
        ]
        yield RenderedFile(
            ".env.example",
            templates.render("example/env.example.j2", project=spec.project, entries=entries),
        )


def _entry(
    name: str,
    variable: Variable,
    environments: Mapping[str, ResolvedEnvironment],
    default: ResolvedVariable | None,
    *,
    formulas: Mapping[str, str] | None,
    own: Mapping[str, list[str]] | None,
) -> ExampleEntry:
    """The entry of variable ``name``; ``formulas`` (its formula in each environment where it
    is derived) and ``own`` (see :func:`_own_values`) are None where it has none."""
    kind: str = variable.type
    if variable.secret:
        kind += ", secret"
    if variable.is_required:
        kind += ", required"
    if variable.type == "enum" and variable.choices:
        kind += ": " + " | ".join(variable.choices)
    notes: list[str] = []
    value: str | None = None
    quoted = ""
    if formulas is not None:
        if len(formulas) == len(environments) and len(set(formulas.values())) == 1:
            notes.append(f"derived: {next(iter(formulas.values()))}")
        else:
            notes.extend(f"derived in {env}: {formula}" for env, formula in formulas.items())
    if variable.secret:
        sources = []
        for env_name, environment in environments.items():
            resolved = environment.variables.get(name)
            if resolved is None or resolved.formula:
                continue
            source = str(resolved.reference) if resolved.reference else "a literal in the spec"
            sources.append(f"{env_name}: {source}")
        if sources or formulas is None:
            notes.append("secret, from " + "; ".join(sources) if sources else "secret")
    else:
        value, quoted = _example_value(variable, default, variable.example)
    if own is not None:
        notes.extend(
            f"service {service} has its own value in {', '.join(names)}"
            for service, names in own.items()
        )
    description = variable.description
    heading = f"{name} ({kind}): {comment(description)}" if description else f"{name} ({kind})"
    return ExampleEntry(
        name,
        kind,
        description,
        tuple(notes),
        value,
        quoted,
        heading,
        tuple(map(comment, notes)),
        f"{name}={quoted}",
    )


def _formulas(environments: Mapping[str, ResolvedEnvironment]) -> dict[str, dict[str, str]]:
    """For each derived variable, its formula in each environment where it is derived (in the
    environments' order): gathered in one pass, most variables are derived nowhere."""
    found: dict[str, dict[str, str]] = {}
    for env_name, environment in environments.items():
        for name, resolved in environment.variables.items():
            if resolved.formula:
                found.setdefault(name, {})[env_name] = resolved.formula
    return found


def _own_values(environments: Mapping[str, ResolvedEnvironment]) -> dict[str, dict[str, list[str]]]:
    """For each variable, the services that have their own value of it and the environments
    where they do: gathered once, not searched for each variable (50,000 variables x 1,000
    services x 3 environments took 7 s)."""
    found: dict[str, dict[str, list[str]]] = {}
    for env_name, environment in environments.items():
        for service in environment.services:
            for name in service.own:
                if name in service.variables:
                    found.setdefault(name, {}).setdefault(service.name, []).append(env_name)
    return found


def _example_value(
    variable: Variable, default: ResolvedVariable | None, example: str | None
) -> tuple[str | None, str]:
    """The default, else the example: the first that is valid for the variable and that a .env
    line can carry."""
    if default is not None and default.value is not None:
        quoted = _carried(default.value)
        if quoted is not None:
            return default.value, quoted
    if example is not None:
        try:
            text = coerce(variable, example)
        except ValueError:
            return None, ""
        quoted = _carried(text)
        if quoted is not None:
            return text, quoted
    return None, ""


def _carried(text: str) -> str | None:
    try:
        return dotenv_quote(text)
    except CannotCarry:
        return None
