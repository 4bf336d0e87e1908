"""Write rendered files as one crash-safe transaction, guarded by a lock of what envspec wrote.

``<out>/.envspec-lock.json`` records the SHA-256 of every file envspec wrote and which environment
and target produced it. A file whose content no longer matches its recorded hash was edited by hand
and is not overwritten or removed without ``force``; a file envspec never wrote is not touched.

Writing holds the output folder's mutex (``flock`` on the folder itself: no lock file of its own)
from the first rendered file on, reads the lock under it, and stages every file to write in
``<out>/.envspec-transaction/`` while the render goes on: ``files/`` for files of folders that
exist, ``tree/`` for new folders, built whole. The commit flushes the staged files with one
``syncfs``, writes a journal of its steps and flushes it, then renames (replaced files kept as
hard links in ``old/`` until the end), flushes the folders it changed and removes the
transaction folder. SIGINT, SIGTERM and SIGHUP wait until the commit is done. After a crash or
SIGKILL, the next envspec command that writes or reads the folder finds the transaction folder
and finishes it: without a journal it is discarded (the old state), with one the steps are
carried out (the new state), or undone when the commit had begun putting the old state back.

Nothing in the output folder is reached through a symbolic link: folders are opened one by one
with ``O_NOFOLLOW`` relative to their parent, files are read with ``O_NOFOLLOW`` and created with
``O_EXCL``; a link where envspec reads or writes is refused.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, TypedDict

from envspec.atomic import (
    create_new,
    deferred_signals,
    note_change,
    sync_filesystem,
    write_atomic_in,
)
from envspec.errors import OutputError, Problem

LOCK_FILE = ".envspec-lock.json"
TRANSACTION_DIR = ".envspec-transaction"
LOCK_VERSION = 1
MAX_LOCK_BYTES = 64 * 1024 * 1024
MUTEX_WAIT_SECONDS = 60.0
FAULT_VARIABLE = "ENVSPEC_TEST_KILL_AT"
"""``<n>:<SIGNAL or errno name>[,...]``: at its n-th step that changes the disk the writer sends
itself that signal (SIGKILL when none is named) or fails with that error (``EIO``), and names each
step on stderr: the fault injector of the tests, off unless set."""

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_HEX = frozenset("0123456789abcdef")


class LockEntry(TypedDict):
    sha256: str
    environment: str | None
    target: str


class OutputFile(NamedTuple):
    """A rendered file with the environment and target that own it."""

    path: str
    content: str
    environment: str | None
    target: str

    @property
    def data(self) -> bytes:
        return self.content.encode("utf-8")


class Scope(NamedTuple):
    """The (environment, target) pairs a command renders: only their files may be removed."""

    environments: frozenset[str | None]
    targets: frozenset[str] | None

    def covers(self, entry: LockEntry) -> bool:
        if entry["environment"] not in self.environments:
            return False
        return self.targets is None or entry["target"] in self.targets


class Plan:
    """What a render writes, leaves unchanged, removes and refuses in an output folder."""

    __slots__ = (
        "conflicts",
        "lock",
        "lock_update",
        "out",
        "remove",
        "unchanged",
        "verified",
        "write",
    )

    def __init__(self, out: Path, *, verified: int = 0) -> None:
        self.out = out
        self.write: list[OutputFile] = []
        self.unchanged: list[OutputFile] = []
        self.remove: list[str] = []
        self.conflicts: list[str] = []
        self.lock: dict[str, LockEntry] = {}
        self.lock_update: OutputFile | None = None
        self.verified = verified

    @property
    def changes(self) -> bool:
        return bool(self.write or self.remove)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checked_path(relative: str) -> str:
    """``relative`` when it is a plain relative path inside the output folder: no empty, ``.``
    or ``..`` part, no leading ``/``, and not envspec's own transaction folder."""
    parts = relative.split("/")
    if any(part in {"", ".", ".."} for part in parts) or parts[0] == TRANSACTION_DIR:
        raise OutputError(f"refusing to write '{relative}': it would leave the output folder")
    return relative


