"""Render only when something changed: the first step of ``envspec render`` (and ``--check``).

The lock records a fingerprint of every input of the last render (the spec folder, the built-in
templates, envspec's own code, the options). When it matches and every file the lock lists is
exactly as written, nothing can have changed, and the answer needs neither the spec's models nor
its templates: this module imports neither, and :func:`envspec.api.render` goes on to the full
pipeline only when needed. A render that wrote a plug-in target's files is always done again (a
plug-in's code is not in the fingerprint), with the same result when nothing changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from envspec import __version__
from envspec.errors import EnvspecError, OutputError
from envspec.layout import BASE_FILE, OVERLAY_DIR, TEMPLATE_DIR, find_spec_root
from envspec.render import builtin_template_dir
from envspec.targets import BUILTIN
from envspec.writer import Plan, unchanged_since


class RenderOptions(NamedTuple):
    environments: Sequence[str] = ()
    all: bool = False
    targets: Sequence[str] = ()
    out: Path | None = None
    check: bool = False
    force: bool = False


class RenderResult(NamedTuple):
    out: Path
    environments: list[str]
    plan: Plan
    check: bool


def spec_root(spec: Path | None) -> Path:
    """The spec folder: ``spec`` itself, or the closest folder up from here with envspec.yaml."""
    if spec is not None:
        if spec.is_file():
            return spec.parent
        if not (spec / "envspec.yaml").is_file():
            raise EnvspecError(f"{spec}: no envspec.yaml in this folder")
        return spec
    found = find_spec_root(Path.cwd())
    if found is None:
        raise EnvspecError("no envspec.yaml here or in any parent folder (use --spec DIR)")
    return found


def output_folder(root: Path, out: Path | None) -> Path:
    """Where a render of ``root`` writes (``out``, by default ``<root>/build``); refused when it
    overlaps the spec's own inputs: is, is in or holds envspec.yaml, environments/ or
    templates/."""
    folder = out if out is not None else root / "build"
    resolved = folder.resolve()
    for name in (BASE_FILE, OVERLAY_DIR, TEMPLATE_DIR):
        spec_input = (root / name).resolve()
        if (
            resolved == spec_input
            or spec_input in resolved.parents
            or resolved in spec_input.parents
        ):
            raise OutputError(
                f"--out {folder} overlaps the spec's own {name}: choose a folder outside "
                "envspec.yaml, environments/ and templates/; nothing was written"
            )
    return folder


def unchanged(root: Path, options: RenderOptions) -> tuple[RenderResult | None, tuple[str, str]]:
    """The result of a render with nothing to do (None when there is work), and the render's
    key and inputs' fingerprint for the lock to record."""
    out = output_folder(root, options.out)
    key = _render_key(options)
    fingerprint = input_fingerprint(root, key)
    if not options.force:
        entries = unchanged_since(out, key, fingerprint)
        # the fingerprint covers envspec's own code and templates, not a plug-in's
        if entries is not None and all(e["target"] in BUILTIN for e in entries):
            names = list(dict.fromkeys(e["environment"] for e in entries if e["environment"]))
            result = RenderResult(out, names, Plan(out, verified=len(entries)), options.check)
            return result, (key, fingerprint)
    return None, (key, fingerprint)


def _render_key(options: RenderOptions) -> str:
    scope = "all" if options.all else ",".join(sorted(options.environments))
    return scope + (":" + ",".join(sorted(options.targets)) if options.targets else "")


def input_fingerprint(root: Path, key: str) -> str:
    """SHA-256 of everything a render depends on: the spec folder's files, the built-in
    templates, envspec's own code and the render's options."""
    digest = hashlib.sha256(f"envspec {__version__}\0{key}\0".encode())
    package = Path(__file__).parent
    folders = [
        (root, ("envspec.yaml", "environments/*.yaml", "environments/*.yml", "templates/**/*")),
        (builtin_template_dir(), ("**/*.j2",)),
        (package, ("**/*.py",)),
    ]
    for folder, patterns in folders:
        for path in sorted(
            {p for pattern in patterns for p in folder.glob(pattern) if p.is_file()}
        ):
            digest.update(f"{path.relative_to(folder)}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()
