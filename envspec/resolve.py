"""Base + overlay -> one :class:`ResolvedEnvironment`: every value typed, checked and final.

A resolved variable holds the exact text the application will read (booleans as ``true``/``false``,
lists as JSON arrays or joined by their separator) or a secret reference. A secret's literal value
is kept only in local environments, and no message built here ever contains a secret's value.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from envspec.derive import Composition, FactPart, Piece, SecretPart, Text, VariablePart, joined
from envspec.errors import Problem, SpecError
from envspec.location import Origin, SourceMap, SpecPath, dotted
from envspec.models import (
    FLOATING_TAGS,
    RESTRICTED_ROOT,
    ComposeDefinitions,
    DeclaredDifference,
    DerivedSource,
    Environment,
    KubernetesPatch,
    LiteralValue,
    Overlay,
    Rule,
    SecretSource,
    SecurityLevel,
    Service,
    ServicePatch,
    Shutdown,
    Spec,
    SpecBundle,
    Task,
    Variable,
    is_root,
)
from envspec.secrets import SecretRef

_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
"""ASCII digits only: Python's float() also reads other scripts' digits and '_', pydantic does
not."""
_SPACE = re.compile(r"\s")
_PLAIN_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9._~%!$&'()*+,;=:@-]+(/[!-~]*)?")
DEFAULT_SHUTDOWN = Shutdown()
_LITERAL = (str, list)
_WRITTEN = (str, list, SecretSource)
"""What a value written for a variable may be, derived values aside (tuples: ``str | list``
would build a union type at each check, four times slower)."""
"""A service's shutdown when its spec gives none (shared: models are frozen)."""
_BOOLS = {
    "true": "true",
    "yes": "true",
    "on": "true",
    "1": "true",
    "false": "false",
    "no": "false",
    "off": "false",
    "0": "false",
}


class ResolvedVariable(NamedTuple):
    """One variable in one environment: its final text, or the reference it comes from."""

    name: str
    spec: Variable
    value: str | None
    reference: SecretRef | None
    origin: Origin
    sensitive: bool
    """A secret (declared so, or read from a reference): its literal (local environments only)
    is never shown outside their files."""
    formula: str | None = None
    """A derived value's ``from:`` text (its ``value`` is the composed text when every part is
    a literal)."""
    composition: Composition | None = None
    """A derived value with a secret part, which each target composes at run time (``value``
    and ``reference`` are None)."""
    parts: tuple[Part, ...] = ()
    """What each reference of a derived value's formula stood for here."""


class Part(NamedTuple):
    """One reference of a formula in one environment: a variable, or a service fact and where
    it was written (None when it is the service's own name or port)."""

    label: str
    variable: ResolvedVariable | None
    fact: str | None
    origin: Origin | None


@dataclass(frozen=True)
class ResolvedService:
    """A service in one environment. :meth:`value` is the one place that says what a variable
    it receives is for it: its own value (``services.<svc>.values``, or an environment-wide
    derived value composed again from its own parts), else the environment's."""

    name: str
    spec: Service
    external: bool
    variables: tuple[str, ...]
    depends_on: tuple[str, ...]
    scope: Mapping[str, ResolvedVariable] = dataclasses.field(default_factory=dict, compare=False)
    """The environment's values."""
    own: Mapping[str, ResolvedVariable] = dataclasses.field(default_factory=dict, compare=False)
    """The values that are the service's own here."""

    def value(self, name: str) -> ResolvedVariable:
        """Variable ``name`` as this service reads it."""
        own = self.own.get(name)
        return own if own is not None else self.scope[name]

    @property
    def values(self) -> tuple[ResolvedVariable, ...]:
        """Every variable the service receives, with its value for this service."""
        if not self.own:
            return tuple(map(self.scope.__getitem__, self.variables))
        return tuple(map(self.value, self.variables))

    def secret_name(self, name: str) -> str:
        """Where a secret of the service comes from, by name: the variable's own name for the
        environment's value; ``<SERVICE>__<NAME>`` (``BILLING__DATABASE_URL``) for its own: the
        shell variable compose reads and the key in the environment's Secret."""
        return own_secret_name(self.name, name) if name in self.own else name

    @property
    def image(self) -> str:
        """``repo:tag``, pinned as ``repo:tag@sha256:...`` when the service has a digest."""
        image = f"{self.spec.image}:{self.spec.version}" if self.spec.version else self.spec.image
        return f"{image}@{self.spec.digest}" if self.spec.digest else image

    @property
    def shutdown(self) -> Shutdown:
        return self.spec.shutdown or DEFAULT_SHUTDOWN

    @property
    def uid(self) -> int | None:
        return int(self.spec.user.split(":")[0]) if self.spec.user else None

    @property
    def gid(self) -> int | None:
        user = self.spec.user
        return int(user.split(":")[1]) if user and ":" in user else None

    @property
    def security(self) -> SecurityLevel:
        """The Pod Security Standard the service meets: ``restricted`` by default when it runs
        as a user that is not root, else ``baseline`` (without ``user`` it runs as its image's
        user, which envspec cannot know to be anything but root)."""
        if self.spec.security is not None:
            return self.spec.security
        return "restricted" if self.uid else "baseline"


