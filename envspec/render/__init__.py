"""One module per target, each meeting the protocol in :mod:`envspec.render.base`; the list of
targets is the registry, :mod:`envspec.targets`. This package's own module stays light: the
unchanged-render check asks it where the built-in templates are."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def builtin_template_dir() -> Path:
    """The built-in templates: package data in a wheel, the repository's folder in a checkout."""
    packaged = resources.files("envspec").joinpath("templates")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "templates"
