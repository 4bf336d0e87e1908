"""Differences between resolved environments, judged against the spec's parity policy, and the
parity matrix that scores them.

Each difference is ``expected`` (an attribute allowed to vary: replicas, resources, values of
ordinary variables, secret sources), ``declared`` (a pinned attribute whose difference an overlay
declares under ``differences:`` with a reason) or ``undeclared`` (a pinned attribute that differs
with no declaration: ``validate`` and ``diff`` fail). Secret values are never shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from decimal import ROUND_HALF_UP, Decimal
from itertools import combinations
from typing import Literal, NamedTuple

from envspec import targets
from envspec.errors import Problem
from envspec.models import Autoscale, ParityPolicy, ParityScores, Shutdown
from envspec.resolve import ResolvedEnvironment, ResolvedService, ResolvedVariable, SourceMaps
from envspec.secrets import MASK, STORE_BACKENDS

Status = Literal["expected", "declared", "undeclared"]
Verdict = Literal["same", "expected", "declared", "undeclared"]
ABSENT = "<absent>"


class Difference(NamedTuple):
    path: str
    left: str
    right: str
    status: Status
    reason: str = ""
    score: int | None = None
    """What the difference costs its row of the parity matrix: the most the row can score. None
    for differences the matrix does not count (replicas, resources, values, secret sources)."""

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
    found += _own_value_differences(a, b, policy, judged)
    found += _variable_differences(a, b, policy, _judged_names(a, b, policy) if judged else None)
    return [_judge(difference, a, b, policy.scores) for difference in found]


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
    scores = policy.scores
    left = {service.name: service for service in a.services}
    right = {service.name: service for service in b.services}
    workloads = _workloads(a), _workloads(b)
    for name in sorted(left.keys() | right.keys()):
        one, other = left.get(name), right.get(name)
        if one is None or other is None:
            present = one or other
            assert present is not None
            path = f"services.{name}"
            if present.spec.environments is not None:
                only = ", ".join(present.spec.environments)
                yield Difference(
                    path,
                    _presence(one),
                    _presence(other),
                    "declared",
                    f"only in {only}",
                    scores.declared,
                )
            else:
                yield _pinned(path, _presence(one), _presence(other), policy.services, scores)
            continue
        pinned = {"image": policy.images, "version": policy.versions}
        for field, is_pinned in pinned.items():
            x, y = getattr(one.spec, field) or ABSENT, getattr(other.spec, field) or ABSENT
            if x != y:
                yield _pinned(f"services.{name}.{field}", x, y, is_pinned, scores)
        if not (one.external or other.external):
            yield from _workload_differences(name, one, other, policy)
        orchestration = (
            "external" if one.external else workloads[0],
            "external" if other.external else workloads[1],
        )
        if orchestration[0] != orchestration[1]:
            external = scores.external if one.external != other.external else None
            yield Difference(
                f"services.{name}.orchestration", *orchestration, "expected", "", external
            )
        for field, x, y in (
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
    path = f"services.{name}.digest"
    if x != y:
        same_tag = (one.spec.image, one.spec.version) == (other.spec.image, other.spec.version)
        if same_tag and x is not None and y is not None:
            yield _pinned(path, x, y, policy.images, policy.scores)
        else:
            yield Difference(path, x or ABSENT, y or ABSENT, "expected")
    shutdowns = one.shutdown, other.shutdown
    if shutdowns[0] is not shutdowns[1]:  # most services share one: the default, or the base's
        left, right = _shutdown(shutdowns[0]), _shutdown(shutdowns[1])
        if left != right:
            yield _pinned(f"services.{name}.shutdown", left, right, policy.shutdown, policy.scores)
    for field, left, right, is_pinned in (
        ("user", one.spec.user or ABSENT, other.spec.user or ABSENT, policy.security),
        ("security", one.security, other.security, policy.security),
    ):
        if left != right:
            yield _pinned(f"services.{name}.{field}", left, right, is_pinned, policy.scores)


def _shutdown(shutdown: Shutdown) -> str:
    signal = f", {shutdown.signal}" if shutdown.signal else ""
    pause = f", pre_stop {shutdown.pre_stop}s" if shutdown.pre_stop else ""
    return f"grace {shutdown.grace}s{signal}{pause}"


def _pinned(path: str, left: str, right: str, pinned: bool, scores: ParityScores) -> Difference:
    """A difference of an attribute the policy pins (undeclared until a declaration is found)
    or leaves free (expected, and scored as a declared difference)."""
    if pinned:
        return Difference(path, left, right, "undeclared", "", 0)
    return Difference(path, left, right, "expected", "", scores.declared)


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
                    path,
                    shown(one),
                    shown(other),
                    "declared",
                    "optional (required: false)",
                    policy.scores.optional,
                )
            else:
                yield _pinned(path, shown(one), shown(other), policy.variables, policy.scores)
            continue
        found = _value_difference(f"variables.{name}", one, other, policy)
        if found is not None:
            yield found


def _value_difference(
    path: str, one: ResolvedVariable, other: ResolvedVariable, policy: ParityPolicy
) -> Difference | None:
    """How two values of a variable differ: by source (expected), by value (undeclared for a
    strict variable, else expected), or not at all (None)."""
    if one.formula is not None and one.formula == other.formula:
        return None  # the same formula is parity, whatever its parts are here
    if one.value == other.value and one.reference == other.reference and not one.formula:
        return None
    if _source(one) != _source(other):
        return Difference(f"{path}.source", _source(one), _source(other), "expected")
    if policy.strict_values and one.spec.parity == "strict":
        return Difference(path, shown(one), shown(other), "undeclared", "", 0)
    return Difference(path, shown(one), shown(other), "expected")


def _own_value_differences(
    a: ResolvedEnvironment, b: ResolvedEnvironment, policy: ParityPolicy, judged: bool
) -> Iterator[Difference]:
    """How a service's value of a variable differs where it has its own in either environment
    (``services.<svc>.values.<NAME>``); with ``judged``, strict variables only."""
    right = {service.name: service for service in b.services}
    for one in sorted(a.services, key=lambda service: service.name):
        other = right.get(one.name)
        if other is None or not (one.own or other.own):
            continue
        names = (one.own.keys() | other.own.keys()) & set(one.variables) & set(other.variables)
        for name in sorted(names):
            x, y = one.value(name), other.value(name)
            if judged and not (policy.strict_values and x.spec.parity == "strict"):
                continue
            found = _value_difference(f"services.{one.name}.values.{name}", x, y, policy)
            if found is not None:
                yield found


def _judge(
    difference: Difference, a: ResolvedEnvironment, b: ResolvedEnvironment, scores: ParityScores
) -> Difference:
    """An undeclared difference that an overlay declares becomes declared, with the
    declaration's reason and score; a difference that declares itself (a service limited by
    ``environments:``, an optional variable) takes a declaration's reason and score too."""
    if difference.status == "expected":
        return difference
    for environment, other in ((a, b), (b, a)):
        for declared in environment.differences:
            if declared.path == difference.path and (
                declared.environments is None or other.name in declared.environments
            ):
                default = scores.declared if difference.status == "undeclared" else difference.score
                return Difference(
                    difference.path,
                    difference.left,
                    difference.right,
                    "declared",
                    declared.reason,
                    declared.score if declared.score is not None else default,
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
    return Problem.at(position, difference.path, message)


def _presence(service: ResolvedService | None) -> str:
    if service is None:
        return ABSENT
    return "external" if service.external else "deployed"


def _workloads(environment: ResolvedEnvironment) -> str:
    """What runs the environment's services: its targets that do, or ``none``."""
    return "+".join(workload_targets(environment)) or "none"


def workload_targets(environment: ResolvedEnvironment) -> list[str]:
    """The environment's targets that run the services (the registry says which do)."""
    return [t for t in environment.config.targets if targets.get(t).deploys_workloads]


def _replicas(service: ResolvedService) -> str:
    replicas = service.spec.replicas
    if isinstance(replicas, Autoscale):
        return f"{replicas.min}-{replicas.max} (cpu {replicas.target_cpu}%)"
    return str(replicas if replicas is not None else 1)


def _resources(service: ResolvedService) -> str:
    resources = service.spec.resources
    return resources.model_dump_json(exclude_none=True) if resources is not None else ABSENT


def _source(variable: ResolvedVariable) -> str:
    if variable.formula is not None:
        return "derived"
    if variable.reference is not None:
        return f"{variable.reference.backend} reference"
    return "literal"


def shown(variable: ResolvedVariable | None) -> str:
    """What a report may show of a variable: never a secret's literal value."""
    if variable is None:
        return ABSENT
    if variable.formula is not None:
        composed = "" if variable.sensitive or variable.value is None else f" = {variable.value!r}"
        return f"from {variable.formula!r}{composed}"
    if variable.reference is not None:
        return str(variable.reference)
    if variable.sensitive:
        return MASK
    assert variable.value is not None
    return repr(variable.value)


class Finding(NamedTuple):
    """Something that keeps a row of the parity matrix from scoring 100."""

    status: Status
    score: int
    reason: str = ""


class Row(NamedTuple):
    """One component of the parity matrix, what it is in each environment, and its score: the
    lowest of its findings' scores (100 without any)."""

    component: str
    cells: tuple[str, ...]
    verdict: Verdict
    score: int
    reason: str = ""


_STRENGTH: dict[Status, int] = {"expected": 0, "declared": 1, "undeclared": 2}


def row(component: str, cells: tuple[str, ...], findings: Iterable[Finding]) -> Row:
    """A row from its findings: verdict ``same`` without any, else the strongest status."""
    found = list(findings)
    if not found:
        return Row(component, cells, "same", 100)
    verdict = max((f.status for f in found), key=_STRENGTH.__getitem__)
    reasons = ""
    for reason in dict.fromkeys(f.reason for f in found if f.reason):
        reasons += ("" if not reasons else " " if reasons[-1] in ".!?" else "; ") + reason
    return Row(component, cells, verdict, min(f.score for f in found), reasons)


class Matrix(NamedTuple):
    environments: tuple[str, ...]
    rows: tuple[Row, ...]

    @property
    def score(self) -> float:
        """The mean of the rows' scores, rounded half up to one decimal (100 without rows)."""
        if not self.rows:
            return 100.0
        mean = Decimal(sum(r.score for r in self.rows)) / len(self.rows)
        return float(mean.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def matrix(environments: Mapping[str, ResolvedEnvironment], policy: ParityPolicy) -> Matrix:
    """The parity matrix: a row per service, orchestration, variables, secrets, and a row per
    component the team describes under ``parity.components``."""
    pairs = all_differences(environments, policy, judged=True)
    return matrix_of(environments, policy, [d for _, _, found in pairs for d in found])


def matrix_of(
    environments: Mapping[str, ResolvedEnvironment],
    policy: ParityPolicy,
    differences: Iterable[Difference],
) -> Matrix:
    """The parity matrix from the differences of every pair of environments (judged ones
    suffice: expected differences other than scored ones are not counted)."""
    envs = list(environments.values())
    scored: dict[str, list[Finding]] = {}
    for difference in differences:
        if difference.score is not None:
            finding = Finding(difference.status, difference.score, difference.reason)
            scored.setdefault(_row_of(difference.path), []).append(finding)
    rows = [
        *_service_rows(envs, scored),
        _orchestration_row(envs, policy.scores),
        row("variables", _variable_cells(envs), scored.get("variables", ())),
        _secrets_row(envs, policy.scores),
        *_component_rows(envs, policy),
    ]
    return Matrix(tuple(environments), tuple(rows))


def _row_of(path: str) -> str:
    """The row a difference counts in: ``services.<svc>`` for anything of a service but its
    own values, ``variables`` for any variable and any service's own value."""
    parts = path.split(".")
    if parts[0] != "services":
        return parts[0]
    return "variables" if parts[2:3] == ["values"] else ".".join(parts[:2])


def _service_rows(
    envs: list[ResolvedEnvironment], scored: Mapping[str, list[Finding]]
) -> Iterator[Row]:
    names = sorted({service.name for env in envs for service in env.services})
    by_name = [{service.name: service for service in env.services} for env in envs]
    for name in names:
        cells = tuple(_service_cell(services.get(name)) for services in by_name)
        component = f"services.{name}"
        yield row(component, cells, scored.get(component, ()))


def _service_cell(service: ResolvedService | None) -> str:
    if service is None:
        return ABSENT
    image = f"{service.spec.image}:{service.spec.version or ABSENT}"
    return f"external {image}" if service.external else image


def _orchestration_row(envs: list[ResolvedEnvironment], scores: ParityScores) -> Row:
    cells = tuple(_workloads(env) for env in envs)
    findings = []
    if len(set(cells)) > 1:
        findings.append(
            Finding(
                "expected",
                scores.orchestration,
                "not every environment runs its workloads the same way",
            )
        )
    return row("orchestration", cells, findings)


def _variable_cells(envs: list[ResolvedEnvironment]) -> tuple[str, ...]:
    every = sorted({name for env in envs for name in env.variables})
    cells = []
    for env in envs:
        missing = [name for name in every if name not in env.variables]
        cell = f"{len(every) - len(missing)} variables"
        if missing:
            more = f", +{len(missing) - 3} more" if len(missing) > 3 else ""
            cell += f" (no {', '.join(missing[:3])}{more})"
        cells.append(cell)
    return tuple(cells)


SECRET_MECHANISMS = ("literal", "shell", "secret", "external-secrets")
"""How a secret reaches the application: a literal in a local file, the shell of whoever runs
compose, a Kubernetes Secret (skeleton or ``k8s://``), an ExternalSecret."""
_KUBERNETES_SECRETS = frozenset({"secret", "external-secrets"})


def secret_mechanisms(environment: ResolvedEnvironment) -> frozenset[str]:
    """The mechanisms by which ``environment``'s secrets reach its workloads (empty when it
    has no secret)."""
    named = environment.config.targets
    secrets = environment.config.secrets
    found: set[str] = set()
    for variable in environment.variables.values():
        if not variable.sensitive or variable.composition is not None:
            continue  # a derived value's secret parts are variables of their own
        reference = variable.reference
        if "kubernetes" in named:
            external = secrets.mode == "external-secrets" and (
                (reference is not None and reference.backend in STORE_BACKENDS)
                or (reference is None and secrets.provider == "fake")
            )
            found.add("external-secrets" if external else "secret")
        if "compose" in named or "kubernetes" not in named:
            found.add("literal" if reference is None else "shell")
    return frozenset(found)


def _secrets_row(envs: list[ResolvedEnvironment], scores: ParityScores) -> Row:
    mechanisms = [secret_mechanisms(env) for env in envs]
    cells = tuple(
        "+".join(m for m in SECRET_MECHANISMS if m in found) or "none" for found in mechanisms
    )
    used = {found for found in mechanisms if found}
    findings = []
    if len(used) > 1:
        kubernetes = all(found <= _KUBERNETES_SECRETS for found in used)
        if kubernetes:
            finding = Finding(
                "expected",
                scores.secrets_kubernetes,
                "Secret skeletons and ExternalSecrets are mixed",
            )
        else:
            finding = Finding(
                "expected", scores.secrets, "secrets reach the application by different mechanisms"
            )
        findings.append(finding)
    return row("secrets", cells, findings)


def _component_rows(envs: list[ResolvedEnvironment], policy: ParityPolicy) -> Iterator[Row]:
    for name, component in policy.components.items():
        described = component.cells
        cells = tuple(described.get(env.name, ABSENT) for env in envs)
        score = component.score
        findings = []
        if len(set(cells)) > 1 or (score is not None and score < 100):
            given = score if score is not None else policy.scores.declared
            findings.append(Finding("declared", given, component.reason))
        yield row(f"components.{name}", cells, findings)
