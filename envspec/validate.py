"""Raw spec data -> validated models, every problem positioned at the text that caused it.

Pydantic checks each file's shape; the cross-references between files and sections (names of
services, variables and environments, dependency cycles) are checked here, so all problems of a
spec are reported in one run.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from envspec.derive import FactPart, VariablePart
from envspec.errors import Problem, SpecError, did_you_mean
from envspec.loader import Document, RawSpec
from envspec.location import SourceMap, SpecPath, dotted
from envspec.models import (
    ENVIRONMENT_VARIABLE,
    DerivedSource,
    Overlay,
    SecretSource,
    ServiceFields,
    Spec,
    SpecBundle,
    class_name,
    dns_label,
)

_KEY_RULES = {
    "services": "a service name must be a DNS-1035 label: a lowercase letter, then lowercase "
    "letters, digits and '-', at most 63 (a Kubernetes Service and a Python class start with a "
    "letter)",
    "environments": "an environment name must be DNS-1123: lowercase letters, digits and '-'",
    "variables": "a variable name must match [A-Z][A-Z0-9_]* (pydantic-settings cannot read a "
    "name starting with '_', and a shell keeps '_' for itself)",
    "volumes": "a volume name is letters, digits, '_', '.' and '-', at most 63",
    "tasks": "a task name must be DNS-1123: lowercase letters, digits and '-', at most 52 "
    "(its Job's name adds a hash)",
    "components": "a component name must be DNS-1123: lowercase letters, digits and '-'",
}


def validate_spec(raw: RawSpec) -> SpecBundle:
    """Validate the base and every overlay; raise one :class:`SpecError` with all problems.

    When a file has the wrong shape, the cross-references are still checked on its well-formed
    parts (see :func:`_salvage`), so one run reports every problem."""
    problems: list[Problem] = []
    base, base_pruned = _validate(Spec, raw.base, problems)
    overlays: dict[str, tuple[Overlay, Pruned]] = {}
    for name, document in raw.overlays.items():
        overlay, pruned = _validate(Overlay, document, problems)
        if overlay is not None:
            overlays[name] = (overlay, pruned)
    if base is None:
        raise SpecError(problems)
    known = Known.of(base, base_pruned)
    for name in raw.overlays:
        if name not in known.environments:
            problems.append(
                Problem(
                    raw.overlays[name].source.file,
                    1,
                    1,
                    "",
                    f"overlay for unknown environment '{name}'"
                    + did_you_mean(name, sorted(known.environments)),
                )
            )
    problems.extend(_cross_references(base, raw.base.source, known))
    for name, (overlay, _) in overlays.items():
        if name in known.environments:
            source = raw.overlays[name].source
            problems.extend(_overlay_references(overlay, source, known))
            problems.extend(_values_reaching_nothing(base, name, overlay, source))
    sources = {name: document.source for name, document in raw.overlays.items()}
    problems.extend(_collisions(base, overlays, raw.base.source, sources))
    if problems:
        raise SpecError(problems)
    return SpecBundle(
        base=base,
        overlays={
            name: overlays[name][0] if name in overlays else Overlay() for name in base.environments
        },
    )


def keep_accepted_parses(raw: RawSpec, bundle: SpecBundle, accepted: Iterable[str]) -> None:
    """Let the loader cache the parses of the files that hold no secret's literal, once
    validation accepted the ``accepted`` environments: the base unless a secret variable has a
    default there or a service's own value of one that is not a reference (a literal, or one
    derived from literal text, is allowed while every non-local environment overrides it), and
    the overlays of those environments that are not local."""
    spec = bundle.base
    files: list[str | None] = [name for name in accepted if not spec.environments[name].local]
    secret = {name for name, variable in spec.variables.items() if variable.secret}
    if not any(spec.variables[name].default is not None for name in secret) and not any(
        name in secret and not isinstance(value, SecretSource)
        for service in spec.services.values()
        for name, value in (service.values or {}).items()
    ):
        files.append(None)
    raw.keep_parses(files)


Pruned = dict[str, set[str]]
"""Names of a file's entries (``services``, ``variables``, ``environments``) left out because
they had problems of their own; they still count as declared for cross-references."""

SALVAGE_ROUNDS = 20


class Known(NamedTuple):
    """The names a spec declares, its left-out entries included."""

    services: frozenset[str]
    variables: frozenset[str]
    environments: frozenset[str]

    @classmethod
    def of(cls, spec: Spec, pruned: Pruned) -> Known:
        return cls(
            frozenset(spec.services) | pruned.get("services", set()),
            frozenset(spec.variables) | pruned.get("variables", set()),
            frozenset(spec.environments) | pruned.get("environments", set()),
        )


M = TypeVar("M", bound=BaseModel)


def _validate(
    model: type[M], document: Document, problems: list[Problem]
) -> tuple[M | None, Pruned]:
    try:
        return model.model_validate(document.data), {}
    except ValidationError as error:
        details = error.errors(include_input=False, include_url=False)
    for detail in details:
        problems.append(
            _problem(model, detail["loc"], detail["type"], detail["msg"], document.source)
        )
    return _salvage(model, document.data, details)


def _salvage(model: type[M], data: Any, details: list[Any]) -> tuple[M | None, Pruned]:
    """The file's well-formed part: each entry with a problem left out, until the rest
    validates (``None`` when what would be left out is the file itself)."""
    data = copy.deepcopy(data)
    pruned: Pruned = {}
    for _ in range(SALVAGE_ROUNDS):
        for detail in details:
            loc = tuple(detail["loc"])
            if not _prune(data, loc[:-1] if detail["type"] == "missing" else loc, pruned):
                return None, pruned
        data = _without_gone(data)
        try:
            return model.model_validate(data), pruned
        except ValidationError as error:
            details = error.errors(include_input=False, include_url=False)
    return None, pruned


_GONE = object()


def _prune(data: Any, loc: tuple[int | str, ...], pruned: Pruned) -> bool:
    """Mark the entry that ``loc`` points at as left out; False when that is the whole file.
    Parts of ``loc`` that name a union's member rather than a key are skipped."""
    trail: list[tuple[Any, Any]] = []
    current = data
    for key in loc:
        if current is _GONE:
            return True
        if _has(current, key):
            trail.append((current, key))
            current = current[key]
    if not trail:
        return False
    container, key = trail[-1]
    container[key] = _GONE
    section = trail[0][1]
    if len(trail) >= 2 and section in ("services", "variables", "environments"):
        pruned.setdefault(section, set()).add(str(trail[1][1]))
    return True