def plan(
    out: Path,
    files: list[OutputFile],
    scope: Scope,
    force: bool,
    inputs: dict[str, str] | None = None,
) -> Plan:
    """Compare rendered files with the output folder and its lock; decide what to do, change
    nothing (an interrupted write is finished first).

    ``inputs`` (a render's key and the fingerprint of its inputs) is recorded in the lock so an
    identical render later can be recognised without loading the spec."""
    with _opened(out, exclusive=False, create=False) as folder:
        planner = _Planner(folder, out, scope, force, inputs)
        for file in files:
            planner.add(file)
        return planner.finish()


def write(
    out: Path,
    batches: Iterable[Iterable[OutputFile]],
    scope: Scope,
    force: bool,
    inputs: dict[str, str] | None = None,
) -> Plan:
    """Plan and write, in one pass over files that are still being rendered.

    The mutex is taken when the first file arrives; each file to write is staged as soon as it
    arrives, so writing overlaps rendering; nothing replaces anything until every batch has
    arrived without error and no file is in conflict. Any exception (a render error in a later
    batch included) discards what was staged and leaves the output folder as it was."""
    with contextlib.ExitStack() as stack:
        writing: tuple[_Planner, _Transaction] | None = None

        def begin() -> tuple[_Planner, _Transaction]:
            folder = stack.enter_context(_opened(out, exclusive=True, create=True))
            assert folder is not None
            planner = _Planner(folder, out, scope, force, inputs)
            return planner, stack.enter_context(_Transaction(folder))

        for batch in batches:
            for file in batch:
                if writing is None:
                    writing = begin()
                planner, transaction = writing
                staged = planner.add(file)
                if staged is not None and not planner.result.conflicts:
                    transaction.stage(*staged)
        planner, transaction = writing if writing is not None else begin()
        result = planner.finish()
        if result.conflicts:
            raise OutputError(_conflicts(result))
        if result.lock_update is not None:
            transaction.stage(LOCK_FILE, result.lock_update.data, planner.lock_mode)
            transaction.commit(result.remove)
    return result


def unchanged_since(out: Path, key: str, fingerprint: str) -> list[LockEntry] | None:
    """The lock's entries when the last render of ``key`` had these inputs and every file it
    wrote is still exactly as written; None otherwise (render normally)."""
    try:
        with _opened(out, exclusive=False, create=False) as folder:
            if folder is None:
                return None
            files, inputs, _ = _read_lock(folder)
            if inputs.get(key) != fingerprint:
                return None
            for path, entry in files.items():
                current = folder.read(path)
                if current is None or sha256(current[0]) != entry["sha256"]:
                    return None
            return list(files.values())
    except OutputError:
        return None


