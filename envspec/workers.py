"""Work run in forked child processes, each started from the parent's state at that moment.

A pool forks its workers once, so they only know what existed then. Forking one child per piece
of work instead lets the parent start rendering an environment as soon as it is resolved, while
it goes on resolving the next. A child writes its pickled result to an anonymous in-memory file
(a rendered local .env may hold secret literals: they never touch a disk) and exits; the parent
learns that it ended from a pipe that the child's exit closes, and reads the file. Nothing is
pickled on the way in: the child simply has the parent's memory.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import tempfile
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from typing import IO, Any, Generic, NamedTuple, TypeVar

from envspec.errors import EnvspecError

K = TypeVar("K", bound=Hashable)


def available() -> bool:
    """Whether work may go to child processes: the system can fork, has two CPUs or more, and
    ``ENVSPEC_JOBS=1`` does not ask for one process."""
    return (
        hasattr(os, "fork") and (os.cpu_count() or 1) >= 2 and os.environ.get("ENVSPEC_JOBS") != "1"
    )


class WorkerLostError(EnvspecError):
    """A child process ended without a result (killed, or out of memory)."""


class _Child(NamedTuple):
    pid: int
    done: int
    """Read end of a pipe whose write end only the child held: readable at EOF once it exits."""
    result: IO[bytes]


class Children(Generic[K]):
    """At most ``limit`` children at a time, each running one piece of work, keyed by ``K``.

    Use it as a context manager: leaving the block early (an exception, a generator closed)
    kills and reaps every child still running. When the system refuses another process, the
    work is done in this one instead."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting: deque[tuple[K, Callable[[], Any]]] = deque()
        self.running: dict[K, _Child] = {}
        self.ended: dict[K, bytes | WorkerLostError] = {}

    def __enter__(self) -> Children[K]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.waiting.clear()
        for child in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
            os.waitpid(child.pid, 0)
            self._close(child)
        self.running.clear()

    def submit(self, key: K, work: Callable[[], Any]) -> None:
        """Run ``work()`` in a child as soon as one of the ``limit`` places is free."""
        self.waiting.append((key, work))
        self._start()

    def pending(self) -> bool:
        return bool(self.waiting or self.running or self.ended)

    def finished(self, block: bool) -> Iterator[tuple[K, Any]]:
        """The results of work that has ended (waiting for some when ``block`` and none has),
        starting waiting work in the places freed. The work's exception is raised here."""
        if self.running and not self.ended:
            by_pipe = {child.done: key for key, child in self.running.items()}
            ready, _, _ = select.select(list(by_pipe), [], [], None if block else 0)
            for done in ready:
                self._reap(by_pipe[done])
            self._start()  # before the caller spends time on the results
        for key in list(self.ended):
            yield key, self._result(key)

    def drain(self) -> Iterator[tuple[K, Any]]:
        """Every result still to come. Work still waiting when no place is free is done in this
        process, which would otherwise only wait: a child costs a fork, a copy of every page
        that either process then writes, and the pickling of its result."""
        while self.pending():
            yield from self.finished(block=False)
            self._start()
            if self.waiting:
                key, work = self.waiting.popleft()
                yield key, work()
            elif self.running:
                yield from self.finished(block=True)

    def _start(self) -> None:
        while self.waiting and len(self.running) < self.limit:
            key, work = self.waiting.popleft()
            try:
                self.running[key] = self._fork(work)
            except OSError:  # no process or descriptor to spare (EAGAIN, ENOMEM, EMFILE)
                self.ended[key] = _outcome(work)

    def _fork(self, work: Callable[[], Any]) -> _Child:
        with contextlib.ExitStack() as on_failure:
            result = on_failure.enter_context(_anonymous_file())
            done, closed_on_exit = os.pipe()
            on_failure.callback(os.close, done)
            on_failure.callback(os.close, closed_on_exit)
            pid = os.fork()
            on_failure.pop_all()
        if pid == 0:  # pragma: no cover - runs in the child, which never returns
            os.close(done)
            _run(work, result)
        os.close(closed_on_exit)
        return _Child(pid, done, result)

    def _reap(self, key: K) -> None:
        child = self.running.pop(key)
        _, status = os.waitpid(child.pid, 0)
        try:
            child.result.seek(0)
            data = child.result.read()
        finally:
            self._close(child)
        code = os.waitstatus_to_exitcode(status)
        if code != 0 or not data:
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            self.ended[key] = WorkerLostError(
                f"a worker process ended without a result ({how}; out of memory?); "
                "ENVSPEC_JOBS=1 keeps envspec in one process"
            )
        else:
            self.ended[key] = data

    def _result(self, key: K) -> Any:
        data = self.ended.pop(key)
        if isinstance(data, WorkerLostError):
            raise data
        outcome, value = pickle.loads(data)
        if outcome == "error":
            raise value
        return value

    @staticmethod
    def _close(child: _Child) -> None:
        os.close(child.done)
        child.result.close()


def _anonymous_file() -> IO[bytes]:
    """A file in memory only (Linux's memfd), else an unnamed temporary file."""
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("envspec-result", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()  # pragma: no cover - systems without memfd


def _outcome(work: Callable[[], Any]) -> bytes:
    """``work()``'s result, or the exception it raised, pickled for :meth:`Children._result`."""
    try:
        return pickle.dumps(("ok", work()), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as error:  # handed to the parent, which raises it
        try:
            return pickle.dumps(("error", error))
        except Exception:  # an exception that cannot be pickled
            return pickle.dumps(("error", RuntimeError(type(error).__name__)))


def _run(work: Callable[[], Any], result: IO[bytes]) -> None:  # pragma: no cover - in the child
    """Run ``work`` and leave its pickled outcome in ``result``; never return."""
    try:
        result.write(_outcome(work))
        result.flush()
    finally:
        os._exit(0)
