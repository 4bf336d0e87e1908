"""The house's shape: envspec's modules import one another one way, load -> validate -> resolve
-> render -> write, the pipeline (api) on top of its steps and the CLI on top of api, and no two
modules import each other, even through a function-level import.

Every import counts, at the top of a module or inside a function; an import under
``if TYPE_CHECKING:`` runs no code and is not an arrow.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from envspec import api, project
from tests.helpers import REPO, minimal, run, write_spec

PACKAGE = REPO / "envspec"

RENDERERS = {f"envspec.render.{path.stem}" for path in (PACKAGE / "render").glob("*.py")} - {
    "envspec.render.__init__",
    "envspec.render.filters",
}

LAYERS: list[tuple[str, set[str]]] = [
    (
        "foundations",
        {
            "envspec",
            "envspec._help",
            "envspec.atomic",
            "envspec.cache",
            "envspec.derive",
            "envspec.errors",
            "envspec.gitops",
            "envspec.layout",
            "envspec.location",
            "envspec.pieces",
            "envspec.render",
            "envspec.render.filters",
            "envspec.secrets",
            "envspec.targets",
            "envspec.workers",
        },
    ),
    ("load", {"envspec.loader"}),
    ("validate", {"envspec.models", "envspec.validate", "envspec.schema"}),
    ("resolve", {"envspec.resolve", "envspec.parity", "envspec.project"}),
    ("render", RENDERERS | {"envspec.report"}),
    ("write", {"envspec.writer", "envspec.incremental"}),
    ("steps", {"envspec.rendering", "envspec.edit", "envspec.importer", "envspec.verify"}),
    ("pipeline", {"envspec.api"}),
    ("command line", {"envspec.cli", "envspec.entry", "envspec.__main__"}),
]
"""Each module's layer: a module imports modules of its own layer or of those before it."""

CLI_MAY_IMPORT = {"envspec", "envspec.api", "envspec.report", "envspec.errors", "envspec.location"}
CLI_MAY_IMPORT |= {"envspec.atomic", "envspec.gitops", "envspec._help", "envspec.cli"}
"""The command line calls the pipeline, and prints what it returns."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> Iterator[str]:
    """The envspec modules ``path`` imports, wherever the import stands, but typing-only ones."""

    def walk(node: ast.AST) -> Iterator[str]:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.orelse:
                yield from walk(statement)
            return
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield full if full in MODULES else node.module
        for child in ast.iter_child_nodes(node):
            yield from walk(child)

    yield from (name for name in walk(ast.parse(path.read_text())) if name in MODULES)


GRAPH = {name: set(_imports(path)) - {name} for name, path in MODULES.items()}
LAYER = {module: index for index, (_, modules) in enumerate(LAYERS) for module in modules}


def test_every_module_has_a_layer() -> None:
    assert sorted(set(MODULES) - set(LAYER)) == [], "place new modules in LAYERS"
    assert sorted(set(LAYER) - set(MODULES)) == [], "LAYERS names a module that is gone"


def _arrows_back(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{module} ({LAYERS[LAYER[module]][0]}) imports {imported} ({LAYERS[LAYER[imported]][0]})"
        for module, imports in sorted(graph.items())
        for imported in sorted(imports)
        if LAYER[imported] > LAYER[module]
    ]


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle through each module that is on one, as ``a -> b -> a``."""

    def cycle_from(start: str) -> list[str] | None:
        path = [start]
        seen: set[str] = set()

        def visit(module: str) -> list[str] | None:
            for imported in sorted(graph[module]):
                if imported == start:
                    return [*path, start]
                if imported not in seen:
                    seen.add(imported)
                    path.append(imported)
                    found = visit(imported)
                    if found:
                        return found
                    path.pop()
            return None

        return visit(start)

    return [" -> ".join(found) for module in sorted(graph) if (found := cycle_from(module))]


def test_no_arrow_points_back() -> None:
    assert _arrows_back(GRAPH) == []


def test_no_import_cycle() -> None:
    assert _cycles(GRAPH) == []


def test_the_checks_see_an_arrow_back_and_a_cycle() -> None:
    planted = {module: set(imports) for module, imports in GRAPH.items()}
    planted["envspec.render.dotenv"].add("envspec.writer")
    planted["envspec.incremental"].add("envspec.api")
    assert _arrows_back(planted) == [
        "envspec.incremental (write) imports envspec.api (pipeline)",
        "envspec.render.dotenv (render) imports envspec.writer (write)",
    ]
    assert "envspec.api -> envspec.incremental -> envspec.api" in _cycles(planted)


def test_later_stages_do_not_reach_into_the_loader() -> None:
    """A stage never reads an earlier one's raw input: resolve and the renderers get models."""
    reaching = [
        module
        for module, imports in sorted(GRAPH.items())
        if "envspec.loader" in imports and LAYERS[LAYER[module]][0] in ("resolve", "render")
    ]
    assert reaching == []


def test_the_command_line_calls_only_the_pipeline() -> None:
    assert sorted(GRAPH["envspec.cli"] - CLI_MAY_IMPORT) == []


def test_each_module_imports_first_and_alone() -> None:
    """Imported first in a fresh interpreter, each module loads (a cycle through a module that
    is still initialising breaks here)."""
    script = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m.partition('.')[0] == 'envspec']:\n"
        "        del sys.modules[loaded]\n"
        "    if name != 'envspec.__main__':\n"
        "        importlib.import_module(name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *sorted(MODULES)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_an_unchanged_render_loads_neither_models_nor_templates(tmp_path: Path) -> None:
    """The first step of ``api.render`` answers from the lock: no pydantic, no Jinja2, no YAML."""
    root = write_spec(tmp_path / "spec", minimal())
    assert run("render", "--all", "--spec", str(root)).exit_code == 0
    script = (
        "import sys\n"
        "from envspec.cli import _Context, cli\n"
        "cli.main(sys.argv[1:], obj=_Context(), standalone_mode=False)\n"
        "print(sorted({'pydantic', 'jinja2', 'yaml', 'envspec.models'} & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "render", "--all", "--spec", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_a_valid_spec_loads_no_error_helpers() -> None:
    """What serves only a mistake (difflib for a did-you-mean) or shell completion is imported
    when it is needed, not by every command."""
    script = (
        "import sys\n"
        "from envspec.cli import _Context, cli\n"
        "cli.main(sys.argv[1:], obj=_Context(), standalone_mode=False)\n"
        "print(sorted({'difflib', 'click.shell_completion'} & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "validate", "--spec", str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_only_the_console_script_keeps_specs_alive() -> None:
    """Keeping every spec for ``os._exit`` is the console script's choice, not the pipeline's."""
    api.load(REPO)
    assert project.KEEP_ALIVE is None
    result = subprocess.run(
        [sys.executable, "-c", ENTRY_THEN_REPORT, "validate", "--spec", str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stderr.splitlines()[-1] == "kept: Checked, Project"


ENTRY_THEN_REPORT = """\
import os, sys
from envspec import entry, project
end = os._exit
def report(code):
    kept = ", ".join(type(spec).__name__ for spec in project.KEEP_ALIVE or [])
    sys.stderr.write(f"kept: {kept}\\n")
    sys.stderr.flush()
    end(code)
os._exit = report
sys.argv[0] = "envspec"
entry.main()
"""