class _Planner:
    """Decides, file by file, what a render does to the output folder (see :func:`plan`)."""

    def __init__(
        self,
        folder: _Out | None,
        out: Path,
        scope: Scope,
        force: bool,
        inputs: dict[str, str] | None,
    ) -> None:
        self.folder = folder
        self.lock, self.recorded, self.lock_mode = (
            _read_lock(folder) if folder is not None else ({}, {}, None)
        )
        self.scope = scope
        self.force = force
        self.inputs = inputs if inputs is not None else {}
        self.result = Plan(out)
        self.new_lock: dict[str, LockEntry] = {}

    def _current(self, path: str) -> tuple[bytes, int] | None:
        return self.folder.read(path) if self.folder is not None else None

    def add(self, file: OutputFile) -> tuple[str, bytes, int | None] | None:
        """Plan one rendered file; where it goes, its bytes and the mode of the file it replaces
        (None: a new file) when it is to be written."""
        result = self.result
        path = checked_path(file.path)
        data = file.data
        self.new_lock[path] = {
            "sha256": sha256(data),
            "environment": file.environment,
            "target": file.target,
        }
        current = self._current(path)
        if current is not None and current[0] == data:
            result.unchanged.append(file)
            return None
        if current is not None and not self.force:
            shown = result.out / path
            known = self.lock.get(path)
            if known is None:
                result.conflicts.append(f"{shown}: exists and was not written by envspec")
                return None
            if known["sha256"] != sha256(current[0]):
                result.conflicts.append(f"{shown}: edited by hand since envspec wrote it")
                return None
        result.write.append(file)
        return path, data, current[1] if current is not None else None

    def finish(self) -> Plan:
        """Removals of files no longer rendered, and the new lock."""
        result, lock, scope = self.result, self.lock, self.scope
        rendered = self.new_lock
        new_lock = {
            path: entry
            for path, entry in lock.items()
            if path not in rendered and not scope.covers(entry)
        }
        new_lock.update(rendered)
        for path, entry in sorted(lock.items()):
            if path in rendered or not scope.covers(entry):
                continue
            current = self._current(path)
            if current is None:
                continue
            if sha256(current[0]) != entry["sha256"] and not self.force:
                result.conflicts.append(
                    f"{result.out / path}: no longer generated, but edited by hand; not removed"
                )
                new_lock[path] = entry
                continue
            result.remove.append(path)
        result.lock = dict(sorted(new_lock.items()))
        if result.changes or result.lock != lock or self.inputs != self.recorded:
            result.lock_update = _lock_file(result.lock, self.inputs)
        return result


def _lock_file(lock: dict[str, LockEntry], inputs: dict[str, str]) -> OutputFile:
    payload = {"version": LOCK_VERSION, "files": lock, "inputs": inputs}
    content = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    return OutputFile(LOCK_FILE, content, None, "lock")


def _conflicts(result: Plan) -> str:
    return "refusing to write; nothing was changed (use --force to overwrite):\n  " + (
        "\n  ".join(sorted(result.conflicts))
    )


def _read_lock(folder: _Out) -> tuple[dict[str, LockEntry], dict[str, str], int | None]:
    """The lock's files, its recorded inputs and its mode (None: no lock yet); a damaged or
    hostile lock is a positioned error."""
    found = folder.read(LOCK_FILE, limit=MAX_LOCK_BYTES)
    if found is None:
        return {}, {}, None
    raw, mode = found
    shown = str(folder.path / LOCK_FILE)
    files, inputs = _LockReader(shown, raw).read()
    return files, inputs, mode


