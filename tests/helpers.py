"""Build spec folders from dicts and run the CLI in-process."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from click.testing import CliRunner, Result

from envspec.cli import _Context, cli
from envspec.writer import TRANSACTION_DIR

REPO = Path(__file__).resolve().parents[1]
BIN = str(Path(sys.executable).parent)
"""The folder of this environment's console scripts (envspec, check-jsonschema)."""


def dump(data: Any) -> str:
    """YAML for a test spec, escaped to ASCII (else PyYAML emits some line breaks raw)."""
    return yaml.safe_dump(data, allow_unicode=False, sort_keys=False, width=1_000_000)


def write_spec(
    root: Path,
    base: Mapping[str, Any] | str,
    overlays: Mapping[str, Mapping[str, Any] | str] | None = None,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "envspec.yaml").write_text(
        base if isinstance(base, str) else dump(base), encoding="utf-8"
    )
    for name, overlay in (overlays or {}).items():
        (root / "environments").mkdir(exist_ok=True)
        text = overlay if isinstance(overlay, str) else dump(overlay)
        (root / "environments" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return root


def copy_example(folder: Path) -> Path:
    """``folder``, made, holding a copy of the bundled example's spec files (envspec.yaml and
    environments/)."""
    folder.mkdir(parents=True)
    shutil.copy(REPO / "envspec.yaml", folder)
    shutil.copytree(REPO / "environments", folder / "environments")
    return folder


def minimal(**extra: Any) -> dict[str, Any]:
    """A small valid base: one local and one Kubernetes environment, one service."""
    spec: dict[str, Any] = {
        "version": 1,
        "project": "demo",
        "environments": {
            "development": {"targets": ["dotenv", "compose"], "local": True},
            "production": {"targets": ["kubernetes"]},
        },
        "services": {"web": {"image": "example/web", "version": "1.0.0", "ports": [8000]}},
        "variables": {"GREETING": {"default": "hello"}},
    }
    spec.update(extra)
    return spec


def output_files(out: Path) -> dict[str, bytes]:
    """Every file of an output folder and its bytes (envspec keeps no other file there: the
    writers' mutex is a lock on the folder itself)."""
    return {
        str(path.relative_to(out)): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


def staged_leftovers(out: Path) -> list[Path]:
    """What a transaction left in an output folder: its folder, or any temporary file."""
    return [p for p in out.rglob("*") if p.name == TRANSACTION_DIR or p.name.endswith(".tmp")]


def run(*args: str) -> Result:
    """Run ``envspec`` in-process; exceptions propagate so a traceback fails the test."""
    return CliRunner().invoke(cli, list(args), obj=_Context(), catch_exceptions=False)


def load_module(path: Path, name: str) -> ModuleType:
    """Import the Python file ``path`` (a generated ``settings.py``) as module ``name``."""
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module
