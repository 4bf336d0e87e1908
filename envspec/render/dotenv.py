"""``<env>/.env.<env>``: every variable of the environment, quoted for every .env reader."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from envspec.derive import parts
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
        check_values(variables, dotenv_quote, environment.name, f".env.{environment.name}", False)
        content = templates.render(
            "dotenv/env.j2",
            environment=environment,
            variables=variables,
            derived=_derived(environment),
            environment_variable=ENVIRONMENT_VARIABLE,
        )
        yield RenderedFile(f"{environment.name}/.env.{environment.name}", content)


def _derived(environment: ResolvedEnvironment) -> dict[str, str]:
    """The comment that stands for each derived value with secret parts: its formula and where
    each part comes from."""
    notes = {}
    for variable in environment.variables.values():
        if variable.composition is None:
            continue
        sources = ", ".join(
            f"{part} from {environment.variables[part].reference}"
            for part in parts(variable.composition)
        )
        notes[variable.name] = (
            f"{variable.name} is derived: {variable.formula} (secret parts: {sources}); envspec "
            "never writes it; export it in your shell."
        )
    return notes
