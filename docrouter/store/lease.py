"""One writer per output folder and shard: a lease file created atomically and kept fresh by a heartbeat.

`DIR/_leases/shard-<n>-of-<shards>.lease` names its holder (host, pid, run id, since). It is created with
link() from a complete private file (atomic on local disks and NFS, where flock may not reach other hosts),
renewed every RENEW_S by touching it, and stale once it has not been renewed for STALE_S, or at once when
its holder's process is gone on this host. A stale lease is moved aside (one rename: one winner) and taken.
Clocks of hosts sharing DIR are assumed to agree within well under STALE_S (NTP).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docrouter.errors import ConfigError
from docrouter.store.datasets import create_new

LEASE_DIR = "_leases"
RENEW_S = float(os.environ.get("DOCROUTER_LEASE_RENEW_SECONDS", "5"))
STALE_S = float(os.environ.get("DOCROUTER_LEASE_STALE_SECONDS", "60"))
_SIZE = 1024  # the holder's JSON, space-padded: a rewrite is one same-size write, never a torn shorter file


class LeaseHeld(ConfigError):
    """Another live run writes this DIR and shard."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, as written in the lease file."""

    host: str
    pid: int
    started: float  # the holder process's start time (Linux), to tell a reused pid from the holder
    run_id: str | None
    since: str
    token: str

    def describe(self) -> str:
        run = f"run {self.run_id}" if self.run_id else "a run starting up"
        return f"{run} on host {self.host}, pid {self.pid}, since {self.since}"


class WriterLease:
    """A held lease: renewed by a daemon thread until released; `on_lost` is called if another run took it."""

    def __init__(self, path: Path, holder: Holder, fd: int) -> None:
        self.path = path
        self.holder = holder
        self.on_lost: Callable[[str], None] | None = None
        self.lost: str | None = None
        self._fd = fd
        self._users = 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._heartbeat, name=f"lease {path.name}", daemon=True)
        self._thread.start()

    def set_run_id(self, run_id: str) -> None:
        """Name the run in the lease (the CLI takes the lease before the flow has its run id)."""
        self.holder = _replace_run(self.holder, run_id)
        _write_durably(self._fd, _encode(self.holder))

    def _heartbeat(self) -> None:
        while not self._stop.wait(RENEW_S):
            if not self._still_ours():
                self.lost = f"the lease on {self.path.parent.parent} was taken over by {_describe(self.path)}"
                if self.on_lost is not None:
                    self.on_lost(self.lost)
                return
            with suppress(OSError):  # a shared mount's hiccup: the next beat tries again, well before STALE_S
                os.utime(self._fd)

    def _still_ours(self) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(self._fd).st_ino
        except FileNotFoundError:
            return False
        except OSError:
            return True  # cannot tell (the mount hiccupped): keep going, the next beat looks again

    def release(self) -> None:
        """Give the lease up (the last user of a lease taken twice in one process does)."""
        self._users -= 1
        if self._users > 0:
            return
        self._stop.set()
        if self._still_ours():
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        _HELD.pop(self.path, None)

    def __enter__(self) -> WriterLease:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


_HELD: dict[Path, WriterLease] = {}
_HELD_LOCK = threading.Lock()


def lease_path(out_dir: Path, shard: int, shards: int) -> Path:
    return Path(out_dir).resolve() / LEASE_DIR / f"shard-{shard + 1}-of-{shards}.lease"


def acquire(out_dir: Path, shard: int = 0, shards: int = 1, run_id: str | None = None) -> WriterLease:
    """The lease of DIR for this shard (re-entrant within a process), or LeaseHeld naming the live holder."""
    path = lease_path(out_dir, shard, shards)
    with _HELD_LOCK:
        held = _HELD.get(path)
        if held is not None:
            held._users += 1
            if run_id is not None:
                held.set_run_id(run_id)
            return held
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            lease = _create(path, run_id)
            if lease is not None:
                _HELD[path] = lease
                return lease
            current = read_holder(path)
            if not is_stale(path, current):
                break
            _break(path, current)
        spec = f"shard {shard + 1} of {shards}"
        raise LeaseHeld(
            f"{out_dir} ({spec}) is being written by {_describe(path)}; wait for it to finish or stop it "
            f"(a lease not renewed for {STALE_S:g} s is taken over)"
        )


def _create(path: Path, run_id: str | None) -> WriterLease | None:
    """A new lease file, complete when its name appears; None if the name exists."""
    holder = Holder(
        host=socket.gethostname(),
        pid=os.getpid(),
        started=_process_start(os.getpid()),
        run_id=run_id,
        since=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        token=uuid.uuid4().hex,
    )
    fd = create_new(path, lambda fd: _write_durably(fd, _encode(holder)))
    if fd is None:
        return None
    return WriterLease(path, holder, fd)


def _write_durably(fd: int, data: bytes) -> None:
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def read_holder(path: Path) -> Holder | None:
    """The holder named in a lease file; None when there is none or it cannot be read."""
    try:
        data = json.loads(path.read_bytes())
        return Holder(**{k: data[k] for k in Holder.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_stale(path: Path, holder: Holder | None) -> bool:
    """Not renewed for STALE_S, or its holder's process is gone (only knowable on the holder's host)."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    if age > STALE_S:
        return True
    if holder is None or holder.host != socket.gethostname():
        return False
    return _process_start(holder.pid) != holder.started or not _alive(holder.pid)


def _break(path: Path, seen: Holder | None) -> None:
    """Move a stale lease aside; if a fresh one was moved by mistake (a race), put it back."""
    aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    moved = read_holder(aside)
    if moved is not None and (seen is None or moved.token != seen.token):
        with suppress(FileExistsError):
            os.link(aside, path)
    aside.unlink(missing_ok=True)


def _describe(path: Path) -> str:
    holder = read_holder(path)
    if holder is None:
        return "another run (its lease file is unreadable)"
    try:
        renewed = f"renewed {time.time() - path.stat().st_mtime:.0f} s ago"
    except OSError:
        renewed = "just released"
    return f"{holder.describe()} (lease {renewed})"


def _encode(holder: Holder) -> bytes:
    text = json.dumps(holder.__dict__, separators=(",", ":")).encode()
    return text.ljust(_SIZE)


def _replace_run(holder: Holder, run_id: str) -> Holder:
    fields: dict[str, Any] = {**holder.__dict__, "run_id": run_id}
    return Holder(**fields)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_start(pid: int) -> float:
    """The process's start time in clock ticks since boot (Linux /proc), or 0 where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return float(stat.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0.0