class _LockReader:
    """Checks a lock file's every part; a problem is reported at the key it concerns."""

    def __init__(self, shown: str, raw: bytes) -> None:
        self.shown = shown
        self.raw = raw
        self.text = ""

    def fail(self, line: int, column: int, path: str, message: str) -> NoReturn:
        problem = Problem(self.shown, line, column, path, message)
        raise OutputError(f"{problem}; move the lock file away to start afresh")

    def fail_at(self, keys: tuple[str, ...], message: str) -> NoReturn:
        """A problem at the last of ``keys`` (the lock is JSON written by envspec: each key is
        found after the one that holds it)."""
        offset = 0
        for key in keys:
            found = self.text.find(json.dumps(key), offset)
            if found < 0:
                break
            offset = found
        before = self.text[:offset]
        line = before.count("\n") + 1
        self.fail(line, offset - (before.rfind("\n") + 1) + 1, ".".join(keys), message)

    def read(self) -> tuple[dict[str, LockEntry], dict[str, str]]:
        try:
            self.text = self.raw.decode("utf-8")
        except UnicodeDecodeError as error:
            before = self.raw[: error.start]
            column = error.start - (before.rfind(b"\n") + 1) + 1
            self.fail(before.count(b"\n") + 1, column, "", "not UTF-8")
        try:
            data = json.loads(self.text)
        except json.JSONDecodeError as error:
            self.fail(error.lineno, error.colno, "", f"not an envspec lock file ({error.msg})")
        except RecursionError:
            self.fail(1, 1, "", "not an envspec lock file (nested too deeply)")
        if not isinstance(data, dict):
            self.fail(1, 1, "", "not an envspec lock file (expected an object)")
        if data.get("version") != LOCK_VERSION:
            self.fail_at(("version",), f"expected version {LOCK_VERSION}")
        files = data.get("files")
        if not isinstance(files, dict):
            self.fail_at(("files",), "expected an object of files")
        checked = {path: self.entry(path, entry) for path, entry in files.items()}
        inputs = data.get("inputs", {})
        if not isinstance(inputs, dict) or not all(
            isinstance(value, str) for value in inputs.values()
        ):
            self.fail_at(("inputs",), "expected an object of fingerprints")
        return checked, inputs

    def entry(self, path: str, entry: Any) -> LockEntry:
        where = ("files", path)
        try:
            checked_path(path)
        except OutputError:
            self.fail_at(where, "not a path inside the output folder")
        if path == LOCK_FILE:
            self.fail_at(where, "the lock cannot list itself")
        if not isinstance(entry, dict):
            self.fail_at(where, "expected an object")
        digest = entry.get("sha256")
        if not isinstance(digest, str) or len(digest) != 64 or not _HEX.issuperset(digest):
            self.fail_at((*where, "sha256"), "expected 64 lowercase hexadecimal digits")
        environment = entry.get("environment")
        if environment is not None and not isinstance(environment, str):
            self.fail_at((*where, "environment"), "expected a name or null")
        target = entry.get("target")
        if not isinstance(target, str):
            self.fail_at((*where, "target"), "expected a target name")
        return {"sha256": digest, "environment": environment, "target": target}


class _Out:
    """The output folder, open; its folders reached one by one, never through a link."""

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self.descriptor = descriptor
        self.folders: dict[str, int | None] = {"": descriptor}

    def folder(self, relative: str) -> int | None:
        """The open folder ``relative`` ('' is the output folder); None when it does not
        exist. A link or a file on the way is refused."""
        if relative in self.folders:
            return self.folders[relative]
        parent, _, name = relative.rpartition("/")
        above = self.folder(parent)
        found = None if above is None else _open_folder(above, name, self.path / relative)
        self.folders[relative] = found
        return found

    def existing(self, relative: str) -> int:
        found = self.folder(relative)
        if found is None:
            raise FileNotFoundError(errno.ENOENT, "no such folder", str(self.path / relative))
        return found

    def forget(self, relative: str) -> None:
        """Open ``relative`` and the folders in it afresh next time (it was removed or made)."""
        for known in [
            key for key in self.folders if key == relative or key.startswith(relative + "/")
        ]:
            descriptor = self.folders.pop(known)
            if descriptor is not None:
                os.close(descriptor)

    def read(self, relative: str, limit: int | None = None) -> tuple[bytes, int] | None:
        """The bytes and mode of file ``relative``; None when it does not exist."""
        parent, _, name = relative.rpartition("/")
        folder = self.folder(parent)
        if folder is None:
            return None
        shown = self.path / relative
        try:
            descriptor = os.open(name, _FILE, dir_fd=folder)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise _refusal(folder, name, shown, error) from None
        try:
            info = os.fstat(descriptor)
            if stat.S_ISDIR(info.st_mode):
                raise OutputError(f"{shown}: is a folder where envspec writes a file")
            if not stat.S_ISREG(info.st_mode):
                raise OutputError(f"{shown}: is not a regular file; nothing was changed")
            if limit is not None and info.st_size > limit:
                raise OutputError(f"{shown}: {info.st_size} bytes; the limit is {limit}")
            with open(descriptor, "rb", closefd=False) as handle:
                return handle.read(), stat.S_IMODE(info.st_mode)
        finally:
            os.close(descriptor)

    def close(self) -> None:
        for descriptor in self.folders.values():
            if descriptor is not None:
                os.close(descriptor)
        self.folders.clear()


