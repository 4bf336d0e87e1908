"""The pipeline: load -> validate -> resolve -> render -> write. What the CLI and tests call."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from envspec import parity
from envspec.errors import (
    EnvspecError,
    Problem,
    RenderError,
    SpecError,
    UnknownEnvironmentError,
    did_you_mean,
)
from envspec.incremental import RenderOptions, RenderResult, spec_root
from envspec.loader import load_spec
from envspec.models import SpecBundle, Variable
from envspec.render import ENVIRONMENT_RENDERERS, PROJECT_RENDERERS, TARGETS
from envspec.render.base import Templates
from envspec.resolve import ResolvedEnvironment, ResolvedVariable, SourceMaps, resolve_all
from envspec.schema import spec_schema
from envspec.validate import validate_spec
from envspec.writer import OutputFile, Scope, plan, write


@dataclass(frozen=True)
class Project:
    """A loaded, valid spec with every environment resolved."""

    root: Path
    bundle: SpecBundle
    sources: SourceMaps
    environments: Mapping[str, ResolvedEnvironment]
    defaults: Mapping[str, ResolvedVariable]
    templates_dir: Path | None

    def environment(self, name: str) -> ResolvedEnvironment:
        return self.environments[select_environment(name, self.environments)]


def load(spec: Path | None = None) -> Project:
    """Load, validate and resolve a spec folder; a :class:`SpecError` lists every problem."""
    root = spec_root(spec)
    raw = load_spec(root)
    bundle = validate_spec(raw)
    sources = SourceMaps.of(raw)
    resolution = resolve_all(bundle, sources)
    return Project(
        root, bundle, sources, resolution.environments, resolution.defaults, raw.templates
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


def validate(project: Project) -> list[Problem]:
    """Check what loading does not: parity and that every artifact renders. Returns warnings."""
    differences = parity.all_differences(
        project.environments, project.bundle.base.parity, judged=True
    )
    problems = parity.check(differences, project.sources)
    if problems:
        raise SpecError(problems)
    render_files(project, list(project.environments), ())
    return stale_declarations(project, differences)


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
    for file in plan_.write:
        target = folder / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.envspec-init")
        temporary.write_text(file.content, encoding="utf-8")
        temporary.replace(target)
    try:
        validate(load(folder))
    except (SpecError, RenderError) as error:
        return [folder / f.path for f in plan_.write], list(error.problems)
    return [folder / f.path for f in plan_.write], []


def parity_matrix(project: Project) -> parity.Matrix:
    return parity.matrix(project.environments, project.bundle.base.parity)


def diff(project: Project, left: str, right: str) -> tuple[str, str, list[parity.Difference]]:
    a = project.environment(left)
    b = project.environment(right)
    return a.name, b.name, parity.diff(a, b, project.bundle.base.parity)


def render_files(
    project: Project, environments: Sequence[str], targets: Sequence[str]
) -> list[OutputFile]:
    """Render in memory; raise one :class:`RenderError` with the problems of every target."""
    return [file for batch in _rendered(project, environments, targets) for file in batch]


def _rendered(
    project: Project, environments: Sequence[str], targets: Sequence[str]
) -> Iterator[list[OutputFile]]:
    """Each target's files as soon as they are rendered. Once a target fails, the rest are still
    rendered to report every problem, and one :class:`RenderError` is raised at the end."""
    unknown = [target for target in targets if target not in TARGETS]
    if unknown:
        raise EnvspecError(
            f"unknown target '{unknown[0]}'{did_you_mean(unknown[0], TARGETS)}; "
            f"known: {', '.join(TARGETS)}"
        )
    templates = Templates(project.templates_dir)
    problems = templates.unknown_overrides()
    jobs: list[tuple[str | None, str]] = [
        (name, target)
        for name in environments
        for target in project.environments[name].config.targets
        if not targets or target in targets
    ]
    jobs += [(None, target) for target in PROJECT_RENDERERS if not targets or target in targets]
    for rendered, found in _run_jobs(project, templates, jobs, environments):
        problems.extend(found)
        if not problems:
            yield rendered
    if problems:
        raise RenderError(problems)


PARALLEL_THRESHOLD = 20_000
_FORKED: dict[str, tuple[Project, Templates]] = {}


def _run_jobs(
    project: Project,
    templates: Templates,
    jobs: list[tuple[str | None, str]],
    environments: Sequence[str],
) -> Iterator[tuple[list[OutputFile], list[Problem]]]:
    """Each job's files and problems, in job order. Large specs render in two forked workers
    (the work is independent per target); ``ENVSPEC_JOBS=1`` keeps everything in one process."""
    size = sum(len(project.environments[name].variables) for name in environments)
    workers = min(2, os.cpu_count() or 1, len(jobs))
    if size < PARALLEL_THRESHOLD or workers < 2 or os.environ.get("ENVSPEC_JOBS") == "1":
        for job in jobs:
            yield _render_job(project, templates, job)
        return
    import multiprocessing

    _FORKED["state"] = (project, templates)  # inherited by the forked workers, not pickled
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            yield from pool.imap(_forked_job, jobs, chunksize=1)
    finally:
        _FORKED.clear()


def _forked_job(job: tuple[str | None, str]) -> tuple[list[OutputFile], list[Problem]]:
    return _render_job(*_FORKED["state"], job)


def _render_job(
    project: Project, templates: Templates, job: tuple[str | None, str]
) -> tuple[list[OutputFile], list[Problem]]:
    name, target = job
    try:
        if name is None:
            rendered = PROJECT_RENDERERS[target].render(
                project.bundle.base, project.environments, project.defaults, templates
            )
        else:
            rendered = ENVIRONMENT_RENDERERS[target].render(project.environments[name], templates)
        return [OutputFile(f.path, f.content, name, target) for f in rendered], []
    except RenderError as error:
        return [], list(error.problems)


def render(
    project: Project, options: RenderOptions, inputs: tuple[str, str] | None = None
) -> RenderResult:
    """Render the chosen environments and write them (or, with ``check``, only compare)."""
    if options.all:
        names = list(project.environments)
    elif options.environments:
        names = list(
            dict.fromkeys(select_environment(n, project.environments) for n in options.environments)
        )
    else:
        raise EnvspecError("name an environment with --env, or render every one with --all")
    out = options.out if options.out is not None else project.root / "build"
    scope = Scope(
        frozenset([*names, None]), frozenset(options.targets) if options.targets else None
    )
    recorded = dict([inputs]) if inputs else None
    if options.check:
        files = render_files(project, names, options.targets)
        result = plan(out, files, scope, options.force, recorded)
    else:
        batches = _rendered(project, names, options.targets)
        result = write(out, batches, scope, options.force, recorded)
    return RenderResult(out, names, result, options.check)
