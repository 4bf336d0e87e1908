"""``<env>/.env.<env>``: every variable of the environment, quoted for every .env reader."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from envspec.models import ENVIRONMENT_VARIABLE
from envspec.render._common import check_values
from envspec.render.base import RenderedFile, Templates
from envspec.render.filters import dotenv_quote
from envspec.resolve import ResolvedEnvironment


class DotenvRenderer:
    scope: Final = "environment"
    deploys_workloads: Final = False
    template_folder: Final = None

    def render(
        self, environment: ResolvedEnvironment, templates: Templates
    ) -> Iterable[RenderedFile]:
        variables = list(environment.variables.values())
        check_values(variables, dotenv_quote, environment.name, f".env.{environment.name}")
        content = templates.render(
            "dotenv/env.j2",
            environment=environment,
            variables=variables,
            environment_variable=ENVIRONMENT_VARIABLE,
        )
        yield RenderedFile(f"{environment.name}/.env.{environment.name}", content)
