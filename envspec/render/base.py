"""What a renderer is, and the template set every renderer draws from.

A renderer turns resolved environments into :class:`RenderedFile` values; it reads no disk and
writes none. Templates are Jinja2 with ``StrictUndefined``, named ``<target>/<file>.j2``: the
built-in ones, then those of plug-in targets (each renderer's ``template_folder``); a spec's
``templates/`` folder overrides any of them by name. The registry of targets is
:mod:`envspec.targets`; docs/plugins.md describes the protocol for authors of new targets.
When a spec has its own templates, every template runs in Jinja's immutable sandbox (a template
in a pull request cannot run code in CI), with calls nested at most :data:`MAX_CALL_DEPTH` deep
and no operator making more than :data:`MAX_TEXT` items.
"""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

import jinja2
import yaml
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from envspec import cache
from envspec.errors import Problem, RenderError, did_you_mean
from envspec.location import display_path
from envspec.models import Spec
from envspec.render import builtin_template_dir
from envspec.render.filters import FILTERS, CannotCarry, to_yaml
from envspec.resolve import ResolvedEnvironment, ResolvedTask, ResolvedVariable, deep_merge


class RenderedFile(NamedTuple):
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


@runtime_checkable
class TaskRunner(Protocol):
    """An environment target whose files can run the spec's tasks (compose, Kubernetes)."""

    def task_command(
        self,
        environment: ResolvedEnvironment,
        templates: Templates,
        task: ResolvedTask,
        folder: str,
    ) -> str:
        """The shell command that runs ``task`` from the environment's files as rendered into
        ``folder`` (``<out>/<env>``, as the user would type it)."""


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


def _bytecode_cache(sandboxed: bool) -> jinja2.BytecodeCache | None:
    """Compiled templates kept in envspec's cache folder (keyed by each template's source), so a
    run does not compile templates again. Sandboxed code is compiled differently (every call
    goes through the sandbox): it has a folder of its own."""
    folder = cache.folder("templates-sandboxed" if sandboxed else "templates")
    return jinja2.FileSystemBytecodeCache(str(folder)) if folder is not None else None


MAX_CALL_DEPTH = 100
MAX_TEXT = 1_000_000


class _Environment(jinja2.Environment):
    """A Jinja environment whose templates' globals are a plain dict. Jinja's ChainMap (which
    keeps up with later changes to the environment's globals; envspec makes none) is read key
    by key twice on every render: a third of the time a small template takes."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}


class _Sandbox(ImmutableSandboxedEnvironment, _Environment):
    """Jinja's immutable sandbox, with calls (macros calling themselves) nested at most
    :data:`MAX_CALL_DEPTH` deep, and ``*`` and ``**`` bounded."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.depth = 0

    def call(
        __self,  # noqa: N805 - Jinja's signature: a template may pass 'self' as a keyword
        __context: jinja2.runtime.Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if __self.depth >= MAX_CALL_DEPTH:
            raise SecurityError(f"calls nested deeper than {MAX_CALL_DEPTH} (endless recursion?)")
        __self.depth += 1
        try:
            return super().call(__context, __obj, *args, **kwargs)
        finally:
            __self.depth -= 1

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if operator == "*":
            for items, times in ((left, right), (right, left)):
                sized = isinstance(items, str | list | tuple) and isinstance(times, int)
                if sized and len(items) * times > MAX_TEXT:
                    raise SecurityError(f"'*' would make more than {MAX_TEXT} items")
        elif (
            isinstance(left, int)
            and isinstance(right, int)
            and right * abs(left).bit_length() > MAX_TEXT
        ):
            raise SecurityError(f"'**' would make a number of more than {MAX_TEXT} bits")
        return super().call_binop(context, operator, left, right)


_SAFE_MESSAGES = {ZeroDivisionError: "division by zero", RecursionError: "endless recursion"}
"""Errors whose message is shown; other errors' messages may repeat a value, only the kind is."""


class Templates:
    """The built-in templates and those of plug-in targets (``folders``), overlaid with a
    spec's own, compiled once per run."""

    def __init__(self, overrides: Path | None = None, folders: Sequence[Path] = ()) -> None:
        self.builtin = builtin_template_dir()
        self.folders = [self.builtin, *folders]
        self.overrides = overrides
        search = [str(folder) for folder in ([overrides] if overrides else []) + self.folders]
        kind = _Sandbox if overrides else _Environment
        self.environment = kind(
            loader=jinja2.FileSystemLoader(search),
            bytecode_cache=_bytecode_cache(sandboxed=overrides is not None),
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
        """Files in the spec's ``templates/`` that override nothing (a misspelt name), lead
        outside it (a symlink) or are not UTF-8."""
        if self.overrides is None:
            return []
        known = set(self.names())
        inside = self.overrides.resolve()
        problems = []
        for path in sorted(self.overrides.rglob("*")):
            name = str(path.relative_to(self.overrides))
            if not path.is_file():
                continue
            if not path.resolve().is_relative_to(inside):
                problems.append(
                    Problem(display_path(path), 1, 1, "templates", "leads outside templates/")
                )
            elif name not in known:
                problems.append(
                    Problem(
                        display_path(path),
                        1,
                        1,
                        "templates",
                        f"no template is named '{name}'" + did_you_mean(name, known),
                    )
                )
            else:
                problems.extend(_not_utf8(path))
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
            raise RenderError([self._failure(name, _undefined(error))]) from None
        except CannotCarry:
            raise
        except jinja2.TemplateNotFound as error:
            raise RenderError([self._failure(name, f"no template '{error.name}'")]) from None
        except (jinja2.TemplateError, SecurityError) as error:
            raise RenderError([self._failure(name, str(error))]) from None
        except Exception as error:  # a user's template may fail in any way
            kind = type(error).__name__
            message = _SAFE_MESSAGES.get(type(error), "")
            failure = f"fails when rendered: {kind}" + (f" ({message})" if message else "")
            raise RenderError([self._failure(name, failure)]) from None

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

    def _failure(self, name: str, message: str) -> Problem:
        """A problem at the innermost template line of the error being handled (an included
        template's, when the error happened there)."""
        folders = [*self.folders, *([self.overrides] if self.overrides else [])]
        for frame in reversed(traceback.extract_tb(sys.exc_info()[2])):
            path = Path(frame.filename)
            if any(path.is_relative_to(folder) for folder in folders) and frame.lineno:
                return Problem(display_path(path), frame.lineno, 1, "template", message)
        return self._problem(name, 1, message)


def _undefined(error: jinja2.UndefinedError) -> str:
    """What is undefined, naming it only when the message names nothing but what a template
    wrote: a missing key of a mapping may be a value (a secret's, even)."""
    found = re.fullmatch(r"'([A-Za-z_][A-Za-z0-9_]*)' is undefined", error.message or "")
    if found is not None:
        return f"undefined: '{found.group(1)}' is undefined"
    return "undefined: an attribute or key the template uses does not exist"


def _not_utf8(path: Path) -> list[Problem]:
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        before = raw[: error.start].decode("utf-8")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        return [
            Problem(
                display_path(path),
                line,
                column,
                "template",
                f"not UTF-8: byte 0x{raw[error.start]:02x}",
            )
        ]
    return []


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
