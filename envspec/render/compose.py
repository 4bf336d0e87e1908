"""``<env>/docker-compose.yaml``: the deployed services, read alike by Compose v1 and v2, and
each task as a service of the ``tasks`` profile (``docker compose run --rm <task>``)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from envspec.models import ENVIRONMENT_VARIABLE, Autoscale
from envspec.render._common import check_values, map_strings, received_values, yaml_header
from envspec.render.base import RenderedFile, Templates, merging
from envspec.render.filters import (
    YamlScalars,
    check_compose_value,
    compose_composition,
    compose_escape,
    compose_secret,
    yaml_scalar,
)
from envspec.resolve import ResolvedEnvironment, ResolvedService, ResolvedTask

SERVER_FIELDS = frozenset(
    {"command", "ports", "expose", "healthcheck", "deploy", "profiles", "container_name", "restart"}
)
"""What a task does not take from its service's ``compose:`` escape hatch: a task is a one-off
process, not a server."""


class ComposeRenderer:
    scope: Final = "environment"
    deploys_workloads: Final = True
    template_folder: Final = None

    def render(
        self, environment: ResolvedEnvironment, templates: Templates
    ) -> Iterable[RenderedFile]:
        services = environment.deployed
        check_values(
            received_values(services),
            check_compose_value,
            environment.name,
            "docker-compose.yaml",
        )
        volumes = sorted({volume for service in services for volume in service.spec.volumes or {}})
        replicas = {service.name: _replicas(service.spec.replicas) for service in services}
        healthchecked = {service.name: service.spec.healthcheck is not None for service in services}
        patch: dict[str, Mapping[str, Any]] = {
            service.name: typed(map_strings(service.spec.compose, compose_escape))
            for service in services
            if service.spec.compose
        }
        for task in environment.tasks:
            task_patch = {
                key: value
                for key, value in map_strings(
                    task.service.spec.compose or {}, compose_escape
                ).items()
                if key not in SERVER_FIELDS
            }
            if task_patch:
                patch[task.name] = typed(task_patch)
        top: dict[str, Any] = typed(
            map_strings(environment.compose.model_dump(exclude_defaults=True), compose_escape)
        )
        if patch:
            top["services"] = patch
        names = YamlScalars()
        text = templates.render_yaml(
            "compose/docker-compose.yaml.j2",
            merging(top),
            environment=environment,
            services=services,
            tasks=environment.tasks,
            variables=environment.variables,
            volumes=volumes,
            replicas=replicas,
            healthchecked=healthchecked,
            environment_variable=ENVIRONMENT_VARIABLE,
            shell_names=shell_names,
            environment_sections={
                service.name: environment_section(environment.name, service, names)
                for service in services
            },
        )
        content = yaml_header(environment.name) + text
        yield RenderedFile(f"{environment.name}/docker-compose.yaml", content)

    def task_command(
        self,
        environment: ResolvedEnvironment,
        templates: Templates,
        task: ResolvedTask,
        folder: str,
    ) -> str:
        compose_file = shlex.quote(f"{folder}/docker-compose.yaml")
        return f"docker compose -f {compose_file} run --rm {task.name}"


def shell_names(service: ResolvedService) -> Callable[[str], str]:
    """The shell variable compose reads each secret of ``service`` from: NAME for an
    ``env://NAME`` reference, else the secret's name (:meth:`ResolvedService.secret_name`)."""

    def shell_name(name: str) -> str:
        variable = service.own.get(name)
        if variable is None:
            variable = service.scope.get(name)
        reference = variable.reference if variable is not None else None
        if reference is not None and reference.backend == "env":
            return reference.path
        return service.secret_name(name)

    return shell_name


def environment_section(environment: str, service: ResolvedService, names: YamlScalars) -> str:
    """The ``environment:`` of the service's container in a compose file, as YAML (empty when
    it receives no variable): secrets and derived values with secret parts are read from the
    shell of whoever runs compose, every other value is written in, ``$`` escaped. ``names``
    quotes the variables' names (the same in every service that receives one)."""
    if not service.variables:
        return ""
    shell_name = shell_names(service)
    lines = [
        "    environment:\n",
        f"      {ENVIRONMENT_VARIABLE}: {yaml_scalar(environment)}\n",
    ]
    for variable in service.values:
        if variable.reference is not None:
            text = compose_secret(shell_name(variable.name))
        elif variable.composition:
            text = compose_composition(variable.composition, shell_name)
        else:
            assert variable.value is not None
            text = compose_escape(variable.value)
        lines.append(f"      {names[variable.name]}: {yaml_scalar(text)}\n")
    return "".join(lines)


_BOOLEAN_KEYS = frozenset(
    {
        "attachable", "create_host_path", "disable", "enable_ipv6", "external", "init",
        "internal", "no_cache", "nocopy", "oom_kill_disable", "privileged", "pull", "read_only",
        "required", "restart", "stdin_open", "tty",
    }
)  # fmt: skip
_INTEGER_KEYS = frozenset(
    {
        "cpu_count", "cpu_percent", "cpu_shares", "max_attempts", "mem_swappiness",
        "oom_score_adj", "parallelism", "pids_limit", "replicas", "retries", "target", "weight",
    }
)  # fmt: skip
_INTEGER = re.compile(r"0|-?[1-9][0-9]*")


def typed(value: Any) -> Any:
    """A compose escape hatch as Compose reads it. The spec keeps every scalar as its text; the
    fields that Compose's schema types as booleans or integers get ``true``/``false`` and whole
    numbers back as such, everything else stays text (quoted or not, as the user may mean it)."""
    if isinstance(value, dict):
        return {key: _typed_field(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return value


def _typed_field(key: str, value: Any) -> Any:
    if key in _BOOLEAN_KEYS and value in ("true", "false"):
        return value == "true"
    if key in _INTEGER_KEYS and isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return typed(value)


def _replicas(replicas: int | Autoscale | None) -> int:
    if replicas is None:
        return 1
    return replicas.min if isinstance(replicas, Autoscale) else replicas
