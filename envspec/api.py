"""The pipeline: load -> validate -> resolve -> render -> write. What the CLI and tests call."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from envspec import parity, targets
from envspec import verify as verifying
from envspec.atomic import deferred_signals, note_change, write_atomic
from envspec.errors import (
    EnvspecError,
    Problem,
    RenderError,
    SpecError,
    UnknownEnvironmentError,
    did_you_mean,
)
from envspec.incremental import RenderOptions, RenderResult, output_folder, spec_root
from envspec.loader import load_spec
from envspec.models import SpecBundle, Variable
from envspec.render.base import ProjectRenderer, Templates
from envspec.resolve import (
    Resolution,
    ResolvedEnvironment,
    ResolvedVariable,
    Resolver,
    SourceMaps,
    resolve_all,
)
from envspec.schema import spec_schema
from envspec.validate import validate_spec
from envspec.writer import OutputFile, Scope, plan, write

C = TypeVar("C", bound="Checked")


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
    """Cache the parses of the spec's files (see :meth:`RawSpec.keep_parses`): called once
    validation accepted the named environments."""

    def environment_names(self) -> list[str]:
        return list(self.bundle.base.environments)


@dataclass(frozen=True)
class Project(Checked):
    """A loaded, valid spec with every environment resolved."""

    environments: Mapping[str, ResolvedEnvironment]
    defaults: Mapping[str, ResolvedVariable]

    def environment(self, name: str) -> ResolvedEnvironment:
        return self.environments[select_environment(name, self.environments)]


def check(spec: Path | None = None) -> Checked:
    """Load a spec folder and validate its files; a :class:`SpecError` lists every problem."""
    root = spec_root(spec)
    raw = load_spec(root)
    bundle = validate_spec(raw)
    return _latest(
        Checked(root, bundle, SourceMaps.of(raw), raw.templates, keep_parses=raw.keep_parses)
    )


_LATEST: list[Checked] = []


def _latest(spec: C) -> C:
    """Hold the spec loaded or resolved last, until the next one: the console script ends with
    ``os._exit``, so a command's spec is never freed object by object (0.1-0.2 s at 1,000
    services); a program using this module holds one spec more than it would."""
    _LATEST[:] = [spec]
    return spec


def load(spec: Path | None = None) -> Project:
    """Load, validate and resolve a spec folder; a :class:`SpecError` lists every problem."""
    checked = check(spec)
    project = _project(checked, resolve_all(checked.bundle, checked.sources))
    checked.keep_parses(project.environments)
    return project


def _project(checked: Checked, resolution: Resolution) -> Project:
    return _latest(
        Project(
            root=checked.root,
            bundle=checked.bundle,
            sources=checked.sources,
            templates_dir=checked.templates_dir,
            keep_parses=checked.keep_parses,
            environments=resolution.environments,
            defaults=resolution.defaults,
        )
    )


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


def validate(checked: Checked, environments: Sequence[str] = ()) -> tuple[Project, list[Problem]]:
    """Resolve every environment (or only those named, by name or prefix), check parity between
    them and render their artifacts in memory; return the project and the warnings. Large specs
    render in workers while resolving and checking."""
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

    known = checked.environment_names()
    names = (
        list(dict.fromkeys(select_environment(name, known) for name in environments))
        if environments
        else known
    )
    rendering = Rendering(checked, names, (), on_resolved=check_parity, resolve_only=names)
    for _ in rendering:
        pass
    assert rendering.project is not None
    if environments:
        return rendering.project, []  # a declaration may be about an environment not checked
    project = rendering.project
    return project, [*stale_declarations(project, found[0]), *below_target(project, found[0])]


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
                    Problem(
                        position.file,
                        position.line,
                        position.column,
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
    policy = project.bundle.base.parity
    if policy.target is None:
        return []
    found = [d for _, _, pair in differences for d in pair]
    score = parity.matrix_of(project.environments, policy, found).score
    if score >= policy.target:
        return []
    position = project.sources.base.value(("parity", "target"))
    return [
        Problem(
            position.file,
            position.line,
            position.column,
            "parity.target",
            f"the parity score is {score}%, below the target {policy.target:g}%; "
            "envspec parity shows what each row costs",
            "warning",
        )
    ]


@dataclass(frozen=True)
class EnvironmentValue:
    environment: str
    shown: str
    origin: str


@dataclass(frozen=True)
class Explanation:
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
            "environments": {
                item.environment: {"value": item.shown, "origin": item.origin}
                for item in self.environments
            },
            "services": list(self.services),
            "files": list(self.files),
        }


def explain(project: Project, name: str) -> Explanation:
    """A variable's type, value or reference per environment (secrets masked), its services and
    the generated files that carry it."""
    variables = project.bundle.base.variables
    if name not in variables:
        raise EnvspecError(f"unknown variable '{name}'{did_you_mean(name, variables)}")
    values = []
    for env_name, environment in project.environments.items():
        resolved = environment.variables.get(name)
        shown = parity.shown(resolved)
        origin = str(resolved.origin) if resolved is not None else "not set"
        values.append(EnvironmentValue(env_name, shown, origin))
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


def init(
    folder: Path, project: str | None, compose: Path | None, env_files: Sequence[Path]
) -> tuple[list[Path], list[Problem]]:
    """Write a starter or imported spec into ``folder``; return the files and what to fix."""
    from envspec import importer

    if (folder / "envspec.yaml").exists():
        raise EnvspecError(f"{folder / 'envspec.yaml'} already exists; nothing was written")
    name = project or importer.project_name(folder)
    files = (
        importer.from_compose(compose, list(env_files), project, folder)
        if compose
        else importer.starter(name)
    )
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
        return [folder / f.path for f in plan_.write], list(error.problems)
    return [folder / f.path for f in plan_.write], []


@dataclass(frozen=True)
class TargetInfo:
    """A row of ``envspec targets``."""

    name: str
    kind: str
    """``environment`` (listed in an environment's targets) or ``project`` (rendered once)."""
    origin: str
    """``built-in``, or the plug-in's distribution, version and renderer."""


def installed_targets() -> list[TargetInfo]:
    """Every target in the registry: the built-in ones, then installed plug-ins'."""
    return [
        TargetInfo(
            target.name,
            "environment" if target.per_environment else "project",
            target.origin if target.builtin else f"{target.origin} ({target.reference})",
        )
        for target in targets.installed().values()
    ]


def parity_matrix(project: Project) -> parity.Matrix:
    return parity.matrix(project.environments, project.bundle.base.parity)


def diff(project: Project, left: str, right: str) -> tuple[str, str, list[parity.Difference]]:
    a = project.environment(left)
    b = project.environment(right)
    return a.name, b.name, parity.diff(a, b, project.bundle.base.parity)


def render_files(
    project: Project, environments: Sequence[str], targets: Sequence[str]
) -> list[OutputFile]:
    """Render in memory, in path order; raise one :class:`RenderError` with the problems of
    every target."""
    return _in_order(Rendering(project, environments, targets))


def _in_order(rendering: Iterable[list[OutputFile]]) -> list[OutputFile]:
    """Every file, in path order (workers finish in any order)."""
    return sorted((file for batch in rendering for file in batch), key=lambda file: file.path)


PARALLEL_THRESHOLD = 20_000
"""From this many resolved values on (variables x environments rendered), targets render in
forked workers."""

Job = tuple[str | None, str]
"""An environment's target, or (None, a project-wide target)."""


class Rendering:
    """The files of some environments' targets, each batch as soon as its target has rendered.

    Given a :class:`Checked` spec, it resolves the environments one by one. For large specs each
    target renders in a forked worker as soon as what it needs is resolved (``settings.py`` needs
    only the defaults, an environment's targets that environment, ``.env.example`` all of them),
    while this process resolves the next environment. Every environment is resolved (its problems
    reported) unless ``resolve_only`` names some. ``on_resolved`` runs once everything is
    resolved, while the workers render. Once a target fails, the rest are still rendered to
    report every problem, and one :class:`RenderError` is raised at the end. ``ENVSPEC_JOBS=1``
    keeps everything in one process."""

    def __init__(
        self,
        spec: Checked,
        environments: Sequence[str],
        chosen: Sequence[str],
        on_resolved: Callable[[Project], None] | None = None,
        resolve_only: Sequence[str] | None = None,
    ) -> None:
        for name in chosen:
            targets.get(name)
        self.spec = spec
        self.project = spec if isinstance(spec, Project) else None
        self.on_resolved = on_resolved
        self.resolved_names = (
            list(resolve_only) if resolve_only is not None else spec.environment_names()
        )
        configs = spec.bundle.base.environments
        self.jobs: list[Job] = [
            (name, target)
            for name in environments
            for target in configs[name].targets
            if not chosen or target in chosen
        ]
        self.jobs += [
            (None, target) for target in targets.project_targets() if not chosen or target in chosen
        ]
        self.templates = Templates(spec.templates_dir, _template_folders(spec))
        self.problems = self.templates.unknown_overrides()
        size = len(spec.bundle.base.variables) * len(environments)
        self.parallel = False
        if size >= PARALLEL_THRESHOLD and len(self.jobs) >= 2:
            from envspec import workers

            self.parallel = workers.available()

    def __iter__(self) -> Iterator[list[OutputFile]]:
        results = self._in_workers() if self.parallel else self._here()
        for rendered, found in results:
            self.problems.extend(found)
            if not self.problems:
                yield rendered
        if self.problems:
            raise RenderError(self.problems)
        assert self.project is not None
        self.spec.keep_parses(self.project.environments)

    def _here(self) -> Iterator[tuple[list[OutputFile], list[Problem]]]:
        project = self.project or self._resolved(
            resolve_all(self.spec.bundle, self.spec.sources, self.resolved_names)
        )
        for job in self.jobs:
            yield _render_job(project, self.templates, job)

    def _in_workers(self) -> Iterator[tuple[list[OutputFile], list[Problem]]]:
        from envspec.workers import Children

        spec = self.spec
        with Children[Job](2) as children:
            if self.project is not None:
                resolver = None
                partial = self.project
            else:
                resolver = Resolver(spec.bundle, spec.sources)
                partial = _project(spec, Resolution(resolver.environments, resolver.defaults))
            started: set[Job] = set()

            def start_ready(everything: bool) -> None:
                for job in self.jobs:
                    name, target = job
                    ready = (
                        name in partial.environments
                        if name is not None
                        else everything or not _project_renderer(target).needs_environments
                    )
                    if ready and job not in started:
                        started.add(job)
                        children.submit(
                            job, functools.partial(_render_job, partial, self.templates, job)
                        )

            start_ready(False)
            if resolver is not None:
                for name in self.resolved_names:
                    if resolver.resolve(name) is not None:
                        start_ready(False)
                    for _, result in children.finished(block=False):
                        yield result
                self._resolved(resolver.finish())
            start_ready(True)
            while children.pending():
                for _, result in children.finished(block=True):
                    yield result

    def _resolved(self, resolution: Resolution) -> Project:
        self.project = _project(self.spec, resolution)
        if self.on_resolved is not None:
            self.on_resolved(self.project)
        return self.project


def _render_job(
    project: Project, templates: Templates, job: Job
) -> tuple[list[OutputFile], list[Problem]]:
    name, target = job
    try:
        if name is None:
            rendered = _project_renderer(target).render(
                project.bundle.base, project.environments, project.defaults, templates
            )
        else:
            renderer = targets.get(target).renderer
            assert renderer.scope == "environment"
            rendered = renderer.render(project.environments[name], templates)
        return [OutputFile(f.path, f.content, name, target) for f in rendered], []
    except RenderError as error:
        return [], list(error.problems)


def kubernetes_documents(spec: Checked, environment: str) -> str:
    """The environment's Kubernetes documents as one YAML stream, as ``kubectl kustomize``
    builds them."""
    from envspec.render.kubernetes import document_stream

    name = select_environment(environment, spec.environment_names())
    listed = spec.bundle.base.environments[name].targets
    if "kubernetes" not in listed:
        raise EnvspecError(
            f"environment '{name}' does not render kubernetes (its targets: {', '.join(listed)})"
        )
    files = _in_order(Rendering(spec, [name], ["kubernetes"]))
    return document_stream({file.path: file.content for file in files})


def verify(
    spec: Checked, environment: str, source: str | None, context: str | None
) -> verifying.Report:
    """Compare an environment's live objects, from ``source`` (a file, ``-`` for standard
    input) or else from ``kubectl get``, with the documents envspec renders for it."""
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


def _project_renderer(name: str) -> ProjectRenderer:
    renderer = targets.get(name).renderer
    assert renderer.scope == "project"
    return renderer


def _template_folders(spec: Checked) -> list[Path]:
    """The template folders of the plug-in targets the spec's environments use."""
    environments = spec.bundle.base.environments.values()
    used = {target for config in environments for target in config.targets}
    renderers = [targets.get(name).renderer for name in sorted(used)]
    return [
        Path(renderer.template_folder)
        for renderer in renderers
        if renderer.scope == "environment" and renderer.template_folder is not None
    ]


def render(
    spec: Checked, options: RenderOptions, inputs: tuple[str, str] | None = None
) -> RenderResult:
    """Render the chosen environments and write them (or, with ``check``, only compare)."""
    known = spec.environment_names()
    if options.all:
        names = known
    elif options.environments:
        names = list(dict.fromkeys(select_environment(n, known) for n in options.environments))
    else:
        raise EnvspecError("name an environment with --env, or render every one with --all")
    out = output_folder(spec.root, options.out)
    scope = Scope(
        frozenset([*names, None]), frozenset(options.targets) if options.targets else None
    )
    recorded = dict([inputs]) if inputs else None
    rendering = Rendering(spec, names, options.targets)
    if options.check:
        result = plan(out, _in_order(rendering), scope, options.force, recorded)
    else:
        result = write(out, rendering, scope, options.force, recorded)
    return RenderResult(out, names, result, options.check)