def _has(container: Any, key: int | str) -> bool:
    if isinstance(container, dict):
        return key in container
    return isinstance(container, list) and isinstance(key, int) and 0 <= key < len(container)


def _without_gone(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _without_gone(value) for key, value in data.items() if value is not _GONE}
    if isinstance(data, list):
        return [_without_gone(item) for item in data if item is not _GONE]
    return data


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
    return Problem.at(position, dotted(path), text)


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


def _cross_references(spec: Spec, source: SourceMap, known: Known) -> Iterator[Problem]:
    for name, service in spec.services.items():
        for index, dependency in enumerate(service.depends_on or ()):
            path = ("services", name, "depends_on", index)
            if dependency == name:
                yield _at(source, path, f"service '{name}' depends on itself")
            elif dependency not in known.services:
                yield _at(
                    source,
                    path,
                    f"unknown service '{dependency}'"
                    + did_you_mean(dependency, sorted(known.services)),
                )
        yield from _known(
            source, ("services", name, "variables"), service.variables, known.variables, "variable"
        )
        yield from _service_values(source, ("services", name), service, known)
        yield from _escape_hatches(source, ("services", name), service, known)
        yield from _known(
            source,
            ("services", name, "environments"),
            service.environments,
            known.environments,
            "environment",
        )
    for name, variable in spec.variables.items():
        if name.startswith("ENVSPEC_"):
            yield _key(
                source, ("variables", name), "names starting with ENVSPEC_ are envspec's own"
            )
        for index, rule in enumerate(variable.rules):
            yield from _rule_scope(
                source, ("variables", name, "rules", index, "where"), rule.where, known
            )
        if isinstance(variable.default, DerivedSource):
            yield from _formula_references(
                source, ("variables", name, "default"), variable.default, known
            )
    for name, task in spec.tasks.items():
        if task.service not in known.services:
            yield _at(
                source,
                ("tasks", name, "service"),
                f"unknown service '{task.service}'"
                + did_you_mean(task.service, sorted(known.services)),
            )
        if name in known.services:
            yield _key(
                source,
                ("tasks", name),
                f"task '{name}' has the name of a service; compose runs both by name",
            )
    for name, config in spec.environments.items():
        if config.secrets.provider == "fake" and not config.local:
            yield _at(
                source,
                ("environments", name, "secrets", "provider"),
                f"the fake provider holds literal secrets: it is for local environments only, "
                f"and '{name}' is not local",
            )
    for name, component in spec.parity.components.items():
        for described in component.cells:
            if described not in known.environments:
                yield _key(
                    source,
                    ("parity", "components", name, described),
                    f"unknown environment '{described}'"
                    + did_you_mean(described, sorted(known.environments))
                    + " (a component has score, reason and a text per environment)",
                )
    yield from _cycles(spec, source)