def _open_folder(parent: int, name: str, shown: Path) -> int | None:
    try:
        return os.open(name, _FOLDER, dir_fd=parent)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise _refusal(parent, name, shown, error) from None


def _refusal(parent: int, name: str, shown: Path, error: OSError) -> OutputError:
    try:
        kind = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
    except OSError:
        kind = 0
    if stat.S_ISLNK(kind):
        return OutputError(
            f"{shown}: is a symbolic link; envspec never reads or writes through a link in "
            "the output folder (remove it); nothing was changed"
        )
    if error.errno == errno.ENOTDIR:
        return OutputError(f"{shown}: is a file where envspec needs a folder; nothing was changed")
    return OutputError(f"could not open {shown}: {error.strerror}; nothing was changed")


@contextlib.contextmanager
def _opened(out: Path, *, exclusive: bool, create: bool) -> Iterator[_Out | None]:
    """The output folder, open and locked (``exclusive`` for a writer, shared for a reader),
    an interrupted transaction in it finished first; None when it does not exist and
    ``create`` is false. A folder this created is removed again if the block fails."""
    created = False
    deadline = time.monotonic() + MUTEX_WAIT_SECONDS
    while True:
        if create and not os.path.lexists(out):
            out.mkdir(parents=True, exist_ok=True)
            created = True
        try:
            descriptor = os.open(out, _FOLDER)
        except FileNotFoundError:
            if create:
                continue
            yield None
            return
        except OSError as error:
            link = out.is_symlink()
            reason = (
                "is a symbolic link; give --out the folder it points to"
                if link
                else (f"cannot be opened as a folder ({error.strerror})")
            )
            raise OutputError(f"{out}: {reason}") from None
        try:
            _lock(descriptor, out, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, deadline)
            if _same(descriptor, out):
                break
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)  # a writer removed the folder it had created: open it again
    folder = _Out(out, descriptor)
    try:
        if _exists(descriptor, TRANSACTION_DIR):
            if not exclusive:
                _lock(descriptor, out, fcntl.LOCK_EX, deadline)
            if _exists(descriptor, TRANSACTION_DIR):  # not finished by another reader meanwhile
                _recover(folder)
            if not exclusive:
                fcntl.flock(descriptor, fcntl.LOCK_SH)
        yield folder
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        folder.close()


def _lock(descriptor: int, out: Path, how: int, deadline: float) -> None:
    """``flock`` the output folder; wait for another envspec, then give up."""
    while True:
        try:
            fcntl.flock(descriptor, how | fcntl.LOCK_NB)
            return
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                raise OutputError(f"{out}: another envspec is writing here; try again") from None
            time.sleep(0.05)


