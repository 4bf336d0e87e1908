"""The ``envspec`` command: parses options, calls one api function, prints its result.

Heavy modules (pydantic, jinja2, rich) are imported inside the commands that need them, so
``envspec --version`` and ``--help`` stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from envspec import __version__
from envspec.errors import ExitCode

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from envspec.errors import Problem

F = TypeVar("F", bound=Callable[..., Any])


def _pyproject_defaults() -> dict[str, Any]:
    """``[tool.envspec]`` of the closest pyproject.toml, paths made relative to its folder."""
    import tomllib

    for folder in (Path.cwd(), *Path.cwd().parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                settings = (
                    tomllib.loads(candidate.read_text(encoding="utf-8"))
                    .get("tool", {})
                    .get("envspec", {})
                )
            except (OSError, tomllib.TOMLDecodeError):
                return {}
            return {
                key: str(folder / value)
                for key, value in settings.items()
                if key in {"spec", "out"} and isinstance(value, str)
            }
    return {}


class _Context:
    def __init__(self) -> None:
        self.debug = False
        self._defaults: dict[str, Any] | None = None

    def default(self, key: str) -> Path | None:
        if self._defaults is None:
            self._defaults = _pyproject_defaults()
        value = self._defaults.get(key)
        return Path(value) if value else None


def _names(context: click.Context, section: str, incomplete: str) -> list[CompletionItem]:
    """Names under ``section`` of the spec, for shell completion; nothing when it cannot load."""
    from click.shell_completion import CompletionItem

    from envspec import api

    spec = context.params.get("spec") or context.ensure_object(_Context).default("spec")
    names = api.names_in(Path(spec) if spec is not None else None, section)
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def _complete_environment(
    context: click.Context, parameter: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return _names(context, "environments", incomplete)


def _complete_variable(
    context: click.Context, parameter: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return _names(context, "variables", incomplete)


spec_option = click.option(
    "--spec",
    type=click.Path(path_type=Path, file_okay=True, dir_okay=True),
    envvar="ENVSPEC_SPEC",
    help="Spec folder (default: ENVSPEC_SPEC, [tool.envspec] spec in pyproject.toml, "
    "or the closest folder up from here with an envspec.yaml).",
)


out_option = click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="ENVSPEC_OUT",
    help="Output folder (default: ENVSPEC_OUT, [tool.envspec] out in pyproject.toml, "
    "or build/ beside envspec.yaml).",
)


def format_option(*formats: str) -> Callable[[F], F]:
    """``--format``, the same option on every command that has one: ``text`` first, ``json``
    always there and stable, also when the command fails (``{"error": ...}`` on stdout)."""
    described = {
        "text": "text (for people)",
        "json": "json (stable, documented; also on failure)",
        "markdown": "markdown (for a pull request)",
    }
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(formats),
        default="text",
        show_default=True,
        help="Output format: " + ", ".join(described[name] for name in formats) + ".",
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="envspec")
@click.option("--debug", is_flag=True, help="Show a traceback for internal errors.")
@click.pass_context
def cli(context: click.Context, debug: bool) -> None:
    """One typed spec for development, staging and production.

    \b
    envspec validate              check the spec (pre-commit)
    envspec render --all          write every artifact to build/
    envspec render --env prod --check   fail when generated files are stale (CI)
    """
    state = context.ensure_object(_Context)
    state.debug = debug


@contextmanager
def _boundary(output_format: str = "text", *, verdict: bool = False) -> Iterator[None]:
    """Map envspec's errors to messages and exit codes; never show a traceback for bad input.

    With ``--format json`` a failure is JSON on stdout too: ``{"error": message}``, with
    ``"problems"`` when the spec has problems, and ``"valid": false`` first where the command
    gives a verdict (validate)."""
    from envspec.atomic import changes
    from envspec.errors import EnvspecError, RenderError, SpecError

    changed = changes()
    try:
        yield
    except (SpecError, RenderError) as error:
        count = len(error.problems)
        summary = f"{count} problem{'s' if count != 1 else ''} found; nothing was written"
        if output_format == "json":
            _echo_failure(summary, verdict, error.problems)
        else:
            _print_problems(error.problems)
            click.echo(f"envspec: {summary}", err=True)
        sys.exit(ExitCode.FAILURE)
    except EnvspecError as error:
        if output_format == "json":
            _echo_failure(str(error), verdict)
        click.echo(f"envspec: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        done = "files were written before" if changes() != changed else "nothing was changed"
        if output_format == "json":
            _echo_failure(f"interrupted; {done}", verdict)
        click.echo(f"envspec: interrupted; {done}", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except Exception as error:
        state = click.get_current_context().find_object(_Context)
        if state is not None and state.debug:
            click.echo(_debug_traceback(error), err=True, nl=False)
        message = (
            f"internal error ({type(error).__name__}); rerun with --debug to see the traceback"
        )
        if output_format == "json":
            _echo_failure(message, verdict)
        click.echo(f"envspec: {message}", err=True)
        sys.exit(ExitCode.FAILURE)


def _debug_traceback(error: BaseException) -> str:
    """The traceback of an internal error: where each frame is, and each exception named by its
    type alone (its message, like a line of a template, may hold a value of the spec)."""
    import traceback

    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    parts = []
    for exception in reversed(chain):
        kind = type(exception)
        parts.append("Traceback (most recent call last):\n")
        parts.extend(
            f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n'
            for frame in traceback.extract_tb(exception.__traceback__)
        )
        parts.append(
            f"{kind.__module__}.{kind.__qualname__} (message not shown: it may hold a value)\n"
        )
    return "".join(parts)


def _echo_failure(message: str, verdict: bool, problems: tuple[Problem, ...] = ()) -> None:
    import json

    payload: dict[str, Any] = {"valid": False} if verdict else {}
    payload["error"] = message
    if problems:
        payload["problems"] = [problem.as_dict() for problem in problems]
    click.echo(json.dumps(payload, indent=2))


def _print_problems(problems: tuple[Problem, ...]) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)


def environments_option(what: str) -> Callable[[F], F]:
    """``--env/-e``, repeatable, completed from the spec's environments."""
    return click.option(
        "--env",
        "-e",
        "environments",
        multiple=True,
        shell_complete=_complete_environment,
        help=f"{what} (name or unique prefix); repeatable.",
    )


