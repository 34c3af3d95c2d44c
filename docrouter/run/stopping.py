"""Ctrl-C and SIGTERM as a cooperative stop: stop sending, keep what arrives within a grace period, exit.

The first signal only sets a flag and wakes whoever listens (the run stops its dispatcher, waits up to the grace
period, Environment.stop_grace_s, for the answers in flight, records them and ends); a second one aborts at
once. The CLI installs one Stopper per process; a run flow started by a Prefect worker has none and keeps
Prefect's own SIGTERM handling.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from docrouter.errors import RunFatal

SIGNALS = (signal.SIGINT, signal.SIGTERM)
T = TypeVar("T")


class Interrupted(RunFatal):
    """The run was stopped by a signal; `exit_code` is what the process exits with (130 / 143)."""

    error_type = "interrupted"

    def __init__(self, message: str, *, status: int | None = None, exit_code: int = 130) -> None:
        super().__init__(message, status=status)
        self.exit_code = exit_code


class Stopper:
    """The process's signal handler: the first SIGINT/SIGTERM asks for a stop, the second aborts."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._listeners: list[Callable[[], None]] = []
        self._abort_hooks: list[Callable[[], None]] = []

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def error(self, message: str = "") -> Interrupted:
        """The Interrupted error that ends a stopped run (its message says which signal)."""
        assert self.signum is not None
        name = signal.Signals(self.signum).name
        return Interrupted(f"interrupted by {name}{message}", exit_code=128 + self.signum)

    def on_stop(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` at the first signal (at once if it came already); returns its removal."""
        self._listeners.append(listener)
        if self.requested:
            listener()
        return lambda: self._listeners.remove(listener)

    def on_abort(self, hook: Callable[[], None]) -> None:
        """Something to do before an abort ends the process (stop a server it started)."""
        self._abort_hooks.append(hook)

    def handle(self, signum: int, _frame: Any = None) -> None:
        if self.requested:
            self._abort(signum)
        self.signum = signum
        for listener in list(self._listeners):
            listener()

    def _abort(self, signum: int) -> None:
        sys.stderr.write(
            f"\ndocrouter: interrupted again ({signal.Signals(signum).name}): aborted at once; answers in flight are "
            "lost, every recorded row is safe; rerun to continue\n"
        )
        sys.stderr.flush()
        for hook in self._abort_hooks:
            with suppress(Exception):
                hook()
        os._exit(128 + signum)

    @contextmanager
    def handling(self) -> Iterator[Stopper]:
        """Route SIGINT and SIGTERM here for the block (Prefect's flow engine sets its own SIGTERM handler when a
        flow starts: the flow body takes it back), then restore what was there."""
        try:
            previous = {sig: signal.signal(sig, self.handle) for sig in SIGNALS}
        except ValueError:  # not the main thread: signals are not ours to handle
            yield self
            return
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_ACTIVE: list[Stopper] = []


@contextmanager
def installed() -> Iterator[Stopper]:
    """A Stopper handling SIGINT and SIGTERM for this process until the block ends (the CLI's `run`)."""
    stopper = Stopper()
    _ACTIVE.append(stopper)
    try:
        with stopper.handling():
            yield stopper
    finally:
        _ACTIVE.remove(stopper)


def active() -> Stopper | None:
    """The process's Stopper, if the CLI installed one."""
    return _ACTIVE[-1] if _ACTIVE else None


def wake_on_stop(stopper: Stopper | None, action: Callable[[], None]) -> asyncio.Event:
    """An event set (on the running loop) at the stop, after `action` ran (in the signal handler: keep it tiny)."""
    stopped = asyncio.Event()
    if stopper is not None:
        loop = asyncio.get_running_loop()

        def listener() -> None:
            action()
            loop.call_soon_threadsafe(stopped.set)

        stopper.on_stop(listener)
    return stopped


async def finish_or_stop(work: Awaitable[T], stopped: asyncio.Event, grace_s: float) -> T | None:
    """`work`'s result; if `stopped` is set first, up to `grace_s` more for it to finish (no new sends, so only
    answers in flight), then it is cancelled and None is returned."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if not task.done():
        await asyncio.wait({task}, timeout=grace_s)
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.wait({task}, timeout=5.0)  # cancelled work writes the rows it holds, then ends
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: an error raised while cancelling is not news after a stop
    return None


def interrupted(fatal: BaseException | None) -> bool:
    """Whether a run's stop reason is a signal (its unsent documents get no row: the rerun sends them)."""
    return isinstance(fatal, Interrupted)


def run(main: Coroutine[Any, Any, T], stopper: Stopper) -> T:
    """asyncio.run(main), except that after a stop it does not wait for worker threads still busy with work
    nobody awaits any more (a text extraction for a document that will not be sent): a stop takes seconds."""
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            if not stopper.requested:
                loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()  # does not wait for the executor's threads


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def exit_now(code: int) -> int:
    """`code`, and, when threads left busy by a stop would hold the exit up, the exit itself (every row is on
    disk and the lease released by now; Prefect's temporary server stops with this process)."""
    busy = [t for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()]
    if busy:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