def _same(descriptor: int, out: Path) -> bool:
    try:
        named = out.lstat()
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _exists(folder: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


_steps: list[int] = [0]


def _step(what: str) -> None:
    """A step that changes the disk: where the fault injector strikes (see FAULT_VARIABLE)."""
    armed = os.environ.get(FAULT_VARIABLE)
    if armed is None:
        return
    _steps[0] += 1
    print(f"envspec-step {_steps[0]} {what}", file=sys.stderr, flush=True)
    for fault in armed.split(","):
        at, _, name = fault.partition(":")
        if _steps[0] != int(at):
            continue
        if name.startswith("E"):
            code = getattr(errno, name)
            raise OSError(code, os.strerror(code), what)
        os.kill(os.getpid(), getattr(signal, name or "SIGKILL"))


Step = tuple[str, str, str]
"""A journal step: its kind (``create`` or ``replace`` a file in an existing folder, ``place`` a
new folder, ``remove`` a file, ``prune`` a folder left empty), its name in the staging folders
and the path it concerns."""


class _Staging:
    """The transaction folder: ``files/`` (new files of existing folders, by number), ``tree/``
    (new folders, built whole), ``old/`` (what was replaced or removed, by number), the
    ``journal`` of the steps once the commit begins, and ``abort`` once it is being undone."""

    def __init__(self, out: _Out, descriptor: int) -> None:
        self.out = out
        self.descriptor = descriptor
        self.parts = {name: _open_folder(descriptor, name, self.shown(name)) for name in PARTS}
        self.tree: dict[str, int] = {}

    @classmethod
    def create(cls, out: _Out) -> _Staging:
        _step("mkdir staging")
        os.mkdir(TRANSACTION_DIR, 0o700, dir_fd=out.descriptor)
        descriptor = os.open(TRANSACTION_DIR, _FOLDER, dir_fd=out.descriptor)
        for name in PARTS:
            os.mkdir(name, 0o700, dir_fd=descriptor)
        return cls(out, descriptor)

    @classmethod
    def open(cls, out: _Out) -> _Staging:
        descriptor = _open_folder(out.descriptor, TRANSACTION_DIR, out.path / TRANSACTION_DIR)
        assert descriptor is not None
        return cls(out, descriptor)

    def shown(self, name: str) -> Path:
        return self.out.path / TRANSACTION_DIR / name

    def part(self, name: str) -> int:
        descriptor = self.parts[name]
        if descriptor is None:
            raise FileNotFoundError(errno.ENOENT, "missing", str(self.shown(name)))
        return descriptor

    def tree_folder(self, relative: str, create: bool) -> int | None:
        """Folder ``relative`` of ``tree/``; made when ``create``, else None when missing."""
        if relative == "":
            return self.part("tree")
        if relative in self.tree:
            return self.tree[relative]
        parent, _, name = relative.rpartition("/")
        above = self.tree_folder(parent, create)
        if above is None:
            return None
        if create:
            _step("mkdir")
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, dir_fd=above)
        found = _open_folder(above, name, self.shown(f"tree/{relative}"))
        if found is not None:
            self.tree[relative] = found
        return found

    def journal(self) -> list[Step] | None:
        try:
            descriptor = os.open("journal", _FILE, dir_fd=self.descriptor)
        except FileNotFoundError:
            return None
        try:
            with open(descriptor, "rb", closefd=False) as handle:
                raw = handle.read()
        finally:
            os.close(descriptor)
        try:
            steps = json.loads(raw)["steps"]
            for kind, name, path in steps:
                if kind not in KINDS or not isinstance(name, str) or not isinstance(path, str):
                    raise ValueError(kind)
                checked_path(path)
        except (ValueError, KeyError, TypeError, OutputError):
            raise OutputError(
                f"{self.shown('journal')}: damaged; move {self.shown('')} away by hand"
            ) from None
        return [(kind, name, path) for kind, name, path in steps]

    def write_journal(self, steps: list[Step]) -> None:
        data = json.dumps({"version": 1, "steps": steps}).encode()
        write_atomic_in(self.descriptor, "journal", data, 0o600, before=_step)

    def mark_abort(self) -> None:
        _step("write abort")
        create_new(self.descriptor, "abort", b"", 0o600, durable=True)
        _step("fsync staging")
        os.fsync(self.descriptor)

    def aborted(self) -> bool:
        return _exists(self.descriptor, "abort")

    def close(self) -> None:
        for descriptor in [*self.parts.values(), *self.tree.values(), self.descriptor]:
            if descriptor is not None and descriptor >= 0:
                os.close(descriptor)
        self.parts.clear()
        self.tree.clear()
        self.descriptor = -1

    def remove(self) -> None:
        """Remove the transaction folder: the journal first (from then on nothing is left to
        finish), then the rest."""
        with contextlib.suppress(FileNotFoundError):
            _step("unlink journal")
            os.unlink("journal", dir_fd=self.descriptor)
        self.close()
        _step("remove staging")
        shutil.rmtree(TRANSACTION_DIR, dir_fd=self.out.descriptor)


PARTS = ("files", "tree", "old")
KINDS = frozenset({"create", "replace", "place", "remove", "prune"})


