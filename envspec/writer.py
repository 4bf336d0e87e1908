"""Write rendered files as one transaction, guarded by a lock file of what envspec wrote.

``<out>/.envspec-lock.json`` records the SHA-256 of every file envspec wrote and which environment
and target produced it. A file whose content no longer matches its recorded hash was edited by hand
and is not overwritten or removed without ``force``; a file envspec never wrote is not touched.

Writing stages every file as a temporary file next to its destination, while the render goes on
(:func:`write` takes files as targets finish), then flushes them with one ``sync`` and renames them
all into place. A failure before the renames (a render error, a conflict, a full disk) removes the
temporary files and leaves the output folder exactly as it was; a failure while renaming puts back
the files already replaced.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypedDict

from envspec.errors import OutputError

LOCK_FILE = ".envspec-lock.json"
MUTEX_FILE = ".envspec.lock"
LOCK_VERSION = 1
MUTEX_WAIT_SECONDS = 10.0


class LockEntry(TypedDict):
    sha256: str
    environment: str | None
    target: str


@dataclass(frozen=True)
class OutputFile:
    """A rendered file with the environment and target that own it."""

    path: str
    content: str
    environment: str | None
    target: str

    @property
    def data(self) -> bytes:
        return self.content.encode("utf-8")


@dataclass(frozen=True)
class Scope:
    """The (environment, target) pairs a command renders: only their files may be removed."""

    environments: frozenset[str | None]
    targets: frozenset[str] | None

    def covers(self, entry: LockEntry) -> bool:
        if entry["environment"] not in self.environments:
            return False
        return self.targets is None or entry["target"] in self.targets


@dataclass
class Plan:
    out: Path
    write: list[OutputFile] = field(default_factory=list)
    unchanged: list[OutputFile] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    lock: dict[str, LockEntry] = field(default_factory=dict)
    lock_update: OutputFile | None = None
    verified: int = 0

    @property
    def changes(self) -> bool:
        return bool(self.write or self.remove)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_lock(out: Path) -> dict[str, LockEntry]:
    return _read_lock(out)[0]


def _read_lock(out: Path) -> tuple[dict[str, LockEntry], dict[str, str]]:
    path = out / LOCK_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, {}
    except (OSError, ValueError) as error:
        raise OutputError(
            f"{path}: unreadable lock file ({error}); move it away to start afresh"
        ) from None
    files = raw.get("files") if isinstance(raw, dict) else None
    if not isinstance(files, dict):
        raise OutputError(f"{path}: not an envspec lock file")
    inputs = raw.get("inputs")
    return files, inputs if isinstance(inputs, dict) else {}


def unchanged_since(out: Path, key: str, fingerprint: str) -> list[LockEntry] | None:
    """The lock's entries when the last render of ``key`` had these inputs and every file it
    wrote is still exactly as written; None otherwise (render normally)."""
    try:
        files, inputs = _read_lock(out)
    except OutputError:
        return None
    if inputs.get(key) != fingerprint:
        return None
    for path, entry in files.items():
        try:
            if sha256(safe_target(out, path).read_bytes()) != entry["sha256"]:
                return None
        except (OSError, OutputError):
            return None
    return list(files.values())


def safe_target(out: Path, relative: str) -> Path:
    """``out / relative``, refusing any path that is not a plain relative path inside ``out``
    (an empty, ``.`` or ``..`` part, or a leading ``/``)."""
    if any(part in {"", ".", ".."} for part in relative.split("/")):
        raise OutputError(f"refusing to write '{relative}': it would leave the output folder")
    return out / relative


def plan(
    out: Path,
    files: list[OutputFile],
    scope: Scope,
    force: bool,
    inputs: dict[str, str] | None = None,
) -> Plan:
    """Compare rendered files with the output folder and its lock; decide what to do.

    ``inputs`` (a render's key and the fingerprint of its inputs) is recorded in the lock so an
    identical render later can be recognised without loading the spec."""
    planner = _Planner(out, scope, force, inputs)
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
    """:func:`plan` and :func:`apply` in one pass over files that are still being rendered.

    Each file to write is staged as soon as it arrives, so writing overlaps rendering; nothing
    replaces anything until every batch has arrived without error and no file is in conflict.
    Any exception (a render error in a later batch included) discards what was staged and
    leaves the output folder as it was."""
    planner = _Planner(out, scope, force, inputs)
    with _Transaction(out) as transaction:
        for batch in batches:
            for file in batch:
                staged = planner.add(file)
                if staged is not None and not planner.result.conflicts:
                    transaction.stage(*staged)
        result = planner.finish()
        if result.conflicts:
            raise OutputError(_conflicts(result))
        if result.lock_update is not None:
            transaction.stage(out / LOCK_FILE, result.lock_update.data)
            transaction.commit(result.remove)
    return result


class _Planner:
    """Decides, file by file, what a render does to the output folder (see :func:`plan`)."""

    def __init__(self, out: Path, scope: Scope, force: bool, inputs: dict[str, str] | None) -> None:
        self.lock, self.recorded = _read_lock(out)
        self.scope = scope
        self.force = force
        self.inputs = inputs if inputs is not None else {}
        self.result = Plan(out)
        self.new_lock: dict[str, LockEntry] = {}
        self.folders: dict[Path, bool] = {}

    def _folder_exists(self, folder: Path) -> bool:
        """Whether ``folder`` exists, asked once per folder: a render into an empty output folder
        then tries no file at all."""
        exists = self.folders.get(folder)
        if exists is None:
            exists = self.folders[folder] = folder.exists()
        return exists

    def add(self, file: OutputFile) -> tuple[Path, bytes] | None:
        """Plan one rendered file; where it goes and its bytes when it is to be written."""
        result = self.result
        target = safe_target(result.out, file.path)
        data = file.data
        self.new_lock[file.path] = {
            "sha256": sha256(data),
            "environment": file.environment,
            "target": file.target,
        }
        current = _read(target) if self._folder_exists(target.parent) else None
        if current == data:
            result.unchanged.append(file)
            return None
        if current is not None and not self.force:
            known = self.lock.get(file.path)
            if known is None:
                result.conflicts.append(f"{target}: exists and was not written by envspec")
                return None
            if known["sha256"] != sha256(current):
                result.conflicts.append(f"{target}: edited by hand since envspec wrote it")
                return None
        result.write.append(file)
        return target, data

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
            target = safe_target(result.out, path)
            current = _read(target)
            if current is None:
                continue
            if sha256(current) != entry["sha256"] and not self.force:
                result.conflicts.append(
                    f"{target}: no longer generated, but edited by hand; not removed"
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


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise OutputError(f"{path}: is a folder where envspec writes a file") from None


def apply(result: Plan) -> None:
    """Carry out a plan as one transaction; on failure raise and leave everything as it was."""
    if result.conflicts:
        raise OutputError(_conflicts(result))
    if result.lock_update is None:
        return
    with _Transaction(result.out) as transaction:
        for file in [*result.write, result.lock_update]:
            transaction.stage(safe_target(result.out, file.path), file.data)
        transaction.commit(result.remove)


def _conflicts(result: Plan) -> str:
    return "refusing to write; nothing was changed (use --force to overwrite):\n  " + (
        "\n  ".join(sorted(result.conflicts))
    )


class _Transaction:
    """Files staged next to their destinations, then put in place together or not at all.

    The output folder's mutex is taken with the first staged file. Leaving the ``with`` block by
    an exception discards everything staged (and the output folder itself, when this
    transaction created it); :meth:`commit` flushes the staged files with one ``sync`` and
    renames them into place, putting back what it replaced if a rename fails."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.suffix = f".envspec-{os.getpid()}"
        self.created_dirs: list[Path] = []
        self.staged: list[tuple[Path, Path]] = []
        self.backups: list[tuple[Path, Path]] = []
        self.placed: list[Path] = []
        self.mutex: IO[str] | None = None
        self.created_out = False
        self.known_dirs: set[Path] = set()
        self.new_dirs: set[Path] = set()

    def __enter__(self) -> _Transaction:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> None:
        try:
            if error is not None:
                self._discard()
                if isinstance(error, OSError):
                    raise OutputError(
                        f"could not write {error.filename or self.out}: {error.strerror}; "
                        "nothing was changed"
                    ) from None
        finally:
            self._release()

    def stage(self, target: Path, data: bytes) -> None:
        if self.mutex is None:
            self._acquire()
        folder = target.parent
        if folder not in self.known_dirs:
            self._make_dirs(folder)
            self.known_dirs.add(folder)
        temporary = target.with_name(target.name + self.suffix)
        self.staged.append((temporary, target))
        mode = 0o644
        if folder not in self.new_dirs:
            with contextlib.suppress(FileNotFoundError):
                mode = target.stat().st_mode & 0o777
        write_file(temporary, data, mode)

    def commit(self, remove: list[str]) -> None:
        if self.mutex is None:
            self._acquire()
        os.sync()  # one flush for every staged file, before any of them replaces a file
        try:
            for path in remove:
                target = safe_target(self.out, path)
                if self._backup(target):
                    target.unlink()
            for temporary, target in self.staged:
                if target.parent not in self.new_dirs:
                    self._backup(target)
                temporary.replace(target)
                self.placed.append(target)
        except OSError as error:
            self._roll_back()
            raise OutputError(
                f"could not replace {error.filename}: {error.strerror}; nothing was changed"
            ) from None
        for _, backup in self.backups:
            backup.unlink(missing_ok=True)
        for directory in {target.parent for _, target in self.staged}:
            _fsync_dir(directory)
        self._prune_empty_dirs(remove)
        self.staged.clear()
        self.created_dirs.clear()
        self.created_out = False

    def _acquire(self) -> None:
        """Hold an exclusive lock on the output folder; wait for another envspec, then give up."""
        self.created_out = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        handle = (self.out / MUTEX_FILE).open("a")
        self.mutex = handle
        deadline = time.monotonic() + MUTEX_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise OutputError(
                        f"{self.out}: another envspec is writing here; try again"
                    ) from None
                time.sleep(0.05)

    def _release(self) -> None:
        if self.mutex is None:
            return
        fcntl.flock(self.mutex.fileno(), fcntl.LOCK_UN)
        self.mutex.close()
        self.mutex = None
        if self.created_out:
            with contextlib.suppress(OSError):
                (self.out / MUTEX_FILE).unlink()
                self.out.rmdir()

    def _make_dirs(self, directory: Path) -> None:
        missing = []
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for folder in reversed(missing):
            folder.mkdir()
            self.created_dirs.append(folder)
            self.new_dirs.add(folder)

    def _backup(self, target: Path) -> bool:
        """Keep a hard link to ``target`` until the commit ends; False when it does not exist."""
        if not target.exists():
            return False
        backup = target.with_name(target.name + self.suffix + ".bak")
        backup.unlink(missing_ok=True)
        os.link(target, backup)
        self.backups.append((target, backup))
        return True

    def _discard(self) -> None:
        for temporary, _ in self.staged:
            temporary.unlink(missing_ok=True)
        self.staged.clear()
        for folder in reversed(self.created_dirs):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self.created_dirs.clear()

    def _roll_back(self) -> None:
        for target in self.placed:
            target.unlink(missing_ok=True)
        for target, backup in self.backups:
            if target.exists() and target.samefile(backup):
                backup.unlink()  # never replaced: rename() between hard links does nothing
            else:
                backup.replace(target)
        self._discard()

    def _prune_empty_dirs(self, removed: list[str]) -> None:
        for path in removed:
            folder = safe_target(self.out, path).parent
            while folder != self.out and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
                folder = folder.parent


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``data`` (the transaction flushes all staged files at once)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