def value_path(variable: ResolvedVariable) -> str:
    """How a message names a value: ``variables.NAME``, or a service's own value's path."""
    path = variable.origin.path
    return dotted(path[:4]) if path[0] == "services" else f"variables.{variable.name}"


def own_secret_name(service: str, name: str) -> str:
    """The name a service's own secret value has outside the service (see
    :meth:`ResolvedService.secret_name`)."""
    return f"{service.upper().replace('-', '_')}__{name}"


@dataclass(frozen=True)
class ResolvedTask:
    """A task where its service is deployed: it runs with that service's image and settings."""

    name: str
    spec: Task
    service: ResolvedService


@dataclass(frozen=True)
class ResolvedEnvironment:
    project: str
    name: str
    config: Environment
    services: tuple[ResolvedService, ...]
    variables: Mapping[str, ResolvedVariable]
    differences: tuple[DeclaredDifference, ...]
    tasks: tuple[ResolvedTask, ...] = ()
    compose: ComposeDefinitions = ComposeDefinitions()  # noqa: RUF009 - frozen, shared safely
    """The spec's top-level compose definitions (networks, volumes, secrets, configs)."""

    @property
    def namespace(self) -> str:
        return self.config.namespace or f"{self.project}-{self.name}"[:63].rstrip("-")

    @property
    def deployed(self) -> tuple[ResolvedService, ...]:
        """Services that get a workload here (not external)."""
        return tuple(service for service in self.services if not service.external)


@dataclass(frozen=True)
class SourceMaps:
    """Positions for the base file and each overlay, used to point problems at text."""

    base: SourceMap
    overlays: Mapping[str, SourceMap]

    def overlay(self, environment: str) -> SourceMap | None:
        return self.overlays.get(environment)


@dataclass(frozen=True)
class Resolution:
    """Every environment resolved, and each variable's default as resolved once for all."""

    environments: dict[str, ResolvedEnvironment]
    defaults: Mapping[str, ResolvedVariable]


Pending = dict[str, tuple[DerivedSource, bool, SpecPath]]
"""Derived values to compose, by name: the formula, whether the overlay wrote it, its path."""


