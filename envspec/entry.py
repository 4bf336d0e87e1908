"""The ``envspec`` console script: answers ``--version`` and the top-level ``--help`` without
importing click, else runs the CLI (:mod:`envspec.cli`).

A command is a short-lived process whose data (the spec, its models, the rendered files) holds no
reference cycles worth collecting, so the cyclic garbage collector is turned off: on a spec of
1,000 services it spent a fifth of the run walking objects that stay alive anyway, and peak
memory is the same without it. For the same reason every spec the command loads is kept alive
(:data:`envspec.project.KEEP_ALIVE`) until ``os._exit`` ends the process without freeing it.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import NoReturn

from envspec import __version__

HELP_COLUMNS = 80
"""From this width on, click renders the help exactly as :mod:`envspec._help` holds it."""


def _columns() -> int:
    import shutil

    return shutil.get_terminal_size().columns


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"envspec, version {__version__}\n")
        return
    if sys.argv[1:] in (["--help"], ["-h"]) and _columns() >= HELP_COLUMNS:
        from envspec._help import TOP_LEVEL

        sys.stdout.write(TOP_LEVEL)
        return
    gc.disable()
    from envspec import project
    from envspec.cli import main as cli

    project.KEEP_ALIVE = []

    try:
        cli()
    except SystemExit as done:
        _exit(done.code)
    _exit(0)


def _exit(code: object) -> NoReturn:
    """End the process as soon as the command's output is flushed: tearing down the interpreter
    (a last garbage collection over everything a command loaded) took ~80 ms, longer than some
    commands. Nothing envspec does is left for exit handlers: files are written and closed, and
    worker processes are joined, before the command returns."""
    if code is not None and not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        code = code or 1
    os._exit(code or 0)
