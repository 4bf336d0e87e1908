"""``<env>/docker-compose.yaml``: the deployed services, read alike by Compose v1 and v2, and
each task as a service of the ``tasks`` profile (``docker compose run --rm <task>``)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any, Final

from envspec.models import ENVIRONMENT_VARIABLE, Autoscale
from envspec.render._common import check_values, map_strings, yaml_header
from envspec.render.base import RenderedFile, Templates, merging
from envspec.render.filters import compose_escape, compose_value
from envspec.resolve import ResolvedEnvironment, ResolvedTask

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
        received = {name for service in services for name in service.variables}
        check_values(
            (environment.variables[name] for name in sorted(received)),
            compose_value,
            environment.name,
            "docker-compose.yaml",
        )
        volumes = sorted({volume for service in services for volume in service.spec.volumes or {}})
        replicas = {service.name: _replicas(service.spec.replicas) for service in services}
        healthchecked = {service.name: service.spec.healthcheck is not None for service in services}
        patch: dict[str, Mapping[str, Any]] = {
            service.name: map_strings(service.spec.compose, compose_escape)
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
                patch[task.name] = task_patch
        text = templates.render_yaml(
            "compose/docker-compose.yaml.j2",
            merging({"services": patch} if patch else None),
            environment=environment,
            services=services,
            tasks=environment.tasks,
            variables=environment.variables,
            volumes=volumes,
            replicas=replicas,
            healthchecked=healthchecked,
            environment_variable=ENVIRONMENT_VARIABLE,
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


def _replicas(replicas: int | Autoscale | None) -> int:
    if replicas is None:
        return 1
    return replicas.min if isinstance(replicas, Autoscale) else replicas
