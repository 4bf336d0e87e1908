"""Differences between resolved environments, judged against the spec's parity policy.

Each difference is ``expected`` (an attribute allowed to vary: replicas, resources, values of
ordinary variables, secret sources), ``declared`` (a pinned attribute whose difference an overlay
declares under ``differences:`` with a reason) or ``undeclared`` (a pinned attribute that differs
with no declaration: ``validate`` and ``diff`` fail). Secret values are never shown.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

from envspec import targets
from envspec.errors import Problem
from envspec.models import Autoscale, ParityPolicy
from envspec.resolve import ResolvedEnvironment, ResolvedService, ResolvedVariable, SourceMaps
from envspec.secrets import MASK

Status = Literal["expected", "declared", "undeclared"]
ABSENT = "<absent>"


@dataclass(frozen=True)
class Difference:
    path: str
    left: str
    right: str
    status: Status
    reason: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "path": self.path,
            "left": self.left,
            "right": self.right,
            "status": self.status,
            "reason": self.reason,
        }


def diff(
    a: ResolvedEnvironment, b: ResolvedEnvironment, policy: ParityPolicy, *, judged: bool = False
) -> list[Difference]:
    """Every difference between ``a`` and ``b``, services first, then variables, each sorted.

    With ``judged``, only the variables that can differ other than as expected are compared (those
    present in one environment only, and strict ones): every declared and undeclared difference
    is found, most expected ones are not. This is what a parity check needs, at a fraction of
    the cost on large specs."""
    found = list(_service_differences(a, b, policy))
    found += _variable_differences(a, b, policy, _judged_names(a, b, policy) if judged else None)
    return [_judge(difference, a, b) for difference in found]


def all_differences(
    environments: Mapping[str, ResolvedEnvironment], policy: ParityPolicy, *, judged: bool = False
) -> list[tuple[ResolvedEnvironment, ResolvedEnvironment, list[Difference]]]:
    """The differences of every pair of environments, in the spec's order (see :func:`diff`)."""
    return [
        (a, b, diff(a, b, policy, judged=judged)) for a, b in combinations(environments.values(), 2)
    ]


def check(
    differences: list[tuple[ResolvedEnvironment, ResolvedEnvironment, list[Difference]]],
    sources: SourceMaps,
) -> list[Problem]:
    """Problems for every undeclared difference between any two environments."""
    return [
        _problem(difference, a, b, sources)
        for a, b, found in differences
        for difference in found
        if difference.status == "undeclared"
    ]


def _service_differences(
    a: ResolvedEnvironment, b: ResolvedEnvironment, policy: ParityPolicy
) -> Iterator[Difference]:
    left = {service.name: service for service in a.services}
    right = {service.name: service for service in b.services}
    for name in sorted(left.keys() | right.keys()):
        one, other = left.get(name), right.get(name)
        if one is None or other is None:
            present = one or other
            assert present is not None
            path = f"services.{name}"
            if present.spec.environments is not None:
                only = ", ".join(present.spec.environments)
                yield Difference(
                    path, _presence(one), _presence(other), "declared", f"only in {only}"
                )
            else:
                status: Status = "undeclared" if policy.services else "expected"
                yield Difference(path, _presence(one), _presence(other), status)
            continue
        pinned = {"image": policy.images, "version": policy.versions}
        for field, is_pinned in pinned.items():
            x, y = getattr(one.spec, field) or ABSENT, getattr(other.spec, field) or ABSENT
            if x != y:
                yield Difference(
                    f"services.{name}.{field}", x, y, "undeclared" if is_pinned else "expected"
                )
        if not (one.external or other.external):
            yield from _workload_differences(name, one, other, policy)
        for field, x, y in (
            ("orchestration", _orchestration(one, a), _orchestration(other, b)),
            ("replicas", _replicas(one), _replicas(other)),
            ("resources", _resources(one), _resources(other)),
        ):
            if x != y:
                yield Difference(f"services.{name}.{field}", x, y, "expected")