class Resolver:
    """Resolves a spec one environment at a time, so that work on the environments already
    resolved can start while the others are.

    Each default is checked against its type once, whether or not an environment uses it, and
    the result is shared by every environment that does (checks that depend on the environment,
    the secret-literal rule and scoped rules, run in each)."""

    def __init__(self, bundle: SpecBundle, sources: SourceMaps) -> None:
        self.bundle = bundle
        self.sources = sources
        self.problems: list[Problem] = []
        self.defaults = _Checks(bundle.base, "", sources, self.problems).defaults()
        self.environments: dict[str, ResolvedEnvironment] = {}

    def resolve(self, name: str) -> ResolvedEnvironment | None:
        """Environment ``name``, or None when it (or anything before it) has problems."""
        spec = self.bundle.base
        config = spec.environments[name]
        overlay = self.bundle.overlays.get(name, Overlay())
        here = _EnvironmentResolution(spec, name, self.sources, self.problems, config)
        variables = dict(here.variables(overlay, self.defaults))
        merged = here.merged_services(overlay)
        if here.pending:
            variables.update(here.derived(overlay, variables, merged))
            variables = {name: variables[name] for name in spec.variables if name in variables}
        services = tuple(here.services(overlay, merged, variables))
        here.report_unset(services)
        here.check_secret_names(services)
        if self.problems:
            return None
        deployed = {service.name: service for service in services if not service.external}
        tasks = tuple(
            ResolvedTask(task_name, task, deployed[task.service])
            for task_name, task in spec.tasks.items()
            if task.service in deployed
        )
        resolved = ResolvedEnvironment(
            spec.project,
            name,
            config,
            services,
            variables,
            overlay.differences,
            tasks,
            spec.compose,
        )
        self.environments[name] = resolved
        return resolved

    def finish(self) -> Resolution:
        """The resolution; one :class:`SpecError` with every problem found."""
        if self.problems:
            raise SpecError(self.problems)
        return Resolution(self.environments, self.defaults)


def resolve_all(
    bundle: SpecBundle, sources: SourceMaps, names: Iterable[str] | None = None
) -> Resolution:
    """Resolve every environment (or those named); raise one :class:`SpecError` with the
    problems of all of them."""
    resolver = Resolver(bundle, sources)
    for name in bundle.base.environments if names is None else names:
        resolver.resolve(name)
    return resolver.finish()


class _Checks:
    """Type checks of values and the problems they find, in one environment (``name``) or, with
    no name, in the base."""

    def __init__(self, spec: Spec, name: str, sources: SourceMaps, problems: list[Problem]) -> None:
        self.spec = spec
        self.name = name
        self.sources = sources
        self.problems = problems
        self.overlay_source = sources.overlay(name)

    def _source(self, in_overlay: bool) -> SourceMap:
        source = self.overlay_source if in_overlay else self.sources.base
        assert source is not None
        return source

    def _problem(self, in_overlay: bool, path: SpecPath, message: str) -> None:
        position = self._source(in_overlay).value(path)
        self.problems.append(Problem.at(position, dotted(path), message))

    def defaults(self) -> dict[str, ResolvedVariable]:
        """Every variable's default that is a reference or a valid literal."""
        base_source = self.sources.base
        found = {}
        for name, variable in self.spec.variables.items():
            raw = variable.default
            if raw is None:
                continue
            path: SpecPath = ("variables", name, "default")
            if isinstance(raw, _LITERAL):
                text = self._typed(variable, name, raw, False, path)
                if text is not None:
                    found[name] = ResolvedVariable(
                        name, variable, text, None, Origin(base_source, path), variable.secret
                    )
            elif isinstance(raw, SecretSource):
                found[name] = ResolvedVariable(
                    name, variable, None, raw.secret, Origin(base_source, path), True
                )
            # a derived default is composed in each environment
        return found

    def _typed(
        self, variable: Variable, name: str, raw: LiteralValue, in_overlay: bool, path: SpecPath
    ) -> str | None:
        try:
            text = coerce(variable, raw)
        except ValueError as error:
            shown = "" if variable.secret else f" {_quote(raw)}"
            self._problem(
                in_overlay, path, f"value{shown} is not valid for type {variable.type}: {error}"
            )
            return None
        if "\0" in text:
            self._problem(
                in_overlay, path, "a NUL character cannot be carried by any environment variable"
            )
            return None
        return text


