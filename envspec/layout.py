"""The spec folder's layout: the names envspec looks for, and where a spec is found. Light on
purpose (no YAML): the unchanged-render check reads it without loading a parser."""

from __future__ import annotations

from pathlib import Path

BASE_FILE = "envspec.yaml"
OVERLAY_DIR = "environments"
TEMPLATE_DIR = "templates"
OVERLAY_SUFFIXES = frozenset({".yaml", ".yml"})


def find_spec_root(start: Path) -> Path | None:
    """The closest folder holding ``envspec.yaml``, from ``start`` up to the filesystem root."""
    for folder in (start, *start.parents):
        if (folder / BASE_FILE).is_file():
            return folder
    return None
