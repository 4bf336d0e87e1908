"""The ``envspec`` console script: answers ``--version`` without importing click, else runs
the CLI (:mod:`envspec.cli`)."""

from __future__ import annotations

import sys

from envspec import __version__


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"envspec, version {__version__}\n")
        return
    from envspec.cli import main as cli

    cli()
