"""What a renderer is, and the template set every renderer draws from.

A renderer turns resolved environments into :class:`RenderedFile` values; it reads no disk and
writes none. Templates are Jinja2 with ``StrictUndefined``, named ``<target>/<file>.j2``: the
built-in ones, then those of plug-in targets (each renderer's ``template_folder``); a spec's
``templates/`` folder overrides any of them by name. The registry of targets is
:mod:`envspec.targets`; docs/plugins.md describes the protocol for authors of new targets.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import jinja2
import yaml

from envspec import cache
from envspec.errors import Problem, RenderError, did_you_mean
from envspec.location import display_path
from envspec.models import Spec
from envspec.render import builtin_template_dir
from envspec.render.filters import FILTERS, CannotCarry, to_yaml
from envspec.resolve import ResolvedEnvironment, ResolvedVariable, deep_merge


@dataclass(frozen=True)
class RenderedFile:
    """A file to write, relative to the output folder."""

    path: str
    content: str


class EnvironmentRenderer(Protocol):
    """Renders one environment's artifacts under ``<env>/``: a target environments list in
    ``targets``. Built-in and plug-in targets meet the same protocol."""

    @property
    def scope(self) -> Literal["environment"]: ...

    @property
    def deploys_workloads(self) -> bool:
        """Whether its files run the environment's services (parity compares how they run)."""

    @property
    def template_folder(self) -> Path | None:
        """A folder of ``<target>/<file>.j2`` templates, or None for the built-in ones only."""

    def render(
        self, environment: ResolvedEnvironment, templates: Templates
    ) -> Iterable[RenderedFile]: ...


class ProjectRenderer(Protocol):
    """Renders artifacts that describe the whole spec (``.env.example``, ``settings.py``): built
    in only, rendered for every spec."""

    @property
    def scope(self) -> Literal["project"]: ...

    @property
    def needs_environments(self) -> bool:
        """Whether it reads the resolved environments (else only the spec and the defaults)."""

    def render(
        self,
        spec: Spec,
        environments: Mapping[str, ResolvedEnvironment],
        defaults: Mapping[str, ResolvedVariable],
        templates: Templates,
    ) -> Iterable[RenderedFile]:
        """``defaults``: each variable's default as resolved (typed text or reference)."""


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept in envspec's cache folder (keyed by each template's source), so a
    run does not compile templates again."""
    folder = cache.folder("templates")
    return jinja2.FileSystemBytecodeCache(str(folder)) if folder is not None else None


class Templates:
    """The built-in templates and those of plug-in targets (``folders``), overlaid with a
    spec's own, compiled once per run."""

    def __init__(self, overrides: Path | None = None, folders: Sequence[Path] = ()) -> None:
        self.builtin = builtin_template_dir()
        self.folders = [self.builtin, *folders]
        self.overrides = overrides
        search = [str(folder) for folder in ([overrides] if overrides else []) + self.folders]
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(search),
            bytecode_cache=_bytecode_cache(),
            auto_reload=False,  # templates do not change during a run: no stat per render
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.environment.filters.update(FILTERS)
        self._overridden: dict[str, bool] = {}
        self._loaded: dict[str, jinja2.Template] = {}

    def names(self) -> list[str]:
        found = {str(path.relative_to(top)) for top in self.folders for path in top.rglob("*.j2")}
        return sorted(found)

    def unknown_overrides(self) -> list[Problem]:
        """Files in the spec's ``templates/`` that override nothing (a misspelt name)."""
        if self.overrides is None:
            return []
        known = set(self.names())
        problems = []
        for path in sorted(self.overrides.rglob("*")):
            name = str(path.relative_to(self.overrides))
            if path.is_file() and name not in known:
                problems.append(
                    Problem(
                        display_path(path),
                        1,
                        1,
                        "templates",
                        f"no template is named '{name}'" + did_you_mean(name, known),
                    )
                )
        return problems

    def render(self, name: str, /, **context: Any) -> str:
        """Render one template; a template error becomes a positioned :class:`RenderError`."""
        try:
            template = self._loaded.get(name)
            if template is None:
                template = self._loaded[name] = self.environment.get_template(name)
            return template.render(**context)
        except jinja2.TemplateSyntaxError as error:
            raise RenderError(
                [self._problem(error.name or name, error.lineno, error.message or "")]
            ) from None
        except jinja2.UndefinedError as error:
            line = self._template_line(name)
            raise RenderError([self._problem(name, line, f"undefined: {error.message}")]) from None
        except CannotCarry:
            raise
        except jinja2.TemplateError as error:
            raise RenderError(
                [self._problem(name, self._template_line(name), str(error))]
            ) from None

    def render_yaml(
        self, name: str, change: Callable[[Any], Any] | None = None, /, **context: Any
    ) -> str:
        """Render a YAML template. A built-in template's text is used as it is; the output of a
        user's template is parsed (to report invalid YAML), and so is any document that
        ``change`` edits (an escape hatch): those are written back by :func:`to_yaml`."""
        text = self.render(name, **context)
        if change is None and not self.is_override(name):
            return text
        try:
            data = yaml.load(text, Loader=_YamlLoader)
        except yaml.YAMLError as error:
            raise RenderError([self._problem(name, 1, _yaml_problem(error, "renders"))]) from None
        return to_yaml(change(data) if change is not None else data)

    def is_override(self, name: str) -> bool:
        if name not in self._overridden:
            self._overridden[name] = (
                self.overrides is not None and (self.overrides / name).is_file()
            )
        return self._overridden[name]

    def _problem(self, name: str, line: int, message: str) -> Problem:
        return Problem(self._display(name), line, 1, "template", message)

    def _display(self, name: str) -> str:
        if self.overrides is not None and (self.overrides / name).is_file():
            return display_path(self.overrides / name)
        found = (folder / name for folder in self.folders if (folder / name).is_file())
        return display_path(next(found, self.builtin / name))

    def _template_line(self, name: str) -> int:
        trace = traceback.extract_tb(sys.exc_info()[2])
        for frame in reversed(trace):
            if frame.filename.endswith(name) and frame.lineno is not None:
                return frame.lineno
        return 1


try:
    from yaml import CSafeLoader as _YamlLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _YamlLoader  # type: ignore[assignment]


def _yaml_problem(error: yaml.YAMLError, verb: str) -> str:
    """What went wrong and where, without PyYAML's snippet of the line (it may hold a secret)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or "not YAML"
    where = f" (output line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return f"{verb} invalid YAML{where}: {problem}"


def merging(patch: Mapping[str, Any] | None) -> Callable[[Any], Any] | None:
    """A change that merges ``patch`` into a document, or None when there is nothing to merge."""
    if not patch:
        return None
    return lambda data: deep_merge(data, patch)