def environment_option(what: str) -> Callable[[F], F]:
    """``--env/-e``, one environment, required, completed from the spec's environments."""
    return click.option(
        "--env",
        "-e",
        "environment",
        required=True,
        shell_complete=_complete_environment,
        help=f"{what} (name or unique prefix).",
    )


def _spec(context: click.Context, spec: Path | None) -> Path | None:
    return spec if spec is not None else context.ensure_object(_Context).default("spec")


@cli.command()
@spec_option
@environments_option("Check only this environment")
@format_option("text", "json")
@click.pass_context
def validate(
    context: click.Context, spec: Path | None, environments: tuple[str, ...], output_format: str
) -> None:
    """Load, type-check, parity-check and render the spec in memory; exit 1 on any problem.

    \b
    Examples:
      envspec validate --spec deploy/
      envspec validate --env dev        # only development's values and files
    """
    with _boundary(output_format, verdict=True):
        from envspec import api

        project, warnings = api.validate(api.check(_spec(context, spec)), environments)
        _print_problems(tuple(warnings))
        if output_format == "json":
            import json

            click.echo(
                json.dumps({"valid": True, "problems": [w.as_dict() for w in warnings]}, indent=2)
            )
        else:
            count = len(project.environments)
            names = ", ".join(project.environments)
            plural = "" if count == 1 else "s"
            click.echo(f"envspec: spec is valid ({count} environment{plural}: {names})")


@cli.command()
@spec_option
@environments_option("Environment to render")
@click.option("--all", "all_", is_flag=True, help="Render every environment.")
@click.option(
    "--target",
    "-t",
    "targets",
    multiple=True,
    help="Only these targets (`envspec targets` lists them); repeatable.",
)
@out_option
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 when any generated file would change."
)
@click.option("--force", is_flag=True, help="Overwrite generated files that were edited by hand.")
@click.option(
    "--stdout",
    "to_stdout",
    is_flag=True,
    help="Print one environment's Kubernetes documents as one YAML stream; write no file.",
)
@click.pass_context
def render(
    context: click.Context,
    spec: Path | None,
    environments: tuple[str, ...],
    all_: bool,
    targets: tuple[str, ...],
    out: Path | None,
    check: bool,
    force: bool,
    to_stdout: bool,
) -> None:
    """Write the artifacts of one or more environments.

    \b
    Examples:
      envspec render --all
      envspec render --env prod --target kubernetes
      envspec render --all --check      # CI: fail when build/ is stale
      envspec render --env prod --target kubernetes --stdout | kubectl apply -f -
    """
    if all_ and environments:
        raise click.UsageError("give --env or --all, not both")
    if to_stdout:
        _stdout_usage(environments, targets, all_ or check or force)
        with _boundary():
            from envspec import api

            click.echo(
                api.kubernetes_documents(api.check(_spec(context, spec)), environments[0]),
                nl=False,
            )
        return
    with _boundary():
        from envspec import api

        options = api.RenderOptions(
            environments=environments,
            all=all_,
            targets=targets,
            out=_out(context, out),
            check=check,
            force=force,
        )
        _report_render(api.render(_spec(context, spec), options))


