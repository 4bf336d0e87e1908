"""envspec's cache folder: ``$XDG_CACHE_HOME/envspec`` (``~/.cache/envspec``).

It holds compiled templates and parsed copies of large spec files, each keyed by a digest of
what it was made from, so a stale entry is never used: it is simply never asked for again. A spec
file that may hold a secret's literal value is never stored: validation names the files the
loader may keep (``validate.keep_accepted_parses``).
``ENVSPEC_NO_CACHE=1`` turns every cache off.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import stat
import sys
from pathlib import Path
from typing import Any

from envspec import __version__
from envspec.atomic import write_atomic

PARSED_MIN_BYTES = 256 * 1024
PARSED_KEEP = 16


def folder(name: str) -> Path | None:
    """``<cache>/<name>-<envspec version>``, created; None when caching is off or impossible.

    envspec's folders in the cache are readable by their owner only (0700), whatever the umask
    and however they were created before."""
    if os.environ.get("ENVSPEC_NO_CACHE"):
        return None
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for path in (root / "envspec", root / "envspec" / f"{name}-{__version__}"):
            path.mkdir(mode=0o700, exist_ok=True)
            if stat.S_IMODE(path.lstat().st_mode) != 0o700:
                path.chmod(0o700)
    except OSError:
        return None
    return path


def parsed_entry(text: str, code: bytes) -> Path | None:
    """Where the parse of ``text`` by the parser whose source is ``code`` is kept: only texts of
    ``PARSED_MIN_BYTES`` or more (reading one back takes a quarter of the time of parsing a large
    spec file again). The text, the parser's code and the Python version are the key."""
    if len(text) < PARSED_MIN_BYTES:
        return None
    where = folder("parsed")
    if where is None:
        return None
    digest = hashlib.sha256(code)
    digest.update(f"\0{sys.version}\0".encode())
    digest.update(text.encode("utf-8", "surrogatepass"))
    return where / digest.hexdigest()


def read_parsed(entry: Path) -> tuple[bool, Any]:
    """``(True, value)`` for an entry stored by :func:`store_parsed`; ``(False, None)`` when it
    is missing or damaged."""
    try:
        return True, marshal.loads(entry.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return False, None


def store_parsed(entry: Path, value: Any) -> None:
    """Keep ``value`` (plain data) as ``entry``; the caller decides whether it may be stored."""
    _store(entry, marshal.dumps(value))


def _store(entry: Path, data: bytes) -> None:
    """Write an entry atomically, readable by its owner only, and keep only the ``PARSED_KEEP``
    written last (reading an entry writes nothing); failures are ignored (a cache that cannot be
    written is only slower). Not flushed to disk: a damaged entry is never trusted."""
    try:
        write_atomic(entry, data, 0o600, durable=False)
        entries = sorted(
            (p for p in entry.parent.iterdir() if not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for stale in entries[PARSED_KEEP:]:
            stale.unlink(missing_ok=True)
    except OSError:
        pass