class _EnvironmentResolution(_Checks):
    """Resolution of one environment."""

    def __init__(
        self,
        spec: Spec,
        name: str,
        sources: SourceMaps,
        problems: list[Problem],
        config: Environment,
    ) -> None:
        super().__init__(spec, name, sources, problems)
        self.config = config
        self.pending: Pending = {}
        """Derived values to compose once every other value is known."""
        self.unset: dict[str, tuple[bool, SpecPath, str]] = {}
        """Variables without a value here that need one, each with its problem: reported
        unless every service that receives it has its own value."""

    def variables(
        self, overlay: Overlay, defaults: Mapping[str, ResolvedVariable]
    ) -> Iterator[tuple[str, ResolvedVariable]]:
        """Each variable's value here: the overlay's, else the base's default (derived values
        are left in :attr:`pending`)."""
        values = overlay.variables
        local = self.config.local
        for name, variable in self.spec.variables.items():
            raw = values.get(name)
            if raw is None:
                resolved = defaults.get(name)
                if resolved is None:  # no default, a derived one, or one with a problem
                    default = variable.default
                    if isinstance(default, DerivedSource):
                        self.pending[name] = (default, False, ("variables", name, "default"))
                    elif default is None and variable.is_required:
                        self.unset[name] = (
                            False,
                            ("variables", name),
                            f"no value in environment '{self.name}': give it a default or set "
                            f"it in environments/{self.name}.yaml",
                        )
                    continue
                if variable.secret and not local and resolved.reference is None:
                    self._secret_literal(False, resolved.origin.path, name)
                    continue
                if variable.rules and resolved.value is not None:
                    self._check_rules(variable, name, resolved.value, False, resolved.origin.path)
                yield name, resolved
            elif isinstance(raw, _WRITTEN):
                found = self._value(name, variable, raw, True, ("variables", name))
                if found is not None:
                    yield name, found
            else:
                self.pending[name] = (raw, True, ("variables", name))

    def _value(
        self,
        name: str,
        variable: Variable,
        raw: SecretSource | LiteralValue,
        in_overlay: bool,
        path: SpecPath,
    ) -> ResolvedVariable | None:
        """A value written for ``name`` (not derived) resolved, or None (reported)."""
        source = self.overlay_source if in_overlay else self.sources.base
        assert source is not None
        origin = Origin(source, path)  # not through _source: this runs for every value written
        if not isinstance(raw, _LITERAL):
            return ResolvedVariable(name, variable, None, raw.secret, origin, True)
        if variable.secret and not self.config.local:
            self._secret_literal(in_overlay, path, name)
            return None
        text = self._typed(variable, name, raw, in_overlay, path)
        if text is None:
            return None
        if variable.rules:
            self._check_rules(variable, name, text, in_overlay, path)
        return ResolvedVariable(name, variable, text, None, origin, variable.secret)

    def check_secret_names(self, services: Iterable[ResolvedService]) -> None:
        """A service's own secret is named ``<SERVICE>__<NAME>`` outside it: that name may be
        neither a variable's nor another service's secret's."""
        taken: dict[str, tuple[str, str]] = {}
        for service in services:
            for name, variable in service.own.items():
                if not variable.sensitive or variable.composition is not None:
                    continue
                key = service.secret_name(name)
                first = taken.setdefault(key, (service.name, name))
                if key in self.spec.variables:
                    clash = "the name of a variable"
                elif first != (service.name, name):
                    clash = f"the name of '{first[1]}' of service '{first[0]}'"
                else:
                    continue
                self._problem(
                    variable.origin.source is not self.sources.base,
                    variable.origin.path,
                    f"service '{service.name}' has its own secret '{name}', named '{key}' in "
                    f"compose and Kubernetes, which is also {clash}; rename one",
                )

    def report_unset(self, services: Iterable[ResolvedService]) -> None:
        """A problem for each required variable without a value here, unless every service
        that receives it has its own."""
        for name, (in_overlay, path, message) in self.unset.items():
            receivers = [service for service in services if name in self._receives(service.spec)]
            if not receivers or not all(name in service.own for service in receivers):
                self._problem(in_overlay, path, message)

    def _secret_literal(self, in_overlay: bool, path: SpecPath, name: str) -> None:
        self._problem(
            in_overlay,
            path,
            f"'{name}' is secret: a literal value is allowed only in local environments, "
            f"and '{self.name}' is not local; use {{secret: \"<backend>://<path>\"}}",
        )

    def _check_rules(
        self, variable: Variable, name: str, text: str, in_overlay: bool, path: SpecPath
    ) -> None:
        for rule in variable.rules:
            if self._applies(rule):
                failure = rule_failure(typed_rule(variable, rule), text)
                if failure is not None:
                    scope = "" if rule.where == "all" else f" in {rule.where} environments"
                    self._problem(
                        in_overlay,
                        path,
                        rule.message or f"'{name}' {failure}{scope} (environment '{self.name}')",
                    )

    def _applies(self, rule: Rule) -> bool:
        if rule.where == "all":
            return True
        if rule.where == "local":
            return self.config.local
        if rule.where == "non-local":
            return not self.config.local
        return rule.where == self.name

    def derived(
        self,
        overlay: Overlay,
        variables: Mapping[str, ResolvedVariable],
        services: Mapping[str, Service],
        pending: Pending | None = None,
    ) -> dict[str, ResolvedVariable]:
        """Every derived value here (those ``pending``, by default the environment's), each
        after the derived values it uses, from ``variables``."""
        pending = self.pending if pending is None else pending
        found: dict[str, ResolvedVariable] = {}
        for name in self._derivation_order(pending):
            resolved = self._derive(name, overlay, variables, found, services, pending=pending)
            if resolved is not None:
                found[name] = resolved
        return found

    def _derivation_order(self, pending: Pending) -> list[str]:
        """Derived values in an order where each comes after those it uses; those on a cycle
        are reported and left out."""
        graph = {
            name: [
                token.name
                for token in source.tokens
                if isinstance(token, VariablePart) and token.name in pending
            ]
            for name, (source, _, _) in pending.items()
        }
        state: dict[str, int] = {}
        order: list[str] = []
        cyclic: set[str] = set()
        for start, uses in graph.items():
            if start in state:
                continue
            state[start] = 1
            trail = [start]
            stack = [iter(uses)]
            while stack:
                child = next(stack[-1], None)
                if child is None:
                    node = trail.pop()
                    stack.pop()
                    state[node] = 2
                    order.append(node)
                elif state.get(child) == 1:
                    cycle = [*trail[trail.index(child) :], child]
                    cyclic.update(cycle)
                    _, in_overlay, path = pending[trail[-1]]
                    self._problem(
                        in_overlay,
                        (*path, "from"),
                        "derived values form a cycle: " + " -> ".join(cycle),
                    )
                elif child not in state:
                    state[child] = 1
                    trail.append(child)
                    stack.append(iter(graph[child]))
        return [name for name in order if name not in cyclic]

    def _derive(
        self,
        name: str,
        overlay: Overlay,
        variables: Mapping[str, ResolvedVariable],
        found: Mapping[str, ResolvedVariable],
        services: Mapping[str, Service],
        *,
        pending: Pending,
    ) -> ResolvedVariable | None:
        source, in_overlay, path = pending[name]
        variable = self.spec.variables[name]
        at: SpecPath = (*path, "from")
        pieces: list[Piece] = []
        parts: list[Part] = []
        secret_parts: list[str] = []
        complete = True
        for token in source.tokens:
            if isinstance(token, Text):
                pieces.append(token.text)
            elif isinstance(token, VariablePart):
                part = variables.get(token.name) or found.get(token.name)
                if part is None:
                    complete = False
                    self._missing_part(name, token.name, pending, in_overlay, at)
                    continue
                parts.append(Part(token.name, part, None, None))
                if part.spec.secret:
                    secret_parts.append(f"'{token.name}'")
                elif part.sensitive:
                    secret_parts.append(f"'{token.name}' (a secret reference in '{self.name}')")
                if part.composition is not None:
                    pieces.extend(part.composition)
                elif part.reference is not None:
                    pieces.append(SecretPart(token.name))
                else:
                    assert part.value is not None
                    pieces.append(part.value)
            else:
                fact = self._fact(token, overlay, services, in_overlay, at)
                if fact is None:
                    complete = False
                    continue
                parts.append(Part(token.label, None, *fact))
                pieces.append(fact[0])
        if not complete:
            return None
        if secret_parts and not variable.secret:
            used = ", ".join(dict.fromkeys(secret_parts))
            self._problem(
                in_overlay, at, f"'{name}' is built from secret {used}: mark it 'secret: true'"
            )
            return None
        composition = joined(pieces)
        origin = Origin(self._source(in_overlay), path)
        if any(isinstance(piece, SecretPart) for piece in composition):
            return ResolvedVariable(
                name, variable, None, None, origin, True, source.formula, composition, tuple(parts)
            )
        if variable.secret and not self.config.local:
            self._problem(
                in_overlay,
                at,
                f"'{name}' is secret, but in '{self.name}', which is not local, it is composed "
                "of literals only: build it from a secret reference or do not mark it secret",
            )
            return None
        text = self._typed(variable, name, "".join(map(str, composition)), in_overlay, at)
        if text is None:
            return None
        if variable.rules:
            self._check_rules(variable, name, text, in_overlay, at)
        return ResolvedVariable(
            name, variable, text, None, origin, variable.secret, source.formula, None, tuple(parts)
        )

    def _missing_part(
        self, name: str, part: str, pending: Pending, in_overlay: bool, at: SpecPath
    ) -> None:
        """Report that derived value ``name`` uses ``part``, which has no value here (later,
        unless the services that receive ``name`` compose their own)."""
        message = f"'{name}' uses '{part}', which has no value in environment '{self.name}'"
        if pending is self.pending and part in self.unset:
            self.unset[name] = (in_overlay, at, message)
        elif part not in pending:  # else its own problem is reported
            self._problem(in_overlay, at, message)

    def _fact(
        self,
        token: FactPart,
        overlay: Overlay,
        services: Mapping[str, Service],
        in_overlay: bool,
        at: SpecPath,
    ) -> tuple[str, Origin | None] | None:
        """A service fact's text here and where it was written, or None (reported)."""
        name = token.service
        service = services.get(name)
        problem: str | None = None
        if service is None:
            problem = f"service '{name}' does not run in environment '{self.name}'"
        elif service.external:
            patch = overlay.services.get(name)
            field = token.fact
            given = service.host if field == "host" else service.port
            if given is not None:
                written = patch is not None and getattr(patch, field) is not None
                where = Origin(self._source(written), ("services", name, field))
                return str(given), where
            if field == "port" and service.ports:
                return str(service.ports[0].port), None
            problem = (
                f"service '{name}' is external in '{self.name}': give its {field} there "
                f"(services.{name}.{field} in environments/{self.name}.yaml)"
            )
        elif not service.ports and (token.fact == "port" or "kubernetes" in self.config.targets):
            problem = (
                f"service '{name}' has no ports, so '${{{token.label}}}' names nothing in "
                f"'{self.name}'"
            )
        elif token.fact == "host":
            return name, None
        else:
            assert service.ports
            return str(service.ports[0].port), None
        self._problem(in_overlay, at, problem)
        return None

    def merged_services(self, overlay: Overlay) -> dict[str, Service]:
        """The services present here, the overlay's fields over the base's."""
        return {
            name: merge_service(service, overlay.services.get(name))
            for name, service in self.spec.services.items()
            if service.environments is None or self.name in service.environments
        }

    def services(
        self,
        overlay: Overlay,
        merged: Mapping[str, Service],
        variables: Mapping[str, ResolvedVariable],
    ) -> Iterator[ResolvedService]:
        for name, service in merged.items():
            in_overlay = name in overlay.services
            external = bool(service.external)
            if not external:
                for field in ("host", "port"):
                    if getattr(service, field) is not None:
                        written = in_overlay and getattr(overlay.services[name], field) is not None
                        self._problem(
                            written,
                            ("services", name, field),
                            f"'{field}' is where an external service is reached, and '{name}' "
                            f"is not external in '{self.name}' (it is reached as '{name}')",
                        )
            if not external and not self.config.local:
                version_set_here = in_overlay and overlay.services[name].version is not None
                has_version = service.version is not None
                path: SpecPath = (
                    ("services", name, "version") if has_version else ("services", name)
                )
                if service.version is None or service.version in FLOATING_TAGS:
                    tag = (
                        "no version"
                        if service.version is None
                        else f"floating tag '{service.version}'"
                    )
                    self._problem(
                        version_set_here,
                        path,
                        f"{tag} in non-local environment '{self.name}': pin an exact version",
                    )
                if service.digest is None and self.spec.parity.digests == "required":
                    self._problem(
                        in_overlay,
                        ("services", name),
                        f"no digest in non-local environment '{self.name}', and the parity "
                        "policy requires one (digests: required): add digest: sha256:<64 hex>, "
                        "the image's digest",
                    )
            patched = overlay.services.get(name)
            if (
                patched is not None
                and (patched.security is not None or patched.user is not None)
                and service.security == "restricted"
                and is_root(service.user)
            ):
                self._problem(
                    True,
                    ("services", name, "user" if patched.user is not None else "security"),
                    f"{RESTRICTED_ROOT} (environment '{self.name}')",
                )
            receives = self._receives(service)
            depends_on = tuple(
                dependency
                for dependency in service.depends_on or ()
                if dependency in merged and not merged[dependency].external
            )
            own = self._own_values(name, service, overlay, variables, merged)
            yield ResolvedService(
                name=name,
                spec=service,
                external=external,
                variables=tuple([v for v in receives if v in variables or v in own]),
                depends_on=depends_on,
                scope=variables,
                own=own,
            )

    def _receives(self, service: Service) -> tuple[str, ...]:
        return service.variables if service.variables is not None else tuple(self.spec.variables)

    def _own_values(
        self,
        name: str,
        service: Service,
        overlay: Overlay,
        variables: Mapping[str, ResolvedVariable],
        merged: Mapping[str, Service],
    ) -> dict[str, ResolvedVariable]:
        """The service's own values here: those it gives (the overlay's over the base's), and
        each environment-wide derived value composed again where the service changes a part."""
        if not service.values:
            return {}
        patch = overlay.services.get(name)
        written_here = set(patch.values or ()) if patch is not None else set()
        received = set(self._receives(service))
        own: dict[str, ResolvedVariable] = {}
        pending: Pending = {}
        for variable_name, raw in service.values.items():
            variable = self.spec.variables.get(variable_name)
            if variable is None:
                continue  # reported by validation
            in_overlay = variable_name in written_here
            path: SpecPath = ("services", name, "values", variable_name)
            if variable_name not in received:
                self._problem(
                    in_overlay,
                    path,
                    f"service '{name}' does not receive '{variable_name}' in environment "
                    f"'{self.name}': add it to services.{name}.variables, or remove this value",
                )
            elif isinstance(raw, DerivedSource):
                pending[variable_name] = (raw, in_overlay, path)
            else:
                resolved = self._value(variable_name, variable, raw, in_overlay, path)
                if resolved is not None:
                    own[variable_name] = resolved
        changed = set(service.values)
        grown = True
        while grown:
            grown = False
            for derived_name, entry in self.pending.items():
                if derived_name in changed:
                    continue
                if any(
                    isinstance(token, VariablePart) and token.name in changed
                    for token in entry[0].tokens
                ):
                    changed.add(derived_name)
                    pending[derived_name] = entry
                    grown = True
        if not pending:
            return own
        scope = {**variables, **own}
        for derived_name in pending:
            scope.pop(derived_name, None)
        for derived_name, resolved in self.derived(overlay, scope, merged, pending).items():
            shared = variables.get(derived_name)
            if derived_name in service.values or not _same_value(resolved, shared):
                own[derived_name] = resolved
        return own