def _stdout_usage(environments: tuple[str, ...], targets: tuple[str, ...], other: bool) -> None:
    if len(environments) != 1 or targets != ("kubernetes",) or other:
        raise click.UsageError(
            "--stdout prints one environment's Kubernetes documents: "
            "give one --env and --target kubernetes, without --all, --check or --force"
        )


def _report_render(result: Any) -> None:

    plan = result.plan
    envs = ", ".join(result.environments)
    if result.check:
        for line in plan.conflicts:
            click.echo(f"conflict: {line}", err=True)
        for file in plan.write:
            click.echo(f"would write: {result.out / file.path}", err=True)
        for path in plan.remove:
            click.echo(f"would remove: {result.out / path}", err=True)
        if plan.changes or plan.conflicts:
            click.echo(
                f"envspec: {len(plan.write) + len(plan.remove)} generated files are stale; "
                "run envspec render",
                err=True,
            )
            sys.exit(ExitCode.FAILURE)
        click.echo(f"envspec: {len(plan.unchanged) + plan.verified} files up to date ({envs})")
        return
    removed = f", {len(plan.remove)} removed" if plan.remove else ""
    click.echo(
        f"envspec: {envs}: {len(plan.write)} written, "
        f"{len(plan.unchanged) + plan.verified} unchanged{removed} "
        f"in {result.out}"
    )


@cli.command("diff")
@click.argument("left", shell_complete=_complete_environment)
@click.argument("right", shell_complete=_complete_environment)
@spec_option
@format_option("text", "json", "markdown")
@click.pass_context
def diff_command(
    context: click.Context, left: str, right: str, spec: Path | None, output_format: str
) -> None:
    """Every difference between two environments: expected, declared (with its reason) or
    UNDECLARED. Exit 1 when anything is undeclared.

    \b
    Example:
      envspec diff dev prod --format markdown
    """
    with _boundary(output_format):
        from envspec import api, report

        project = api.load(_spec(context, spec))
        a, b, differences = api.diff(project, left, right)
        click.echo(report.render_diff(a, b, differences, output_format), nl=False)
        if any(d.status == "undeclared" for d in differences):
            sys.exit(ExitCode.FAILURE)


@cli.command("parity")
@spec_option
@format_option("text", "json", "markdown")
@click.option(
    "--min-score", type=click.FloatRange(0, 100), help="Exit 1 below this score (CI gate)."
)
@click.pass_context
def parity_command(
    context: click.Context, spec: Path | None, output_format: str, min_score: float | None
) -> None:
    """The parity matrix of every environment: a row per service, orchestration, variables,
    secrets and each of parity.components, a score per row, and the overall score (the mean).

    \b
    Example:
      envspec parity --min-score 95 --format markdown
    """
    with _boundary(output_format):
        from envspec import api, report

        matrix = api.parity_matrix(api.load(_spec(context, spec)))
        click.echo(report.render_matrix(matrix, output_format), nl=False)
        if min_score is not None and matrix.score < min_score:
            click.echo(f"envspec: parity score {matrix.score}% is below {min_score}%", err=True)
            sys.exit(ExitCode.FAILURE)


def _complete_task(
    context: click.Context, parameter: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return _names(context, "tasks", incomplete)


@cli.command()
@click.argument("name", shell_complete=_complete_task)
@spec_option
@environment_option("Environment to run the task in")
@click.option(
    "--target",
    "-t",
    "targets",
    multiple=True,
    help="Only this target's command (default: each of the environment's targets that runs "
    "tasks: compose, kubernetes); repeatable.",
)
@out_option
@click.pass_context
def task(
    context: click.Context,
    name: str,
    spec: Path | None,
    environment: str,
    targets: tuple[str, ...],
    out: Path | None,
) -> None:
    """Print the command that runs task NAME in an environment, one line per target.

    \b
    Examples:
      envspec task migrate --env dev
      eval "$(envspec task migrate --env prod --target kubernetes)"
    """
    with _boundary():
        from envspec import api

        folder = out if out is not None else context.ensure_object(_Context).default("out")
        for command in api.task_commands(
            api.check(_spec(context, spec)), name, environment, folder, targets
        ):
            click.echo(command)


@cli.command()
@spec_option
@environment_option("Environment whose deployment to check")
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="Live objects: the output of kubectl get ... -o json (a List); - reads standard input. "
    "Default: run kubectl get in the environment's namespace.",
)
@click.option("--context", "kube_context", help="kubectl context to read the live objects from.")
@format_option("text", "json")
@click.pass_context
def verify(
    context: click.Context,
    spec: Path | None,
    environment: str,
    source: str | None,
    kube_context: str | None,
    output_format: str,
) -> None:
    """Compare a deployment's live objects with what envspec renders for it: one line per
    drift. Exit 1 when anything drifted.

    \b
    Examples:
      envspec verify --env prod --context prod-cluster
      envspec verify --env prod --from live.json --format json
    """
    with _boundary(output_format):
        import json

        from envspec import api

        result = api.verify(api.check(_spec(context, spec)), environment, source, kube_context)
        if output_format == "json":
            click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        else:
            for drift in result.drift:
                click.echo(str(drift))
            count = len(result.drift)
            if count:
                plural = "s" if count != 1 else ""
                summary = f"{count} drift{plural} in {result.objects} objects"
            else:
                summary = f"no drift in {result.objects} objects"
            click.echo(f"envspec: {result.environment} ({result.namespace}): {summary}", err=True)
    if result.drift:
        sys.exit(ExitCode.FAILURE)


