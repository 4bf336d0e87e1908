"""Raw spec data -> validated models, every problem positioned at the text that caused it.

Pydantic checks each file's shape; the cross-references between files and sections (names of
services, variables and environments, dependency cycles) are checked here, so all problems of a
spec are reported in one run.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from envspec.errors import Problem, SpecError, did_you_mean
from envspec.loader import Document, RawSpec
from envspec.location import SourceMap, SpecPath, dotted
from envspec.models import Overlay, Spec, SpecBundle

_KEY_RULES = {
    "services": "a service name must be DNS-1123: lowercase letters, digits and '-', at most 63",
    "environments": "an environment name must be DNS-1123: lowercase letters, digits and '-'",
    "variables": "a variable name must match [A-Z_][A-Z0-9_]*",
    "volumes": "a volume name is letters, digits, '_', '.' and '-', at most 63",
}


def validate_spec(raw: RawSpec) -> SpecBundle:
    """Validate the base and every overlay; raise one :class:`SpecError` with all problems."""
    problems: list[Problem] = []
    base = _validate(Spec, raw.base, problems)
    overlays: dict[str, Overlay] = {}
    for name, document in raw.overlays.items():
        overlay = _validate(Overlay, document, problems)
        if overlay is not None:
            overlays[name] = overlay
    if base is None:
        raise SpecError(problems)
    for name in raw.overlays:
        if name not in base.environments:
            problems.append(
                Problem(
                    raw.overlays[name].source.file,
                    1,
                    1,
                    "",
                    f"overlay for unknown environment '{name}'"
                    + did_you_mean(name, base.environments),
                )
            )
    problems.extend(_cross_references(base, raw.base.source))
    for name, overlay in overlays.items():
        if name in base.environments:
            problems.extend(_overlay_references(base, overlay, raw.overlays[name].source))
    if problems:
        raise SpecError(problems)
    return SpecBundle(
        base=base,
        overlays={name: overlays.get(name, Overlay()) for name in base.environments},
    )


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], document: Document, problems: list[Problem]) -> M | None:
    try:
        return model.model_validate(document.data)
    except ValidationError as error:
        for detail in error.errors(include_input=False, include_url=False):
            problems.append(
                _problem(model, detail["loc"], detail["type"], detail["msg"], document.source)
            )
        return None


def _problem(
    model: type[BaseModel], loc: tuple[int | str, ...], kind: str, message: str, source: SourceMap
) -> Problem:
    path: SpecPath = tuple(loc)
    if path and path[-1] == "[key]":
        path = path[:-1]
        parent = str(path[-2]) if len(path) >= 2 else ""
        position = source.key(path)
        text = f"invalid name '{path[-1]}': {_KEY_RULES.get(parent, message)}"
    elif kind == "extra_forbidden":
        position = source.key(path)
        field = str(path[-1])
        text = f"unknown field '{field}'" + did_you_mean(field, _fields_at(model, path[:-1]))
    elif kind == "missing":
        position = source.value(path[:-1])
        text = f"missing required field '{path[-1]}'"
    else:
        position = source.value(path)
        text = _clean(message)
    return Problem(position.file, position.line, position.column, dotted(path), text)


def _clean(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].lower() + message[1:]


def _fields_at(model: type[BaseModel], path: SpecPath) -> Iterable[str]:
    """Names of the fields allowed at ``path`` (for "did you mean")."""
    current: Any = model
    for key in path:
        current = _step(current, key)
        if current is None:
            return ()
    found = _model_in(current)
    return found.model_fields if found is not None else ()


def _step(annotation: Any, key: str | int) -> Any:
    found = _model_in(annotation)
    if found is not None:
        field = found.model_fields.get(str(key))
        return field.annotation if field is not None else None
    for arg in _args(annotation):
        origin = typing.get_origin(arg)
        if origin in (dict, tuple, list):
            return typing.get_args(arg)[-1 if origin is dict else 0]
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for arg in _args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _args(annotation: Any) -> Iterator[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _args(typing.get_args(annotation)[0])
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _args(arg)
    else:
        yield annotation


def _cross_references(spec: Spec, source: SourceMap) -> Iterator[Problem]:
    services = spec.services
    for name, service in services.items():
        for index, dependency in enumerate(service.depends_on or ()):
            path = ("services", name, "depends_on", index)
            if dependency == name:
                yield _at(source, path, f"service '{name}' depends on itself")
            elif dependency not in services:
                yield _at(
                    source,
                    path,
                    f"unknown service '{dependency}'" + did_you_mean(dependency, services),
                )
        yield from _known(
            source, ("services", name, "variables"), service.variables, spec.variables, "variable"
        )
        yield from _known(
            source,
            ("services", name, "environments"),
            service.environments,
            spec.environments,
            "environment",
        )
    for name, variable in spec.variables.items():
        if name.startswith("ENVSPEC_"):
            yield _key(
                source, ("variables", name), "names starting with ENVSPEC_ are envspec's own"
            )
        for index, rule in enumerate(variable.rules):
            yield from _rule_scope(
                source, ("variables", name, "rules", index, "where"), rule.where, spec
            )
    yield from _cycles(spec, source)


def _overlay_references(spec: Spec, overlay: Overlay, source: SourceMap) -> Iterator[Problem]:
    for name in overlay.variables:
        if name not in spec.variables:
            yield _key(
                source,
                ("variables", name),
                f"unknown variable '{name}'" + did_you_mean(name, spec.variables),
            )
    for name, patch in overlay.services.items():
        if name not in spec.services:
            yield _key(
                source,
                ("services", name),
                f"unknown service '{name}'" + did_you_mean(name, spec.services),
            )
            continue
        for index, dependency in enumerate(patch.depends_on or ()):
            if dependency not in spec.services:
                yield _at(
                    source,
                    ("services", name, "depends_on", index),
                    f"unknown service '{dependency}'" + did_you_mean(dependency, spec.services),
                )
        yield from _known(
            source, ("services", name, "variables"), patch.variables, spec.variables, "variable"
        )
    for index, difference in enumerate(overlay.differences):
        yield from _known(
            source,
            ("differences", index, "environments"),
            difference.environments,
            spec.environments,
            "environment",
        )


def _known(
    source: SourceMap,
    path: SpecPath,
    names: Iterable[str] | None,
    known: Mapping[str, object],
    what: str,
) -> Iterator[Problem]:
    for index, name in enumerate(names or ()):
        if name not in known:
            yield _at(
                source, (*path, index), f"unknown {what} '{name}'" + did_you_mean(name, known)
            )


def _rule_scope(source: SourceMap, path: SpecPath, where: str, spec: Spec) -> Iterator[Problem]:
    scopes = ["all", "local", "non-local", *spec.environments]
    if where not in scopes:
        yield _at(
            source,
            path,
            f"unknown scope '{where}': expected all, local, non-local or an environment"
            + did_you_mean(where, scopes),
        )


def _cycles(spec: Spec, source: SourceMap) -> Iterator[Problem]:
    graph = {
        name: [d for d in service.depends_on or () if d in spec.services]
        for name, service in spec.services.items()
    }
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()
    for start, children_of_start in graph.items():
        if state.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(children_of_start))]
        state[start] = 1
        trail = [start]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                trail.pop()
            elif state.get(child) == 1:
                cycle = [*trail[trail.index(child) :], child]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    yield _at(
                        source,
                        ("services", node, "depends_on"),
                        "dependency cycle: " + " -> ".join(cycle),
                    )
            elif not state.get(child):
                state[child] = 1
                trail.append(child)
                stack.append((child, iter(graph[child])))


def _at(source: SourceMap, path: SpecPath, message: str) -> Problem:
    position = source.value(path)
    return Problem(position.file, position.line, position.column, dotted(path), message)


def _key(source: SourceMap, path: SpecPath, message: str) -> Problem:
    position = source.key(path)
    return Problem(position.file, position.line, position.column, dotted(path), message)
