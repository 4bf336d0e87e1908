"""The ``direnv`` target: ``<env>/.envrc``, every variable exported for a POSIX shell."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from envspec.models import ENVIRONMENT_VARIABLE
from envspec.render.base import RenderedFile

if TYPE_CHECKING:
    from envspec.render.base import Templates
    from envspec.resolve import ResolvedEnvironment

__version__ = "0.1.0"


def shell_quote(value: str) -> str:
    """``value`` in single quotes, exactly as a POSIX shell reads it back."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


class DirenvRenderer:
    scope: Final = "environment"
    deploys_workloads: Final = False
    template_folder: Final = Path(__file__).parent / "templates"

    def render(
        self, environment: ResolvedEnvironment, templates: Templates
    ) -> Iterable[RenderedFile]:
        variables = [
            (variable, shell_quote(variable.value) if variable.value is not None else None)
            for variable in environment.variables.values()
        ]
        content = templates.render(
            "direnv/envrc.j2",
            environment=environment,
            variables=variables,
            environment_variable=(ENVIRONMENT_VARIABLE, shell_quote(environment.name)),
        )
        yield RenderedFile(f"{environment.name}/.envrc", content)
