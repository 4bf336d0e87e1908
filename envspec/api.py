"""The pipeline: load -> validate -> resolve -> render -> write. What the CLI and tests call.

Each step's module is imported when the step runs, so an unchanged render (the first step of
:func:`render`) answers from the lock without loading the models or the templates.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from envspec import incremental, targets
from envspec.atomic import deferred_signals, note_change, write_atomic
from envspec.errors import EnvspecError, Problem, RenderError, SpecError, did_you_mean
from envspec.incremental import RenderOptions, RenderResult, output_folder, spec_root
from envspec.project import Checked, Project, select_environment
from envspec.writer import OutputFile, Scope, plan, write

if TYPE_CHECKING:
    from envspec import parity
    from envspec import verify as verifying
    from envspec.models import Variable
    from envspec.resolve import Part, ResolvedEnvironment, ResolvedVariable

__all__ = ["Checked", "Project", "RenderOptions", "RenderResult", "select_environment"]


def check(spec: Path | None = None) -> Checked:
    """Load a spec folder and validate its files; a :class:`SpecError` lists every problem."""
    from envspec.loader import load_spec
    from envspec.resolve import SourceMaps
    from envspec.validate import keep_accepted_parses, validate_spec

    root = spec_root(spec)
    raw = load_spec(root)
    bundle = validate_spec(raw)
    sources = SourceMaps(raw.base.source, {name: doc.source for name, doc in raw.overlays.items()})
    keep_parses = functools.partial(keep_accepted_parses, raw, bundle)
    return Checked(root, bundle, sources, raw.templates, keep_parses=keep_parses)


def load(spec: Path | None = None) -> Project:
    """Load, validate and resolve a spec folder; a :class:`SpecError` lists every problem."""
    from envspec.resolve import resolve_all

    checked = check(spec)
    project = Project.of(checked, resolve_all(checked.bundle, checked.sources))
    checked.keep_parses(project.environments)
    return project


def validate(checked: Checked, environments: Sequence[str] = ()) -> tuple[Project, list[Problem]]:
    """Resolve every environment (or only those named, by name or prefix), check parity between
    them and render their artifacts in memory; return the project and the warnings. Large specs
    render in workers while resolving and checking."""
    from envspec import parity, rendering

    found: list[list[tuple[ResolvedEnvironment, ResolvedEnvironment, list[parity.Difference]]]]
    found = []

    def check_parity(project: Project) -> None:
        differences = parity.all_differences(
            project.environments, project.bundle.base.parity, judged=True
        )
        problems = parity.check(differences, project.sources)
        if problems:
            raise SpecError(problems)
        found.append(differences)
        resolved.append(project)

    resolved: list[Project] = []
    names = checked.select(environments) if environments else checked.environment_names()
    for _ in rendering.batches(checked, names, on_resolved=check_parity, resolve_only=names):
        pass
    from envspec.loader import stray_files

    stray = stray_files(checked.root)
    project = resolved[0]
    placeholders = placeholder_warnings(project)
    if environments:
        return project, [*stray, *placeholders]  # declarations may be about other environments
    return project, [
        *stray,
        *stale_declarations(project, found[0]),
        *below_target(project, found[0]),
        *placeholders,
    ]


def placeholder_warnings(project: Project) -> list[Problem]:
    """A warning for each secret reference that is still a placeholder."""
    from envspec.resolve import value_path

    warnings = []
    for environment in project.environments.values():
        own = [v for service in environment.services for v in service.own.values()]
        for variable in [*environment.variables.values(), *own]:
            reference = variable.reference
            if reference is not None and reference.is_placeholder:
                position = variable.origin.position()
                warnings.append(
                    Problem(
                        position.file,
                        position.line,
                        position.column,
                        value_path(variable),
                        f"'{reference}' is a placeholder: replace it with where "
                        f"{environment.name} keeps the secret",
                        "warning",
                    )
                )
    return sorted(set(warnings))


def stale_declarations(
    project: Project,
    differences: list[tuple[ResolvedEnvironment, ResolvedEnvironment, list[parity.Difference]]],
) -> list[Problem]:
    """Warnings for declared differences that no longer exist."""
    live = {d.path for _, _, found in differences for d in found if d.status == "declared"}
    warnings = []
    for name, environment in project.environments.items():
        source = project.sources.overlay(name)
        for index, declared in enumerate(environment.differences):
            if declared.path not in live and source is not None:
                position = source.value(("differences", index))
                warnings.append(
                    Problem.at(
                        position,
                        f"differences[{index}]",
                        f"declared difference '{declared.path}' no longer exists; remove it",
                        "warning",
                    )
                )
    return warnings


def below_target(
    project: Project,
    differences: list[tuple[ResolvedEnvironment, ResolvedEnvironment, list[parity.Difference]]],
) -> list[Problem]:
    """A warning when the parity score is below the spec's ``parity.target``."""
    from envspec import parity

    policy = project.bundle.base.parity
    if policy.target is None:
        return []
    found = [d for _, _, pair in differences for d in pair]
    score = parity.matrix_of(project.environments, policy, found).score
    if score >= policy.target:
        return []
    position = project.sources.base.value(("parity", "target"))
    return [
        Problem.at(
            position,
            "parity.target",
            f"the parity score is {score}%, below the target {policy.target:g}%; "
            "envspec parity shows what each row costs",
            "warning",
        )
    ]


