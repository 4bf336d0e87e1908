"""The values the pipeline passes along: a checked spec, then a resolved project."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from envspec.errors import UnknownEnvironmentError, did_you_mean

if TYPE_CHECKING:
    from envspec.models import SpecBundle
    from envspec.resolve import Resolution, ResolvedEnvironment, ResolvedVariable, SourceMaps

KEEP_ALIVE: list[Checked] | None = None
"""When a list, every spec checked or resolved is appended to it, so none is freed: the console
script sets one, as it ends with ``os._exit`` (freeing a spec of 1,000 services object by object
took 0.1-0.2 s)."""


@dataclass(frozen=True)
class Checked:
    """A spec folder whose files are valid, its environments not resolved yet."""

    root: Path
    bundle: SpecBundle
    sources: SourceMaps
    templates_dir: Path | None
    keep_parses: Callable[[Iterable[str]], None] = field(
        default=lambda _: None, compare=False, repr=False, kw_only=True
    )
    """Cache the parses of the spec's files that may be kept (see
    :func:`envspec.validate.keep_accepted_parses`): called once validation accepted the named
    environments."""

    def __post_init__(self) -> None:
        if KEEP_ALIVE is not None:
            KEEP_ALIVE.append(self)

    def environment_names(self) -> list[str]:
        return list(self.bundle.base.environments)

    def select(self, names: Iterable[str]) -> list[str]:
        """Environments by full name or unambiguous prefix, each once, in the order given."""
        known = self.environment_names()
        return list(dict.fromkeys(select_environment(name, known) for name in names))


@dataclass(frozen=True)
class Project(Checked):
    """A loaded, valid spec with every environment resolved."""

    environments: Mapping[str, ResolvedEnvironment]
    defaults: Mapping[str, ResolvedVariable]

    @classmethod
    def of(cls, checked: Checked, resolution: Resolution) -> Project:
        return cls(
            root=checked.root,
            bundle=checked.bundle,
            sources=checked.sources,
            templates_dir=checked.templates_dir,
            keep_parses=checked.keep_parses,
            environments=resolution.environments,
            defaults=resolution.defaults,
        )

    def environment(self, name: str) -> ResolvedEnvironment:
        return self.environments[select_environment(name, self.environments)]


def select_environment(name: str, known: Iterable[str]) -> str:
    """An environment by its full name or an unambiguous prefix (``prod`` = ``production``)."""
    names = list(known)
    if name in names:
        return name
    matches = [candidate for candidate in names if candidate.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UnknownEnvironmentError(f"'{name}' is ambiguous: {', '.join(matches)}")
    raise UnknownEnvironmentError(
        f"unknown environment '{name}'{did_you_mean(name, names)}; known: {', '.join(names)}"
    )