def _formula_references(
    source: SourceMap, path: SpecPath, value: DerivedSource, known: Known
) -> Iterator[Problem]:
    """Unknown variables and services named in a derived value."""
    for token in value.tokens:
        if isinstance(token, VariablePart) and token.name not in known.variables:
            yield _at(
                source,
                (*path, "from"),
                f"unknown variable '{token.name}'"
                + did_you_mean(token.name, sorted(known.variables)),
            )
        elif isinstance(token, FactPart) and token.service not in known.services:
            yield _at(
                source,
                (*path, "from"),
                f"unknown service '{token.service}' in '${{{token.label}}}'"
                + did_you_mean(token.service, sorted(known.services)),
            )


def _overlay_references(overlay: Overlay, source: SourceMap, known: Known) -> Iterator[Problem]:
    for name, value in overlay.variables.items():
        if name not in known.variables:
            yield _key(
                source,
                ("variables", name),
                f"unknown variable '{name}'" + did_you_mean(name, sorted(known.variables)),
            )
        if isinstance(value, DerivedSource):
            yield from _formula_references(source, ("variables", name), value, known)
    for name, patch in overlay.services.items():
        if name not in known.services:
            yield _key(
                source,
                ("services", name),
                f"unknown service '{name}'" + did_you_mean(name, sorted(known.services)),
            )
            continue
        for index, dependency in enumerate(patch.depends_on or ()):
            if dependency not in known.services:
                yield _at(
                    source,
                    ("services", name, "depends_on", index),
                    f"unknown service '{dependency}'"
                    + did_you_mean(dependency, sorted(known.services)),
                )
        yield from _known(
            source, ("services", name, "variables"), patch.variables, known.variables, "variable"
        )
        yield from _service_values(source, ("services", name), patch, known)
        yield from _escape_hatches(source, ("services", name), patch, known)
    for index, difference in enumerate(overlay.differences):
        yield from _known(
            source,
            ("differences", index, "environments"),
            difference.environments,
            known.environments,
            "environment",
        )


def _values_reaching_nothing(
    spec: Spec, environment: str, overlay: Overlay, source: SourceMap
) -> Iterator[Problem]:
    """An overlay's own values for a service that is not deployed there (limited by
    ``environments:``, or ``external`` there): no artifact would carry them, and a secret's
    literal among them would pass for a reference."""
    for name, patch in overlay.services.items():
        service = spec.services.get(name)
        if service is None or not patch.values:
            continue
        if service.environments is not None and environment not in service.environments:
            reason = f"is not in environment '{environment}' (services.{name}.environments)"
        elif patch.external if patch.external is not None else service.external:
            reason = f"is external in '{environment}': nothing is deployed for it there"
        else:
            continue
        yield _key(
            source,
            ("services", name, "values"),
            f"service '{name}' {reason}, so these values would reach nothing; remove them",
        )


def _service_values(
    source: SourceMap, path: SpecPath, service: ServiceFields, known: Known
) -> Iterator[Problem]:
    """A service's own values name declared variables, and their formulas known names."""
    for name, value in (service.values or {}).items():
        at = (*path, "values", name)
        if name not in known.variables:
            yield _key(
                source,
                at,
                f"unknown variable '{name}'" + did_you_mean(name, sorted(known.variables)),
            )
        if isinstance(value, DerivedSource):
            yield from _formula_references(source, at, value, known)


_DECLARE = "declare it under variables"