class PartSource(NamedTuple):
    """What one reference of a derived value's formula stands for in an environment."""

    label: str
    shown: str
    origin: str


class EnvironmentValue(NamedTuple):
    """A variable's value in one environment (``environment``), or one service's own value
    there (``service``)."""

    environment: str
    shown: str
    origin: str
    formula: str | None = None
    parts: tuple[PartSource, ...] = ()
    services: tuple[EnvironmentValue, ...] = ()
    """The services that have their own value here."""
    service: str | None = None

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {"value": self.shown, "origin": self.origin}
        if self.formula is not None:
            found["formula"] = self.formula
            found["parts"] = {
                part.label: {"value": part.shown, "origin": part.origin} for part in self.parts
            }
        if self.services:
            found["services"] = {str(value.service): value.as_dict() for value in self.services}
        return found


class Explanation(NamedTuple):
    """Where a variable comes from in each environment and where it lands."""

    name: str
    variable: Variable
    environments: tuple[EnvironmentValue, ...]
    services: tuple[str, ...]
    files: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.variable.type,
            "secret": self.variable.secret,
            "description": self.variable.description,
            "environments": {item.environment: item.as_dict() for item in self.environments},
            "services": list(self.services),
            "files": list(self.files),
        }


def explain(project: Project, name: str) -> Explanation:
    """A variable's type, value or reference per environment (secrets masked), its services and
    the generated files that carry it."""
    from envspec import parity

    variables = project.bundle.base.variables
    if name not in variables:
        raise EnvspecError(f"unknown variable '{name}'{did_you_mean(name, variables)}")
    values = []
    for env_name, environment in project.environments.items():
        own = tuple(
            _value_of(env_name, service.own[name], service.name)
            for service in environment.deployed
            if name in service.own and name in service.variables
        )
        resolved = environment.variables.get(name)
        if resolved is None:
            values.append(EnvironmentValue(env_name, parity.shown(None), "not set", services=own))
            continue
        values.append(_value_of(env_name, resolved, None, own))
    services = tuple(
        sorted(
            {
                service.name
                for environment in project.environments.values()
                for service in environment.services
                if name in service.variables
            }
        )
    )
    pattern = re.compile(rf"(^|[\s\"'-]){re.escape(name)}([=:\"']|$)", re.M)
    files = tuple(
        sorted(
            file.path
            for file in render_files(project, list(project.environments), ())
            if pattern.search(file.content)
        )
    )
    return Explanation(name, variables[name], tuple(values), services, files)


def _value_of(
    environment: str,
    resolved: ResolvedVariable,
    service: str | None,
    services: tuple[EnvironmentValue, ...] = (),
) -> EnvironmentValue:
    from envspec import parity

    parts = tuple(_part_source(part) for part in resolved.parts)
    return EnvironmentValue(
        environment,
        parity.shown(resolved),
        str(resolved.origin),
        resolved.formula,
        parts,
        services,
        service,
    )


def _part_source(part: Part) -> PartSource:
    from envspec import parity

    if part.variable is not None:
        return PartSource(part.label, parity.shown(part.variable), str(part.variable.origin))
    assert part.fact is not None
    service = part.label.split(".")[1]
    if part.origin is not None:
        where = str(part.origin)
    elif part.label.endswith(".host"):
        where = f"the name of service '{service}'"
    else:
        where = f"the first port of service '{service}'"
    return PartSource(part.label, repr(part.fact), where)