def _forward(staging: _Staging, step: Step) -> None:
    """Carry out one step of the journal; a step already carried out is left as it is."""
    out = staging.out
    kind, name, path = step
    parent, _, base = path.rpartition("/")
    if kind in {"create", "replace"}:
        files, old = staging.part("files"), staging.part("old")
        if not _exists(files, name):
            return
        folder = out.existing(parent)
        if kind == "replace" and _exists(folder, base) and not _exists(old, name):
            _step("link backup")
            os.link(base, name, src_dir_fd=folder, dst_dir_fd=old, follow_symlinks=False)
        _step("rename")
        os.rename(name, base, src_dir_fd=files, dst_dir_fd=folder)
    elif kind == "place":
        source = staging.tree_folder(parent, create=False)
        if source is None or not _exists(source, base):
            return
        _step("rename folder")
        os.rename(base, base, src_dir_fd=source, dst_dir_fd=out.existing(parent))
        out.forget(path)
    elif kind == "remove":
        old = staging.part("old")
        holder = out.folder(parent)
        if holder is None or _exists(old, name) or not _exists(holder, base):
            return
        _step("rename to old")
        os.rename(base, name, src_dir_fd=holder, dst_dir_fd=old)
    else:
        holder = out.folder(parent)
        if holder is None:
            return
        _step("rmdir")
        with contextlib.suppress(OSError):  # not empty: files envspec did not write
            os.rmdir(base, dir_fd=holder)
        out.forget(path)


def _backward(staging: _Staging, step: Step) -> None:
    """Undo one step of the journal; a step never carried out is left as it is."""
    out = staging.out
    kind, name, path = step
    parent, _, base = path.rpartition("/")
    if kind in {"create", "replace"}:
        files, old = staging.part("files"), staging.part("old")
        folder = out.folder(parent)
        if folder is None or _exists(files, name):
            return  # never put in place
        if kind == "create":
            _step("unlink")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(base, dir_fd=folder)
        elif _exists(old, name):  # else put back already
            _step("rename back")
            os.rename(name, base, src_dir_fd=old, dst_dir_fd=folder)
    elif kind == "place":
        source = staging.tree_folder(parent, create=True)
        folder = out.folder(parent)
        if source is None or folder is None or _exists(source, base) or not _exists(folder, base):
            return
        _step("rename folder back")
        os.rename(base, base, src_dir_fd=folder, dst_dir_fd=source)
        out.forget(path)
    elif kind == "remove":
        old = staging.part("old")
        if not _exists(old, name):
            return
        _step("rename back")
        os.rename(name, base, src_dir_fd=old, dst_dir_fd=out.existing(parent))
    else:
        folder = out.folder(parent)
        if folder is None or _exists(folder, base):
            return
        _step("mkdir back")
        os.mkdir(base, dir_fd=folder)
        out.forget(path)


def _flush_folders(out: _Out, steps: list[Step]) -> None:
    """Make the renames of ``steps`` durable: one ``fsync`` per folder they changed."""
    folders = {path.rpartition("/")[0] for _, _, path in steps}
    for relative in sorted(folders):
        descriptor = out.folder(relative)
        if descriptor is not None:
            _step("fsync folder")
            os.fsync(descriptor)


def _recover(out: _Out) -> None:
    """Finish a transaction that a crash or a kill interrupted (see the module's docstring)."""
    with deferred_signals():
        staging = _Staging.open(out)
        try:
            steps = staging.journal()
            if steps is not None:
                undo = staging.aborted()
                for step in reversed(steps) if undo else steps:
                    (_backward if undo else _forward)(staging, step)
                _flush_folders(out, steps)
                note_change()
            staging.remove()
        except (OSError, OutputError) as error:
            staging.close()
            reason = error.strerror if isinstance(error, OSError) else str(error)
            raise OutputError(
                f"{out.path}: an interrupted write could not be finished ({reason}); the next "
                "envspec command here tries again"
            ) from None


