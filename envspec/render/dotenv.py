"""``<env>/.env.<env>``: every variable of the environment, quoted for every .env reader; and
for each deployed service that has its own values there, ``<env>/.env.<env>.<service>``: every
variable that service receives, with its values, so that one process loads one file."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Final

from envspec.derive import parts
from envspec.models import ENVIRONMENT_VARIABLE
from envspec.render._common import check_values
from envspec.render.base import RenderedFile, Templates
from envspec.render.filters import dotenv_quote
from envspec.resolve import ResolvedEnvironment, ResolvedVariable


class DotenvRenderer:
    scope: Final = "environment"
    deploys_workloads: Final = False
    template_folder: Final = None

    def render(
        self, environment: ResolvedEnvironment, templates: Templates
    ) -> Iterable[RenderedFile]:
        name = environment.name
        files: list[tuple[str, str | None, list[ResolvedVariable]]] = [
            (f"{name}/.env.{name}", None, list(environment.variables.values()))
        ]
        files += [
            (f"{name}/.env.{name}.{service.name}", service.name, list(service.values))
            for service in environment.deployed
            if service.spec.values
        ]
        lookups = {service.name: service.value for service in environment.deployed}
        for path, _, variables in files:
            check_values(variables, dotenv_quote, name, path.rpartition("/")[2], False)
        for path, service, variables in files:
            value_of = lookups[service] if service else environment.variables.__getitem__
            content = templates.render(
                "dotenv/env.j2",
                environment=environment,
                service=service,
                variables=variables,
                derived=_derived(variables, value_of),
                environment_variable=ENVIRONMENT_VARIABLE,
            )
            yield RenderedFile(path, content)


def _derived(
    variables: Sequence[ResolvedVariable], value_of: Callable[[str], ResolvedVariable]
) -> dict[str, str]:
    """The comment that stands for each derived value with secret parts: its formula and where
    each part comes from."""
    notes = {}
    for variable in variables:
        if variable.composition is None:
            continue
        sources = ", ".join(
            f"{part} from {value_of(part).reference}" for part in parts(variable.composition)
        )
        notes[variable.name] = (
            f"{variable.name} is derived: {variable.formula} (secret parts: {sources}); envspec "
            "never writes it; export it in your shell."
        )
    return notes