def _same_value(one: ResolvedVariable, other: ResolvedVariable | None) -> bool:
    return other is not None and (one.value, one.reference, one.composition) == (
        other.value,
        other.reference,
        other.composition,
    )


def merge_service(base: Service, patch: ServicePatch | None) -> Service:
    """The base service with an overlay's fields replacing its own; mappings merge deeply."""
    if patch is None:
        return base
    update: dict[str, Any] = {}
    for field in patch.model_fields_set:
        value = getattr(patch, field)
        current = getattr(base, field)
        if field == "shutdown" and current is not None and value is not None:
            value = current.model_copy(
                update={name: getattr(value, name) for name in value.model_fields_set}
            )
        elif field == "values" and current is not None and value is not None:
            value = {**current, **value}
        elif field == "compose" and current is not None and value is not None:
            value = deep_merge(current, value)
        elif field == "kubernetes" and current is not None and value is not None:
            value = KubernetesPatch(
                **{
                    part: deep_merge(getattr(current, part), getattr(value, part))
                    for part in KubernetesPatch.model_fields
                }
            )
        update[field] = value
    return base.model_copy(update=update)


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` over ``base``: nested mappings merge, anything else is replaced."""
    result = dict(base)
    for key, value in patch.items():
        current = result.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            result[key] = deep_merge(current, value)
        else:
            result[key] = value
    return result


def coerce(variable: Variable, raw: LiteralValue) -> str:
    """The exact text an application reads for ``raw``; ``ValueError`` says why it is invalid."""
    kind = variable.type
    if isinstance(raw, list):
        if kind != "list":
            raise ValueError("a list was given")
        if variable.separator is None:
            return json.dumps(raw, ensure_ascii=False)
        if any(variable.separator in item for item in raw):
            raise ValueError(f"an item contains the separator '{variable.separator}'")
        return variable.separator.join(raw)
    if kind == "list":
        raise ValueError("expected a list")
    if kind == "int" and not _INT.fullmatch(raw):
        raise ValueError("expected an integer")
    if kind == "float":
        if not _FLOAT.fullmatch(raw):
            raise ValueError("expected a finite number in ASCII digits, like 1.5 or 2e3")
        if math.isinf(float(raw)):
            raise ValueError("expected a finite number")
    if kind == "bool":
        canonical = _BOOLS.get(raw.lower())
        if canonical is None:
            raise ValueError("expected true or false")
        return canonical
    if kind == "url" and not is_url(raw):
        raise ValueError("expected a URL like scheme://host/path")
    if kind == "enum":
        assert variable.choices is not None
        if raw not in variable.choices:
            raise ValueError(f"expected one of: {', '.join(variable.choices)}")
    return raw


def is_url(text: str) -> bool:
    """A scheme and a host or path, no whitespace (urllib's reading; may raise ValueError)."""
    if _PLAIN_URL.fullmatch(text):
        return True  # the common shape, which urllib reads as a scheme and a host
    parts = urlsplit(text)
    return bool(parts.scheme and (parts.netloc or parts.path) and not _SPACE.search(text))


def typed_rule(variable: Variable, rule: Rule) -> Rule:
    """``rule`` with its values written as the application reads them (``False`` -> ``false``)."""
    if variable.type != "bool":
        return rule
    return rule.model_copy(
        update={
            "equals": _BOOLS.get(rule.equals.lower(), rule.equals) if rule.equals else rule.equals,
            "choices": tuple(_BOOLS.get(c.lower(), c) for c in rule.choices)
            if rule.choices
            else None,
        }
    )


def rule_failure(rule: Rule, text: str) -> str | None:
    """How ``text`` breaks ``rule``, phrased without repeating the value, or None."""
    if rule.equals is not None and text != rule.equals:
        return f"must equal '{rule.equals}'"
    if rule.choices is not None and text not in rule.choices:
        return f"must be one of: {', '.join(rule.choices)}"
    if rule.min_length is not None and len(text) < rule.min_length:
        return f"must be at least {rule.min_length} characters long"
    if rule.max_length is not None and len(text) > rule.max_length:
        return f"must be at most {rule.max_length} characters long"
    if rule.pattern is not None and not re.fullmatch(rule.pattern, text):
        return f"must match the pattern '{rule.pattern}'"
    if rule.not_contains is not None and rule.not_contains in text:
        return f"must not contain '{rule.not_contains}'"
    return None


def _quote(raw: LiteralValue) -> str:
    return json.dumps(raw, ensure_ascii=False)