class _Transaction:
    """Files staged in the transaction folder, then put in place together or not at all.

    Leaving the ``with`` block by an exception before :meth:`commit` discards everything
    staged; :meth:`commit` carries out the journal, undoing it if a step fails."""

    def __init__(self, out: _Out) -> None:
        self.out = out
        self.staging: _Staging | None = None
        self.steps: list[Step] = []
        self.placed: set[str] = set()
        self.journaled = False

    def __enter__(self) -> _Transaction:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> None:
        if error is None or self.staging is None:
            return
        if self.journaled:
            self.staging.close()  # the next envspec command finishes the journal
            return
        self.staging.remove()
        if isinstance(error, OSError):
            raise OutputError(
                f"could not write {error.filename or self.out.path}: {error.strerror}; "
                "nothing was changed"
            ) from None

    def _staging(self) -> _Staging:
        if self.staging is None:
            self.staging = _Staging.create(self.out)
        return self.staging

    def stage(self, path: str, data: bytes, mode: int | None) -> None:
        """Stage ``data`` for ``path``; ``mode``: that of the file it replaces (None: new)."""
        try:
            self._stage(path, data, mode)
        except OSError as error:
            raise OutputError(
                f"could not write {self.out.path / path}: {error.strerror}; nothing was changed"
            ) from None

    def _stage(self, path: str, data: bytes, mode: int | None) -> None:
        staging = self._staging()
        parent, _, base = path.rpartition("/")
        if self.out.folder(parent) is not None:
            name = str(len(self.steps))
            self.steps.append(("create" if mode is None else "replace", name, path))
            _step("stage")
            create_new(
                staging.part("files"), name, data, 0o644 if mode is None else mode, durable=False
            )
            return
        top = self._first_missing(parent)
        if top not in self.placed:
            self.placed.add(top)
            self.steps.append(("place", top, top))
        folder = staging.tree_folder(parent, create=True)
        assert folder is not None
        _step("stage")
        create_new(folder, base, data, 0o644, durable=False)

    def _first_missing(self, folder: str) -> str:
        parts = folder.split("/")
        for count in range(1, len(parts) + 1):
            prefix = "/".join(parts[:count])
            if self.out.folder(prefix) is None:
                return prefix
        raise AssertionError(folder)

    def commit(self, remove: list[str]) -> None:
        staging = self._staging()
        for path in remove:
            self.steps.append(("remove", str(len(self.steps)), path))
        emptied = {
            "/".join(path.split("/")[:count])
            for path in remove
            for count in range(1, path.count("/") + 1)
        }
        self.steps += [("prune", folder, folder) for folder in sorted(emptied, reverse=True)]
        with deferred_signals():
            _step("syncfs")
            sync_filesystem(self.out.descriptor)
            staging.write_journal(self.steps)
            self.journaled = True
            note_change()
            done = 0
            try:
                for step in self.steps:
                    _forward(staging, step)
                    done += 1
                _flush_folders(self.out, self.steps)
            except (OSError, OutputError) as error:
                failed = self.out.path / self.steps[min(done, len(self.steps) - 1)][2]
                reason = error.strerror if isinstance(error, OSError) else str(error)
                self._roll_back(staging, f"{failed}: {reason}")
            staging.remove()
            self.staging = None  # done: a signal held until now finds nothing to clean up

    def _roll_back(self, staging: _Staging, failure: str) -> NoReturn:
        try:
            staging.mark_abort()
            for step in reversed(self.steps):
                _backward(staging, step)
            _flush_folders(self.out, self.steps)
            staging.remove()
        except (OSError, OutputError):
            staging.close()
            note_change()
            self.staging = None
            raise OutputError(
                f"could not replace {failure}; the output folder is left half written: the "
                "next envspec command here puts it back as it was"
            ) from None
        self.staging = None
        raise OutputError(f"could not replace {failure}; nothing was changed")