def _escape_hatches(
    source: SourceMap, path: SpecPath, service: ServiceFields, known: Known
) -> Iterator[Problem]:
    """The ``compose:`` and ``kubernetes:`` escape hatches may add to what envspec writes, never
    set a variable of the model (its type, secrecy and parity checks would be bypassed)."""

    def declared(name: object) -> bool:
        return isinstance(name, str) and (name == ENVIRONMENT_VARIABLE or name in known.variables)

    compose = service.compose or {}
    at = (*path, "compose")
    environment = compose.get("environment")
    if isinstance(environment, dict):
        for name in environment:
            if declared(name):
                yield _key(
                    source,
                    (*at, "environment", name),
                    f"'{name}' is a variable of the spec: {_DECLARE}, not in compose.environment",
                )
    elif environment is not None:
        yield _at(
            source,
            (*at, "environment"),
            "compose.environment must be a mapping (a list would replace the variables envspec "
            "sets)",
        )
    if "env_file" in compose:
        yield _key(
            source,
            (*at, "env_file"),
            f"an env_file may set any variable, the spec's among them: {_DECLARE}",
        )
    kubernetes = service.kubernetes
    if kubernetes is None:
        return
    at = (*path, "kubernetes")
    env = kubernetes.container.get("env")
    if isinstance(env, list):
        for index, entry in enumerate(env):
            name = entry.get("name") if isinstance(entry, dict) else None
            if declared(name):
                yield _at(
                    source,
                    (*at, "container", "env", index, "name"),
                    f"'{name}' is a variable of the spec: {_DECLARE}, not in container.env",
                )
    elif env is not None:
        yield _at(source, (*at, "container", "env"), "container.env must be a list")
    if "envFrom" in kubernetes.container:
        yield _key(
            source,
            (*at, "container", "envFrom"),
            "envFrom may set any variable, the spec's among them: "
            f"{_DECLARE} (a k8s:// reference reads an existing Secret)",
        )
    if "containers" in kubernetes.pod:
        yield _key(
            source,
            (*at, "pod", "containers"),
            "the pod's containers are envspec's: change the service's in kubernetes.container",
        )
    template = kubernetes.deployment.get("spec", {})
    if isinstance(template, dict) and "template" in template:
        yield _key(
            source,
            (*at, "deployment", "spec", "template"),
            "the pod template is envspec's: change it in kubernetes.pod and kubernetes.container",
        )


def _collisions(
    spec: Spec,
    overlays: Mapping[str, tuple[Overlay, Pruned]],
    base: SourceMap,
    sources: Mapping[str, SourceMap],
) -> Iterator[Problem]:
    """Two names of the spec that a target would make one: services' settings classes
    (``a1``, ``a-1``), volumes' Kubernetes claims (``data_1``, ``data-1``; ``web`` with ``a-b``,
    ``web-a`` with ``b``). Reported at the second, naming the first."""
    classes: dict[str, str] = {}
    for name in spec.services:
        other = classes.setdefault(class_name(name), name)
        if other != name:
            yield _key(
                base,
                ("services", name),
                f"service '{name}' and service '{other}' ({base.key(('services', other))}) "
                f"would both be the settings class '{class_name(name)}'",
            )
    for environment, config in spec.environments.items():
        if "kubernetes" not in config.targets:
            continue
        overlay = overlays[environment][0] if environment in overlays else None
        claims: dict[str, tuple[str, str, SourceMap, SpecPath]] = {}
        for service_name, service in spec.services.items():
            if service.environments is not None and environment not in service.environments:
                continue
            patch = overlay.services.get(service_name) if overlay is not None else None
            volumes, source = service.volumes or {}, base
            if patch is not None and patch.volumes is not None:
                volumes, source = patch.volumes, sources[environment]
            for volume in volumes:
                path = ("services", service_name, "volumes", volume)
                claim = f"{service_name}-{dns_label(volume)}"
                first = claims.setdefault(claim, (service_name, volume, source, path))
                if first[:2] != (service_name, volume):
                    other_service, other_volume, other_source, other_path = first
                    yield Problem.at(
                        source.key(path),
                        dotted(path),
                        f"volume '{volume}' of service '{service_name}' and "
                        f"volume '{other_volume}' of service '{other_service}' "
                        f"({other_source.key(other_path)}) would both "
                        f"be the Kubernetes claim '{claim}'",
                    )


def _known(
    source: SourceMap,
    path: SpecPath,
    names: Iterable[str] | None,
    known: Collection[str],
    what: str,
) -> Iterator[Problem]:
    for index, name in enumerate(names or ()):
        if name not in known:
            yield _at(
                source,
                (*path, index),
                f"unknown {what} '{name}'" + did_you_mean(name, sorted(known)),
            )


def _rule_scope(source: SourceMap, path: SpecPath, where: str, known: Known) -> Iterator[Problem]:
    scopes = ["all", "local", "non-local", *sorted(known.environments)]
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
    return Problem.at(position, dotted(path), message)


def _key(source: SourceMap, path: SpecPath, message: str) -> Problem:
    position = source.key(path)
    return Problem.at(position, dotted(path), message)
