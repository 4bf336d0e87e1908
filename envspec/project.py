"""The values the pipeline passes along: a checked spec, then a resolved project."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

from envspec.errors import UnknownEnvironmentError, did_you_mean

if TYPE_CHECKING:
    from envspec.models import SpecBundle
    from envspec.resolve import Resolution, ResolvedEnvironment, ResolvedVariable, SourceMaps

KEEP_ALIVE: list[Checked] | None = None
"""When a list, every spec checked or resolved is appended to it, so none is freed: the console
script sets one, as it ends with ``os._exit`` (freeing a spec of 1,000 services object by object
took 0.1-0.2 s)."""


def _keep_nothing(names: Iterable[str]) -> None:
    """The default :attr:`Checked.keep_parses`: no parse is cached."""


class Checked:
    """A spec folder whose files are valid, its environments not resolved yet.

    Checked and Project are plain classes: nothing compares or prints them, and a frozen
    dataclass costs every command ~3.5M instructions at import to compile its methods."""

    __slots__ = ("bundle", "keep_parses", "root", "sources", "templates_dir")

    def __init__(
        self,
        root: Path,
        bundle: SpecBundle,
        sources: SourceMaps,
        templates_dir: Path | None,
        *,
        keep_parses: Callable[[Iterable[str]], None] = _keep_nothing,
    ) -> None:
        self.root: Final = root
        self.bundle: Final = bundle
        self.sources: Final = sources
        self.templates_dir: Final = templates_dir
        self.keep_parses: Final = keep_parses
        """Cache the parses of the spec's files that may be kept (see
        :func:`envspec.validate.keep_accepted_parses`): called once validation accepted the
        named environments."""
        if KEEP_ALIVE is not None:
            KEEP_ALIVE.append(self)

    def environment_names(self) -> list[str]:
        return list(self.bundle.base.environments)

    def select(self, names: Iterable[str]) -> list[str]:
        """Environments by full name or unambiguous prefix, each once, in the order given."""
        known = self.environment_names()
        return list(dict.fromkeys(select_environment(name, known) for name in names))


class Project(Checked):
    """A loaded, valid spec with every environment resolved."""

    __slots__ = ("defaults", "environments")

    def __init__(self, checked: Checked, resolution: Resolution) -> None:
        super().__init__(
            checked.root,
            checked.bundle,
            checked.sources,
            checked.templates_dir,
            keep_parses=checked.keep_parses,
        )
        self.environments: Final[Mapping[str, ResolvedEnvironment]] = resolution.environments
        self.defaults: Final[Mapping[str, ResolvedVariable]] = resolution.defaults

    @classmethod
    def of(cls, checked: Checked, resolution: Resolution) -> Project:
        return cls(checked, resolution)

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