def init(
    folder: Path, project: str | None, compose: Path | None, env_files: Sequence[Path]
) -> tuple[list[Path], list[Problem], list[str]]:
    """Write a starter or imported spec into ``folder``; return the files, what to fix and the
    import's summary (what was found, renamed and not carried)."""
    from envspec import importer
    from envspec.schema import spec_schema

    if (folder / "envspec.yaml").exists():
        raise EnvspecError(f"{folder / 'envspec.yaml'} already exists; nothing was written")
    name = project or importer.project_name(folder)
    summary: list[str] = []
    if compose:
        imported = importer.from_compose(compose, list(env_files), project, folder)
        files, summary = imported.files, imported.summary
    else:
        files = importer.starter(name)
    files[importer.SCHEMA_FILE] = spec_schema()
    plan_ = plan(
        folder,
        [OutputFile(path, content, None, "init") for path, content in files.items()],
        Scope(frozenset(), None),
        force=False,
    )
    if plan_.conflicts:
        raise EnvspecError("refusing to overwrite: " + "; ".join(plan_.conflicts))
    with deferred_signals():
        note_change()
        for file in plan_.write:
            target = folder / file.path
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, file.data)
    try:
        validate(check(folder))
    except (SpecError, RenderError) as error:
        return [folder / f.path for f in plan_.write], list(error.problems), summary
    return [folder / f.path for f in plan_.write], [], summary


def add_variable(
    spec: Path | None,
    name: str,
    *,
    type_: str | None = None,
    default: str | None = None,
    secret: bool = False,
    description: str | None = None,
    values: dict[str, str] | None = None,
    services: Sequence[str] = (),
) -> list[Path]:
    """Add a variable to the spec in place (comments and layout kept), with its value in some
    environments; return the files changed. The edited spec is validated before it is written."""
    from envspec import edit

    change = edit.VariableChange(
        name, type_, default, secret, description, dict(values or {}), tuple(services)
    )
    return edit.add_variable(_editable(spec), change, _validate_folder)


def set_variable(
    spec: Path | None, name: str, values: dict[str, str], service: str | None = None
) -> list[Path]:
    """Set a variable's value in some environments' overlays (with ``service``: that service's
    own value there), in place."""
    from envspec import edit

    return edit.set_variable(_editable(spec), name, values, _validate_folder, service)


def remove_variable(spec: Path | None, name: str, service: str | None = None) -> list[Path]:
    """Remove a variable from the base, every overlay and every service's list, in place (with
    ``service``: only that service's own values of it)."""
    from envspec import edit

    if service is not None:
        return edit.remove_service_value(_editable(spec), name, service, _validate_folder)
    return edit.remove_variable(_editable(spec), name, _validate_folder)


def _editable(spec: Path | None) -> Path:
    """The spec folder, once its own problems (positioned) are known to be none."""
    root = spec_root(spec)
    load(root)
    return root


def _validate_folder(folder: Path) -> None:
    validate(check(folder))


def names_in(spec: Path | None, section: str) -> list[str]:
    """The names under a top-level section of the spec (``environments``, ``variables``), read
    without validating it, for shell completion; none when there is no readable spec."""
    from envspec.layout import find_spec_root
    from envspec.loader import section_names

    root = spec if spec is not None else find_spec_root(Path.cwd())
    return section_names(root, section) if root is not None else []


def schema() -> str:
    """The JSON Schema of spec and overlay files, for editors (committed under ``schema/``)."""
    from envspec.schema import spec_schema

    return spec_schema()


class TargetInfo(NamedTuple):
    """A row of ``envspec targets``."""

    name: str
    kind: str
    """``environment`` (listed in an environment's targets) or ``project`` (rendered once)."""
    origin: str
    """``built-in``, or the plug-in's distribution, version and renderer."""
    error: str | None = None
    """Why its renderer cannot be loaded (its kind is then ``broken``)."""


def installed_targets() -> list[TargetInfo]:
    """Every target in the registry: the built-in ones, then installed plug-ins'. A plug-in
    whose renderer cannot be loaded is listed too, with why, and does not hide the others."""
    rows = []
    for target in targets.installed().values():
        origin = target.origin if target.builtin else f"{target.origin} ({target.reference})"
        try:
            kind = "environment" if target.per_environment else "project"
        except targets.BrokenTargetError as error:
            rows.append(TargetInfo(target.name, "broken", origin, error.reason))
        else:
            rows.append(TargetInfo(target.name, kind, origin))
    return rows


def parity_matrix(project: Project) -> parity.Matrix:
    from envspec import parity

    return parity.matrix(project.environments, project.bundle.base.parity)


def diff(project: Project, left: str, right: str) -> tuple[str, str, list[parity.Difference]]:
    from envspec import parity

    a = project.environment(left)
    b = project.environment(right)
    return a.name, b.name, parity.diff(a, b, project.bundle.base.parity)