@cli.command()
@click.argument("name", shell_complete=_complete_variable)
@spec_option
@format_option("text", "json")
@click.pass_context
def explain(context: click.Context, name: str, spec: Path | None, output_format: str) -> None:
    """Where variable NAME comes from in each environment and which files it lands in.

    \b
    Example:
      envspec explain DATABASE_URL
    """
    with _boundary(output_format):
        from envspec import api, report

        explanation = api.explain(api.load(_spec(context, spec)), name)
        click.echo(report.render_explanation(explanation, output_format), nl=False)


@cli.group()
def var() -> None:
    """Add, change or remove a variable in the spec, in place (comments and layout kept).

    \b
    Example:
      envspec var add FEATURE_X --type bool --default false --set prod=true --render
    """


def _assignments(values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for item in values:
        environment, separator, value = item.partition("=")
        if not separator or not environment:
            raise click.BadParameter(f"expected ENV=VALUE, got '{item}'", param_hint="--set")
        pairs[environment] = value
    return pairs


def _after_edit(
    context: click.Context, spec: Path | None, changed: list[Path], render: bool, out: Path | None
) -> None:
    from envspec import api
    from envspec.location import display_path

    for path in changed:
        click.echo(f"edited {display_path(path)}")
    if render:
        options = api.RenderOptions(all=True, out=_out(context, out))
        _report_render(api.render(_spec(context, spec), options))


def _out(context: click.Context, out: Path | None) -> Path | None:
    return out if out is not None else context.ensure_object(_Context).default("out")


def _out_needs_render(render: bool, out: Path | None) -> None:
    if out is not None and not render:
        raise click.UsageError("--out is where --render writes: give --render too")


@var.command("add")
@click.argument("name")
@spec_option
@click.option(
    "--type", "type_", type=click.Choice(["str", "int", "float", "bool", "url", "enum", "list"])
)
@click.option("--default", help="Default value in every environment.")
@click.option(
    "--secret", is_flag=True, help="A secret: values outside local environments are references."
)
@click.option("--description", help="What the variable is for.")
@click.option(
    "--set",
    "values",
    multiple=True,
    metavar="ENV=VALUE",
    help="Value in one environment; repeatable.",
)
@click.option(
    "--service",
    "services",
    multiple=True,
    help="Service that receives it (when it lists its variables).",
)
@click.option("--render", "render_", is_flag=True, help="Render every environment afterwards.")
@out_option
@click.pass_context
def var_add(
    context: click.Context,
    name: str,
    spec: Path | None,
    type_: str | None,
    default: str | None,
    secret: bool,
    description: str | None,
    values: tuple[str, ...],
    services: tuple[str, ...],
    render_: bool,
    out: Path | None,
) -> None:
    """Add variable NAME to envspec.yaml and set it in overlays.

    \b
    Example:
      envspec var add STRIPE_WEBHOOK_SECRET --secret --service backend \\
        --set dev=whsec_dev --set prod=vault://shop/prod/stripe#webhook --render
    """
    _out_needs_render(render_, out)
    with _boundary():
        from envspec import api

        changed = api.add_variable(
            _spec(context, spec),
            name,
            type_=type_,
            default=default,
            secret=secret,
            description=description,
            values=_assignments(values),
            services=services,
        )
        _after_edit(context, spec, changed, render_, out)


_SERVICE_VALUE = click.option(
    "--service", help="A service's own value of the variable (services.<svc>.values)."
)


@var.command("set")
@click.argument("name", shell_complete=_complete_variable)
@click.argument("values", nargs=-1, required=True, metavar="ENV=VALUE...")
@spec_option
@_SERVICE_VALUE
@click.option("--render", "render_", is_flag=True, help="Render every environment afterwards.")
@out_option
@click.pass_context
def var_set(
    context: click.Context,
    name: str,
    values: tuple[str, ...],
    spec: Path | None,
    service: str | None,
    render_: bool,
    out: Path | None,
) -> None:
    """Set variable NAME in one or more environments' overlays (with --service, that
    service's own value there).

    \b
    Example:
      envspec var set LOG_LEVEL prod=WARNING staging=INFO
      envspec var set LOG_LEVEL --service worker prod=INFO
    """
    _out_needs_render(render_, out)
    with _boundary():
        from envspec import api

        changed = api.set_variable(_spec(context, spec), name, _assignments(values), service)
        _after_edit(context, spec, changed, render_, out)


@var.command("rm")
@click.argument("name", shell_complete=_complete_variable)
@spec_option
@_SERVICE_VALUE
@click.option("--render", "render_", is_flag=True, help="Render every environment afterwards.")
@out_option
@click.pass_context
def var_rm(
    context: click.Context,
    name: str,
    spec: Path | None,
    service: str | None,
    render_: bool,
    out: Path | None,
) -> None:
    """Remove variable NAME from the base, every overlay and every service's list (with
    --service, only that service's own values of it, in the base and every overlay).

    \b
    Example:
      envspec var rm LEGACY_FLAG --render
      envspec var rm LOG_LEVEL --service worker
    """
    _out_needs_render(render_, out)
    with _boundary():
        from envspec import api

        changed = api.remove_variable(_spec(context, spec), name, service)
        _after_edit(context, spec, changed, render_, out)


@cli.command()
@click.option(
    "--spec",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=".",
    help="Folder to create the spec in (default: here).",
)
@click.option("--project", help="Project name (default: the compose name or the folder's name).")
@click.option(
    "--from-compose",
    "compose",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Import services and variables from this compose file.",
)
@click.option(
    "--env-file",
    "env_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help=".env file of an environment: the first is development, .env.NAME becomes NAME; "
    "repeatable.",
)
def init(
    folder: Path, project: str | None, compose: Path | None, env_files: tuple[Path, ...]
) -> None:
    """Create a spec: a starter, or one imported from a compose file and its .env files.

    \b
    Examples:
      envspec init
      envspec init --from-compose docker-compose.yml --env-file .env --env-file .env.production
    """
    if env_files and compose is None:
        raise click.UsageError("--env-file needs --from-compose")
    with _boundary():
        from envspec import api
        from envspec.location import display_path

        written, problems, summary = api.init(folder, project, compose, env_files)
        for path in written:
            click.echo(f"wrote {display_path(path)}")
        if summary:
            click.echo("imported:")
            for line in summary:
                click.echo(f"  {line}")
        if problems:
            _print_problems(tuple(problems))
            click.echo(
                "envspec: the spec was written; fix the problems above before using it", err=True
            )
            sys.exit(ExitCode.FAILURE)
        click.echo("envspec: next: envspec render --all")


@cli.command("argocd-plugin")
def argocd_plugin() -> None:
    """Print an Argo CD config management plugin (plugin.yaml) that renders with envspec.

    \b
    Example:
      envspec argocd-plugin > plugin.yaml
      kubectl -n argocd create configmap envspec-plugin --from-file=plugin.yaml
    """
    from envspec.gitops import ARGOCD_PLUGIN

    click.echo(ARGOCD_PLUGIN, nl=False)


@cli.command()
def targets() -> None:
    """List the targets envspec can render: built in, or added by installed plug-ins.

    \b
    Example:
      envspec targets
    """
    with _boundary():
        from envspec import api
        from envspec.errors import EnvspecError

        rows = api.installed_targets()
        width = max(len(row.name) for row in rows)
        for row in rows:
            error = "" if row.error is None else f": {row.error}"
            click.echo(f"{row.name:<{width}}  {row.kind:<11}  {row.origin}{error}")
        broken = [f"'{row.name}'" for row in rows if row.error is not None]
        if broken:
            raise EnvspecError(f"cannot load target {', '.join(broken)} (its line says why)")


@cli.command()
def schema() -> None:
    """Print the spec's JSON Schema (for editors; also under schema/).

    \b
    Example:
      envspec schema > envspec.schema.json
    """
    with _boundary():
        from envspec import api

        click.echo(api.schema(), nl=False)


def main() -> None:
    cli(obj=_Context())
