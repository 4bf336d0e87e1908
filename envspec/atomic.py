"""Crash-safe writes: a file replaced whole or not at all, and signals held off meanwhile.

:func:`write_atomic` (:func:`write_atomic_in` for a folder held open) is the one way envspec
replaces a single file (``init``, ``var``, the cache, the writer's journal); the writer's
transaction (:mod:`envspec.writer`) builds on the same pieces
for many files at once.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from envspec.errors import EnvspecError, ExitCode

HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_changes: list[int] = [0]


class InterruptedAfterWriteError(EnvspecError):
    """Ctrl-C arrived while files were being replaced: they were replaced first."""

    exit_code = ExitCode.INTERRUPTED


def changes() -> int:
    """How many times this process has begun changing a user's files: an interrupt that comes
    when this has moved since a command began may no longer say that nothing was changed."""
    return _changes[0]


def note_change() -> None:
    """Record that a user's files are about to change (see :func:`changes`)."""
    _changes[0] += 1


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def create_new(folder: int, name: str, data: bytes, mode: int, *, durable: bool) -> None:
    """Create ``name`` in the folder open as ``folder``, holding ``data``. ``O_EXCL |
    O_NOFOLLOW``: never opens a file or a link that was there before (``FileExistsError``).
    ``durable``: flushed to disk before this returns."""
    descriptor = os.open(name, _CREATE, mode, dir_fd=folder)
    try:
        with open(descriptor, "wb", closefd=False) as handle:
            handle.write(data)
        if durable:
            os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=folder)
        raise
    os.close(descriptor)


def create_exclusive(folder: int, prefix: str, data: bytes, mode: int, *, durable: bool) -> str:
    """:func:`create_new` under a name no one can have planted (``prefix`` and a random part);
    the name."""
    while True:
        name = f"{prefix}.{secrets.token_hex(6)}.tmp"
        try:
            create_new(folder, name, data, mode, durable=durable)
        except FileExistsError:
            continue
        return name


def write_atomic(path: Path, data: bytes, mode: int | None = None, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data``: a reader, or the machine after a crash, finds the old
    file or the new one, never a mix (see :func:`write_atomic_in`)."""
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        write_atomic_in(folder, path.name, data, mode, durable=durable)
    finally:
        os.close(folder)


def write_atomic_in(
    folder: int,
    name: str,
    data: bytes,
    mode: int | None = None,
    *,
    durable: bool = True,
    before: Callable[[str], None] = lambda _: None,
) -> None:
    """Replace ``name`` in the folder open as ``folder`` with ``data``. The data goes to a
    temporary file created exclusively next to it, flushed to disk, and renamed over ``name``;
    then the folder is flushed so the rename lasts too. ``durable=False`` skips both flushes (a
    cache, which checks what it reads back). ``mode``: the new file's permissions, by default
    those of the file it replaces (new files: 0o666 less the umask). ``before`` is told of each
    step that changes the disk before it is taken (the writer's fault injector counts them)."""
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(name, dir_fd=folder).st_mode)
        except FileNotFoundError:
            mode = 0o666
    before(f"write {name}")
    temporary = create_exclusive(folder, f".{name}", data, mode, durable=durable)
    try:
        before(f"rename {name}")
        os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder)
        raise
    if durable:
        before(f"fsync the folder of {name}")
        os.fsync(folder)


def sync_filesystem(descriptor: int) -> None:
    """Flush everything written to the filesystem that holds ``descriptor``: one call makes
    every staged file durable (``syncfs`` where the system has it, else ``sync``)."""
    syncfs = _syncfs()
    if syncfs is None or syncfs(descriptor) != 0:
        os.sync()


def _syncfs() -> Callable[[int], int] | None:
    try:
        import ctypes

        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return None
    return function


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Run the block to its end whatever SIGINT, SIGTERM or SIGHUP arrive meanwhile, then act on
    the first one: Ctrl-C raises :class:`InterruptedAfterWriteError` (the message says the
    change was completed), a signal whose handler is the default ends the process as it would
    have. Outside the main thread there is nothing to hold (Python runs handlers there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[signal.Signals] = []

    def hold(number: int, _: FrameType | None) -> None:
        received.append(signal.Signals(number))

    previous = {number: signal.signal(number, hold) for number in HELD_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if received:
        _deliver(received[0], previous[received[0]])


def _deliver(number: signal.Signals, handler: object) -> None:
    if handler is signal.default_int_handler:
        raise InterruptedAfterWriteError(
            "interrupted; the files being written were written completely first"
        )
    if handler == signal.SIG_DFL:
        signal.raise_signal(number)
    elif callable(handler):
        handler(number, None)