def render_files(
    project: Project, environments: Sequence[str], chosen: Sequence[str]
) -> list[OutputFile]:
    """Render in memory, in path order; raise one :class:`RenderError` with the problems of
    every target."""
    from envspec import rendering

    return rendering.in_order(rendering.batches(project, environments, chosen))


def kubernetes_documents(spec: Checked, environment: str) -> str:
    """The environment's Kubernetes documents as one YAML stream, as ``kubectl kustomize``
    builds them."""
    from envspec import rendering
    from envspec.render.kubernetes import document_stream

    name = select_environment(environment, spec.environment_names())
    listed = spec.bundle.base.environments[name].targets
    if "kubernetes" not in listed:
        raise EnvspecError(
            f"environment '{name}' does not render kubernetes (its targets: {', '.join(listed)})"
        )
    files = rendering.in_order(rendering.batches(spec, [name], ["kubernetes"]))
    return document_stream({file.path: file.content for file in files})


def verify(
    spec: Checked, environment: str, source: str | None, context: str | None
) -> verifying.Report:
    """Compare an environment's live objects, from ``source`` (a file, ``-`` for standard
    input) or else from ``kubectl get``, with the documents envspec renders for it."""
    from envspec import verify as verifying

    stream = kubernetes_documents(spec, environment)
    expected = verifying.expected_objects(stream)
    namespace = verifying.namespace_of(expected)
    live = (
        verifying.read_live(source)
        if source is not None
        else verifying.fetch(expected, namespace, context)
    )
    drift = verifying.compare(expected, live)
    name = select_environment(environment, spec.environment_names())
    return verifying.Report(name, namespace, len(expected), tuple(drift))


def render(spec: Path | None, options: RenderOptions) -> RenderResult:
    """Render the chosen environments and write them (or, with ``check``, only compare). When
    nothing changed since the last render with the same options, the lock answers."""
    root = spec_root(spec)
    unchanged, inputs = incremental.unchanged(root, options)
    if unchanged is not None:
        return unchanged
    from envspec import rendering

    checked = check(root)
    if options.all:
        names = checked.environment_names()
    elif options.environments:
        names = checked.select(options.environments)
    else:
        raise EnvspecError("name an environment with --env, or render every one with --all")
    out = output_folder(root, options.out)
    scope = Scope(
        frozenset([*names, None]), frozenset(options.targets) if options.targets else None
    )
    files = rendering.batches(checked, names, options.targets)
    if options.check:
        result = plan(out, rendering.in_order(files), scope, options.force, dict([inputs]))
    else:
        result = write(out, files, scope, options.force, dict([inputs]))
    return RenderResult(out, names, result, options.check)


def task_commands(
    spec: Checked, name: str, environment: str, out: Path | None, chosen: Sequence[str] = ()
) -> list[str]:
    """The shell command that runs task ``name`` in ``environment``, one for each of its
    targets that runs tasks (or of those ``chosen``), with the files under ``out`` (default
    ``build/`` beside the spec)."""
    from envspec.render.base import TaskRunner, Templates
    from envspec.rendering import template_folders
    from envspec.resolve import resolve_all

    tasks = spec.bundle.base.tasks
    if name not in tasks:
        known = f"; known: {', '.join(tasks)}" if tasks else "; the spec has no tasks"
        raise EnvspecError(f"unknown task '{name}'{did_you_mean(name, tasks)}{known}")
    env_name = select_environment(environment, spec.environment_names())
    resolved = resolve_all(spec.bundle, spec.sources, [env_name]).environments[env_name]
    task = next((task for task in resolved.tasks if task.name == name), None)
    if task is None:
        service = tasks[name].service
        raise EnvspecError(
            f"task '{name}' runs with service '{service}', which is not deployed in '{env_name}'"
        )
    runners = [
        renderer
        for target in resolved.config.targets
        if (not chosen or target in chosen)
        and isinstance(renderer := targets.get(target).renderer, TaskRunner)
    ]
    if not runners:
        asked = f" ({', '.join(chosen)})" if chosen else ""
        raise EnvspecError(
            f"environment '{env_name}' renders no target that runs tasks{asked}; its targets: "
            f"{', '.join(resolved.config.targets)}"
        )
    folder = _shown_path(output_folder(spec.root, out) / env_name)
    templates = Templates(spec.templates_dir, template_folders(spec))
    return [renderer.task_command(resolved, templates, task, folder) for renderer in runners]


def _shown_path(path: Path) -> str:
    """``path`` as a user would type it here: relative to the working directory when under it."""
    absolute = path.absolute()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)
