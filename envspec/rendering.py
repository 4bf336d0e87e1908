"""Render scheduling: which targets render when, in this process or in forked workers.

:func:`batches` is the one entry: the pipeline (:mod:`envspec.api`) asks it for the files of some
environments' targets and gets them batch by batch, in any order (:func:`in_order` sorts them).
The forking itself is :mod:`envspec.workers`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from envspec import targets, workers
from envspec.errors import Problem, RenderError
from envspec.project import Checked, Project
from envspec.render.base import ProjectRenderer, Templates
from envspec.resolve import Resolution, Resolver, resolve_all
from envspec.writer import OutputFile


def batches(
    spec: Checked,
    environments: Sequence[str],
    chosen: Sequence[str] = (),
    on_resolved: Callable[[Project], None] | None = None,
    resolve_only: Sequence[str] | None = None,
) -> Iterator[list[OutputFile]]:
    """The files of ``environments``' targets (only those ``chosen``, if any) and of the
    project-wide targets, a batch per target as soon as it has rendered; see :class:`_Rendering`.
    """
    return iter(_Rendering(spec, environments, chosen, on_resolved, resolve_only))


def in_order(rendering: Iterable[list[OutputFile]]) -> list[OutputFile]:
    """Every file, in path order (workers finish in any order)."""
    return sorted((file for batch in rendering for file in batch), key=lambda file: file.path)


PARALLEL_THRESHOLD = 20_000
"""From this many resolved values on (variables x environments rendered), targets render in
forked workers."""

Job = tuple[str | None, str]
"""An environment's target, or (None, a project-wide target)."""


class _Rendering:
    """The files of some environments' targets, each batch as soon as its target has rendered.

    Given a :class:`Checked` spec, it resolves the environments one by one. For large specs a
    forked worker renders each target as soon as what it needs is resolved (``settings.py`` needs
    only the defaults, an environment's targets that environment, ``.env.example`` all of them),
    while this process resolves the next environment; once everything is resolved, this process
    renders what is still waiting beside the worker. One worker and this process keep two cores
    busy: a second worker would only add a fork, the copy-on-write of every page either process
    touches and the pickling of its result. Every environment is resolved (its problems
    reported) unless ``resolve_only`` names some. ``on_resolved`` runs once everything is
    resolved, while the worker renders. Once a target fails, the rest are still rendered to
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
        self.templates = Templates(spec.templates_dir, template_folders(spec))
        self.problems = self.templates.unknown_overrides()
        size = len(spec.bundle.base.variables) * len(environments)
        self.parallel = False
        if size >= PARALLEL_THRESHOLD and len(self.jobs) >= 2:
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
        spec = self.spec
        with workers.Children[Job](1) as children:
            if self.project is not None:
                resolver = None
                partial = self.project
            else:
                resolver = Resolver(spec.bundle, spec.sources)
                partial = Project.of(spec, Resolution(resolver.environments, resolver.defaults))
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
            for _, result in children.drain():
                yield result

    def _resolved(self, resolution: Resolution) -> Project:
        self.project = Project.of(self.spec, resolution)
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


def _project_renderer(name: str) -> ProjectRenderer:
    renderer = targets.get(name).renderer
    assert renderer.scope == "project"
    return renderer


def template_folders(spec: Checked) -> list[Path]:
    """The template folders of the plug-in targets the spec's environments use."""
    environments = spec.bundle.base.environments.values()
    used = {target for config in environments for target in config.targets}
    renderers = [targets.get(name).renderer for name in sorted(used)]
    return [
        Path(renderer.template_folder)
        for renderer in renderers
        if renderer.scope == "environment" and renderer.template_folder is not None
    ]
