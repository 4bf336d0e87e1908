"""The registry: the only list of the targets envspec renders.

A target is a name and a renderer meeting the protocol in :mod:`envspec.render.base`. The
built-in ones are listed in :data:`BUILTIN`, one line each; installed packages add theirs through
the ``envspec.targets`` entry-point group (see docs/plugins.md). A renderer's module is imported
only when its target is used, and installed packages are looked up only for a name that is not
built in (or when every target is listed).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple, cast

from envspec.errors import EnvspecError, did_you_mean

if TYPE_CHECKING:
    from envspec.render.base import EnvironmentRenderer, ProjectRenderer

ENTRY_POINT_GROUP = "envspec.targets"

BUILTIN: dict[str, str] = {
    "dotenv": "envspec.render.dotenv:DotenvRenderer",
    "compose": "envspec.render.compose:ComposeRenderer",
    "kubernetes": "envspec.render.kubernetes:KubernetesRenderer",
    "example": "envspec.render.example:ExampleRenderer",
    "settings": "envspec.render.settings:SettingsRenderer",
}
"""Built-in targets: a name and the renderer class (``module:attribute``)."""

BUILTIN_ORIGIN = "built-in"


class BrokenTargetError(EnvspecError):
    """A target whose renderer cannot be loaded (a plug-in's module fails, or is no renderer)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = " ".join(reason.split())
        """Why, on one line whatever the plug-in's own message."""
        super().__init__(f"target '{name}': {self.reason}")


class Target(NamedTuple):
    """A registered target: its name, its renderer's ``module:attribute`` and where it comes
    from (built-in, or the distribution and version of the plug-in that adds it)."""

    name: str
    reference: str
    origin: str = BUILTIN_ORIGIN

    @property
    def builtin(self) -> bool:
        return self.origin == BUILTIN_ORIGIN

    @property
    def renderer(self) -> EnvironmentRenderer | ProjectRenderer:
        return _load(self.reference, self.name)

    @property
    def per_environment(self) -> bool:
        """Whether environments list it in ``targets`` (else it renders for the whole spec)."""
        return getattr(self.renderer, "scope", "environment") == "environment"

    @property
    def deploys_workloads(self) -> bool:
        """Whether its files run the services (compose, Kubernetes), for parity."""
        return bool(getattr(self.renderer, "deploys_workloads", False))


@functools.cache
def _load(reference: str, name: str) -> EnvironmentRenderer | ProjectRenderer:
    module_name, _, attribute = reference.partition(":")
    try:
        found: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
        renderer = found() if isinstance(found, type) else found
    except Exception as error:  # a plug-in's own code may fail in any way: name the plug-in
        reason = f"cannot load {reference}: {type(error).__name__}: {error}"
        raise BrokenTargetError(name, reason) from None
    if not callable(getattr(renderer, "render", None)):
        raise BrokenTargetError(name, f"{reference} has no render method")
    return cast("EnvironmentRenderer | ProjectRenderer", renderer)


@functools.cache
def plugins() -> dict[str, Target]:
    """Targets added by installed packages (a name that is built in stays the built-in one)."""
    from importlib.metadata import entry_points

    found: dict[str, Target] = {}
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if entry.name in BUILTIN or entry.name in found:
            continue
        dist = entry.dist
        origin = f"{dist.name} {dist.version}" if dist is not None else "an installed package"
        found[entry.name] = Target(entry.name, entry.value, origin)
    return found


def installed() -> dict[str, Target]:
    """Every target: the built-in ones first, then those of installed plug-ins."""
    return {**{name: Target(name, ref) for name, ref in BUILTIN.items()}, **plugins()}


def find(name: str) -> Target | None:
    if name in BUILTIN:
        return Target(name, BUILTIN[name])
    return plugins().get(name)


def get(name: str) -> Target:
    target = find(name)
    if target is None:
        raise EnvspecError(unknown(name, installed()))
    return target


def environment_targets(names: Iterable[str] | None = None) -> list[str]:
    """The targets an environment may list, of ``names`` (default: every installed one)."""
    targets = installed() if names is None else {name: get(name) for name in names}
    return [name for name, target in targets.items() if target.per_environment]


def project_targets() -> list[str]:
    """The built-in targets rendered once for the whole spec (``.env.example``, settings)."""
    return [name for name, ref in BUILTIN.items() if not Target(name, ref).per_environment]


def unknown(name: str, known: Iterable[str]) -> str:
    names = list(known)
    return f"unknown target '{name}'{did_you_mean(name, names)}; known: {', '.join(names)}"