def _workload_differences(
    name: str, one: ResolvedService, other: ResolvedService, policy: ParityPolicy
) -> Iterator[Difference]:
    """How two deployed workloads of a service differ: digest, shutdown, user and security.

    Different digests of the same image and tag mean different images: pinned like images. A
    digest in one environment only (development builds its own) is expected."""
    x, y = one.spec.digest, other.spec.digest
    if x != y:
        same_tag = (one.spec.image, one.spec.version) == (other.spec.image, other.spec.version)
        pinned = policy.images and same_tag and x is not None and y is not None
        yield Difference(
            f"services.{name}.digest",
            x or ABSENT,
            y or ABSENT,
            "undeclared" if pinned else "expected",
        )
    for field, left, right, is_pinned in (
        ("shutdown", _shutdown(one), _shutdown(other), policy.shutdown),
        ("user", one.spec.user or ABSENT, other.spec.user or ABSENT, policy.security),
        ("security", one.security, other.security, policy.security),
    ):
        if left != right:
            yield Difference(
                f"services.{name}.{field}", left, right, "undeclared" if is_pinned else "expected"
            )


def _shutdown(service: ResolvedService) -> str:
    shutdown = service.shutdown
    signal = f", {shutdown.signal}" if shutdown.signal else ""
    pause = f", pre_stop {shutdown.pre_stop}s" if shutdown.pre_stop else ""
    return f"grace {shutdown.grace}s{signal}{pause}"


def _judged_names(a: ResolvedEnvironment, b: ResolvedEnvironment, policy: ParityPolicy) -> set[str]:
    names = a.variables.keys() ^ b.variables.keys()
    if policy.strict_values:
        names |= {
            name for name, variable in a.variables.items() if variable.spec.parity == "strict"
        }
    return names


def _variable_differences(
    a: ResolvedEnvironment,
    b: ResolvedEnvironment,
    policy: ParityPolicy,
    names: set[str] | None = None,
) -> Iterator[Difference]:
    if names is None:
        names = a.variables.keys() | b.variables.keys()
    for name in sorted(names):
        one, other = a.variables.get(name), b.variables.get(name)
        if one is None or other is None:
            present = one or other
            assert present is not None
            path = f"variables.{name}"
            if present.spec.required is False:
                yield Difference(
                    path, shown(one), shown(other), "declared", "optional (required: false)"
                )
            else:
                status: Status = "undeclared" if policy.variables else "expected"
                yield Difference(path, shown(one), shown(other), status)
            continue
        if one.value == other.value and one.reference == other.reference:
            continue
        if _source(one) != _source(other):
            yield Difference(f"variables.{name}.source", _source(one), _source(other), "expected")
        else:
            strict = policy.strict_values and one.spec.parity == "strict"
            yield Difference(
                f"variables.{name}",
                shown(one),
                shown(other),
                "undeclared" if strict else "expected",
            )


def _judge(difference: Difference, a: ResolvedEnvironment, b: ResolvedEnvironment) -> Difference:
    if difference.status != "undeclared":
        return difference
    for environment, other in ((a, b), (b, a)):
        for declared in environment.differences:
            if declared.path == difference.path and (
                declared.environments is None or other.name in declared.environments
            ):
                return Difference(
                    difference.path, difference.left, difference.right, "declared", declared.reason
                )
    return difference


def _problem(
    difference: Difference, a: ResolvedEnvironment, b: ResolvedEnvironment, sources: SourceMaps
) -> Problem:
    parts = tuple(difference.path.split("."))
    source = sources.overlay(b.name) or sources.overlay(a.name) or sources.base
    position = source.value(parts) if source.values else sources.base.value(parts)
    if parts not in source.values:
        for name in (b.name, a.name):
            candidate = sources.overlay(name)
            if candidate is not None and parts in candidate.values:
                position = candidate.value(parts)
                break
        else:
            position = sources.base.value(parts)
    message = (
        f"'{a.name}' has {difference.left} and '{b.name}' has {difference.right}, and no overlay "
        f"declares it; fix the spec or add to environments/{b.name}.yaml: "
        f'differences: [{{path: {difference.path}, reason: "..."}}]'
    )
    return Problem(position.file, position.line, position.column, difference.path, message)


def _presence(service: ResolvedService | None) -> str:
    if service is None:
        return ABSENT
    return "external" if service.external else "deployed"


