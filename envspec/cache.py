"""envspec's cache folder: ``$XDG_CACHE_HOME/envspec`` (``~/.cache/envspec``).

It holds compiled templates and parsed copies of large spec files, each keyed by a digest of
what it was made from, so a stale entry is never used: it is simply never asked for again. A spec
file that may hold a secret's literal value is never stored (the loader decides which).
``ENVSPEC_NO_CACHE=1`` turns every cache off.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envspec import __version__

PARSED_MIN_BYTES = 256 * 1024
PARSED_KEEP = 16


def folder(name: str) -> Path | None:
    """``<cache>/<name>-<envspec version>``, created; None when caching is off or impossible."""
    if os.environ.get("ENVSPEC_NO_CACHE"):
        return None
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = root / "envspec" / f"{name}-{__version__}"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return path


def parsed(text: str, parse: Callable[[str], Any], code: bytes, keep: Callable[[Any], bool]) -> Any:
    """``parse(text)``, kept for texts of ``PARSED_MIN_BYTES`` or more when ``keep`` says the
    result may be stored: reading it back takes a quarter of the time of parsing a large spec
    file again. ``code`` (the parser's own source) is part of the key, as are the text and the
    Python version that wrote the entry."""
    if len(text) < PARSED_MIN_BYTES:
        return parse(text)
    where = folder("parsed")
    if where is None:
        return parse(text)
    digest = hashlib.sha256(code)
    digest.update(f"\0{sys.version}\0".encode())
    digest.update(text.encode("utf-8", "surrogatepass"))
    entry = where / digest.hexdigest()
    try:
        return marshal.loads(entry.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        pass
    value = parse(text)
    if keep(value):
        _store(entry, marshal.dumps(value))
    return value


def _store(entry: Path, data: bytes) -> None:
    """Write an entry atomically, readable by its owner only, and keep only the ``PARSED_KEEP``
    written last (reading an entry writes nothing); failures are ignored (a cache that cannot be
    written is only slower)."""
    temporary = entry.with_name(f".{entry.name}.{os.getpid()}")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        temporary.replace(entry)
        entries = sorted(
            (p for p in entry.parent.iterdir() if not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for stale in entries[PARSED_KEEP:]:
            stale.unlink(missing_ok=True)
    except OSError:
        temporary.unlink(missing_ok=True)
