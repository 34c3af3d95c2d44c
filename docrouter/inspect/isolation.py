"""Run a function over items in long-lived worker processes, each item under a wall-clock and memory limit.

A worker that overruns its item's time, or grows past the memory limit, is killed and replaced; the item
gets a Failure instead of a result and the others go on. Workers are reused across items (no process per
item) and started with "forkserver": a fork of a clean, preloaded server is about 30 ms, against about
250 ms for "spawn", and it is safe when the caller has threads.
"""

from __future__ import annotations

import multiprocessing
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

POLL_S = 0.5  # the longest wait between looks at the clock
START_METHOD = "forkserver"
PRELOAD = ["docrouter.inspect.inspection"]  # imported once in the fork server, inherited by every worker


@dataclass(frozen=True)
class Failure:
    """Why an item has no result: timeout, memory (over the limit) or crashed (the worker died or raised)."""

    kind: str
    message: str


def run_isolated(
    func: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int = 2,
    timeout_s: float = 30.0,
    memory_mb: int = 1024,
) -> Iterator[tuple[T, R | Failure]]:
    """(item, func(item) or Failure) for every item, in input order; items are read lazily.

    `func` and the items must pickle (a module-level function, or functools.partial of one).
    """
    with WorkerPool(func, workers=workers, timeout_s=timeout_s, memory_mb=memory_mb) as pool:
        yield from pool.map(items)


class WorkerPool(Generic[T, R]):
    """Long-lived workers for many `map` calls (one at a time; callers in several threads take turns).

    Starting a worker is not free: a forkserver child re-imports the parent's __main__ module (for a Prefect
    flow run, prefect itself), so a run keeps one pool for all its batches.
    """

    def __init__(self, func: Callable[[T], R], *, workers: int = 2, timeout_s: float = 30.0, memory_mb: int = 1024):
        self._pool = _Pool(func, max(1, workers), timeout_s, memory_mb)
        self._turn = threading.Lock()

    def map(self, items: Iterable[T]) -> Iterator[tuple[T, R | Failure]]:
        """(item, outcome) for every item, in input order."""
        with self._turn:
            yield from self._pool.run(items)

    def close(self) -> None:
        """Stop the workers; a `map` running in another thread (a run stopped by Ctrl-C) ends within POLL_S."""
        self._pool.closing = True
        with self._turn:
            self._pool.close()

    def __enter__(self) -> WorkerPool[T, R]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class _Worker:
    process: Any  # multiprocessing.context.ForkServerProcess
    conn: Connection
    index: int | None = None  # the item it is working on
    deadline: float = 0.0


@dataclass
class _Pool(Generic[T, R]):
    func: Callable[[T], R]
    size: int
    timeout_s: float
    memory_mb: int
    workers: list[_Worker] = field(default_factory=list)
    items: dict[int, T] = field(default_factory=dict)
    done: dict[int, R | Failure] = field(default_factory=dict)
    closing: bool = False

    def run(self, items: Iterable[T]) -> Iterator[tuple[T, R | Failure]]:
        source = enumerate(items)
        next_out, exhausted = 0, False
        try:
            while not self.closing:
                exhausted = exhausted or self._feed(source)
                if exhausted and not self.items:
                    return
                self._collect()
                while next_out in self.done:
                    yield self.items.pop(next_out), self.done.pop(next_out)
                    next_out += 1
        finally:
            self._abandon()

    def _abandon(self) -> None:
        """After a run the caller stopped reading: replace busy workers, whose answers belong to no one now."""
        for worker in self.workers:
            if worker.index is not None:
                _stop(worker, kill=True)
        self.workers = [w for w in self.workers if w.index is None]  # the next run starts new ones
        self.items.clear()
        self.done.clear()

    def _feed(self, source: Iterator[tuple[int, T]]) -> bool:
        """Give every idle worker an item (starting workers as needed); True when the input is exhausted."""
        while len(self.workers) < self.size:
            self.workers.append(self._start())
        for worker in self.workers:
            if worker.index is None:
                nxt = next(source, None)
                if nxt is None:
                    return True
                index, item = nxt
                self.items[index] = item
                worker.conn.send((index, item))
                worker.index, worker.deadline = index, time.monotonic() + self.timeout_s
        return False

    def _collect(self) -> None:
        """Wait a little for answers, then stop the workers past their deadline."""
        busy = [w for w in self.workers if w.index is not None]
        if not busy:
            return
        wait_s = min(POLL_S, max(0.0, min(w.deadline for w in busy) - time.monotonic()))
        ready = wait([w.conn for w in busy], timeout=wait_s)
        for worker in busy:
            if worker.conn in ready:
                self._receive(worker)
            elif time.monotonic() > worker.deadline:
                self._fail(worker, Failure("timeout", f"took longer than {self.timeout_s:g} s"))

    def _receive(self, worker: _Worker) -> None:
        try:
            index, result = worker.conn.recv()
        except (EOFError, OSError):
            code = worker.process.exitcode
            self._fail(worker, Failure("crashed", f"the worker process died (exit code {code})"))
            return
        self.done[index] = result
        worker.index = None

    def _fail(self, worker: _Worker, failure: Failure) -> None:
        """Record the failure, kill the worker and put a fresh one in its place."""
        assert worker.index is not None
        self.done[worker.index] = failure
        _stop(worker, kill=True)
        self.workers[self.workers.index(worker)] = self._start()

    def _start(self) -> _Worker:
        context: Any = multiprocessing.get_context(START_METHOD)
        context.set_forkserver_preload(PRELOAD)
        ours, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs, self.func, self.memory_mb), daemon=True)
        process.start()
        theirs.close()
        return _Worker(process, ours)

    def close(self) -> None:
        for worker in self.workers:
            _stop(worker, kill=worker.index is not None)
        self.workers.clear()


def _stop(worker: _Worker, *, kill: bool) -> None:
    """End a worker: ask politely when idle, kill when busy; never wait long."""
    if kill:
        worker.process.kill()
    else:
        try:
            worker.conn.send(None)
        except OSError:
            worker.process.kill()
    worker.process.join(timeout=5)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join(timeout=5)
    worker.conn.close()
    worker.process.close()


def _serve(conn: Connection, func: Callable[[Any], Any], memory_mb: int) -> None:
    """The worker loop: one item in, one result out, until told to stop or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent stops us
    # Headroom above what the worker already maps: a forkserver child re-imports the parent's __main__ (a
    # script that imported pandas/pyarrow maps hundreds of MB of address space before the first file).
    limit = _address_space_bytes() + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        index, item = message
        conn.send((index, _attempt(func, item, memory_mb)))


def _address_space_bytes() -> int:
    """This process's virtual size (Linux /proc), or 0 where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _attempt(func: Callable[[Any], Any], item: Any, memory_mb: int) -> Any:
    """func(item), or a Failure: the worker outlives any one item."""
    try:
        return func(item)
    except MemoryError:
        return Failure("memory", f"needed more than {memory_mb} MB of memory")
    except Exception as exc:  # a bug or an unforeseen library error: reported as data, with its type
        return Failure("crashed", f"failed unexpectedly ({type(exc).__name__}: {exc})"[:500])