def _orchestration(service: ResolvedService, environment: ResolvedEnvironment) -> str:
    if service.external:
        return "external"
    deploying = [t for t in environment.config.targets if targets.get(t).deploys_workloads]
    return "+".join(deploying) or "none"


def _replicas(service: ResolvedService) -> str:
    replicas = service.spec.replicas
    if isinstance(replicas, Autoscale):
        return f"{replicas.min}-{replicas.max} (cpu {replicas.target_cpu}%)"
    return str(replicas if replicas is not None else 1)


def _resources(service: ResolvedService) -> str:
    resources = service.spec.resources
    return resources.model_dump_json(exclude_none=True) if resources is not None else ABSENT


def _source(variable: ResolvedVariable) -> str:
    if variable.reference is not None:
        return f"{variable.reference.backend} reference"
    return "literal"


def shown(variable: ResolvedVariable | None) -> str:
    """What a report may show of a variable: never a secret's literal value."""
    if variable is None:
        return ABSENT
    if variable.reference is not None:
        return str(variable.reference)
    if variable.sensitive:
        return MASK
    assert variable.value is not None
    return repr(variable.value)


@dataclass(frozen=True)
class Row:
    """One component of the parity matrix and what it is in each environment."""

    component: str
    cells: tuple[str, ...]
    verdict: Literal["same", "expected", "declared", "undeclared"]


@dataclass(frozen=True)
class Matrix:
    environments: tuple[str, ...]
    rows: tuple[Row, ...]

    @property
    def score(self) -> float:
        """Percentage of rows identical in every environment (100 when there are no rows)."""
        if not self.rows:
            return 100.0
        same = sum(row.verdict == "same" for row in self.rows)
        return round(100 * same / len(self.rows), 1)


def matrix(environments: Mapping[str, ResolvedEnvironment], policy: ParityPolicy) -> Matrix:
    """The parity matrix: each service's image:version and orchestration, each variable's source."""
    envs = list(environments.values())
    statuses: dict[str, set[Status]] = {}
    for _, _, found in all_differences(environments, policy):
        for difference in found:
            statuses.setdefault(_row_of(difference.path), set()).add(difference.status)
    names = sorted({service.name for env in envs for service in env.services})
    variables = sorted({name for env in envs for name in env.variables})
    rows: list[Row] = []
    for name in names:
        services = [next((s for s in env.services if s.name == name), None) for env in envs]
        rows.append(_row(f"services.{name}", tuple(_image(s) for s in services), statuses))
        rows.append(
            _row(
                f"services.{name}.orchestration",
                tuple(
                    _orchestration(s, env) if s else ABSENT
                    for s, env in zip(services, envs, strict=True)
                ),
                statuses,
            )
        )
    for name in variables:
        cells = tuple(_variable_cell(env.variables.get(name)) for env in envs)
        rows.append(_row(f"variables.{name}", cells, statuses))
    return Matrix(tuple(environments), tuple(rows))


def _row_of(path: str) -> str:
    parts = path.split(".")
    if parts[0] == "services" and len(parts) > 2 and parts[2] in ("image", "version", "digest"):
        return ".".join(parts[:2])
    if parts[0] == "services" and len(parts) > 2:
        return ".".join(parts[:2]) + ".orchestration"
    return ".".join(parts[:2])


def _row(component: str, cells: tuple[str, ...], statuses: dict[str, set[Status]]) -> Row:
    if len(set(cells)) <= 1 and not statuses.get(component):
        return Row(component, cells, "same")
    found = statuses.get(component, {"expected"})
    if "undeclared" in found:
        return Row(component, cells, "undeclared")
    if "declared" in found:
        return Row(component, cells, "declared")
    return Row(component, cells, "expected")


def _image(service: ResolvedService | None) -> str:
    if service is None:
        return ABSENT
    return f"{service.spec.image}:{service.spec.version or ABSENT}"


def _variable_cell(variable: ResolvedVariable | None) -> str:
    if variable is None:
        return ABSENT
    if variable.reference is not None:
        return f"{variable.reference.backend} reference"
    return "secret literal" if variable.sensitive else "literal"
