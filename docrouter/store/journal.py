"""The write-ahead journal: one fsynced JSON line per recorded document, in segments named by run and line.

`DIR/_journal/<run_id>-<first_line:08d>.jsonl` holds lines `first_line...`; once compacted into the parts
`part-<run_id>-<first_line:08d>.parquet` it is deleted. `DIR/_journal/<run_id>.lock` is flocked by the live
writer of that run: a journal whose lock can be taken belongs to a dead run and may be recovered.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docrouter.store.datasets import create_new, fsync_dir, warn

JOURNAL_DIR = "_journal"
_SUFFIX = ".jsonl"


@dataclass(frozen=True)
class Segment:
    """One journal file: the lines of `run_id` numbered from `first_line`."""

    run_id: str
    first_line: int
    path: Path


def segment_path(journal_dir: Path, run_id: str, first_line: int) -> Path:
    return journal_dir / f"{run_id}-{first_line:08d}{_SUFFIX}"


def list_segments(journal_dir: Path) -> list[Segment]:
    """Every journal segment present, in (run_id, first_line) order."""
    if not journal_dir.is_dir():
        return []
    found = []
    for path in journal_dir.glob(f"*{_SUFFIX}"):
        run_id, _, first = path.name[: -len(_SUFFIX)].rpartition("-")
        if run_id and first.isdigit() and not path.name.startswith("."):
            found.append(Segment(run_id, int(first), path))
    return sorted(found, key=lambda s: (s.run_id, s.first_line))


def locked_run_ids(journal_dir: Path) -> set[str]:
    """Runs that have a lock file (alive, or dead without cleaning up)."""
    if not journal_dir.is_dir():
        return set()
    return {p.name[: -len(".lock")] for p in journal_dir.glob("*.lock") if not p.name.startswith(".")}


@dataclass(frozen=True)
class SegmentLines:
    """A segment's whole entries, how many lines could not be read, and whether the last one is torn (a write
    cut short by a crash, or one in progress when read)."""

    entries: list[dict[str, Any]]
    damaged: int
    torn: bool


def read_segment(path: Path) -> list[dict[str, Any]]:
    """The whole entries of a segment; a damaged line (not a torn last one) is named in a warning, with a count."""
    lines = read_segment_lines(path)
    if lines.damaged:
        warn(f"{path}: {lines.damaged} damaged journal lines skipped; their rows are not counted")
    return lines.entries


def read_segment_lines(path: Path) -> SegmentLines:
    """Every entry of a segment, and what could not be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return SegmentLines([], 0, False)  # compacted and deleted meanwhile: its rows are in the parts now
    *whole, last = data.split(b"\n")
    entries = []
    damaged = 0
    for line in whole:
        entry = _entry(line)
        if entry is None:
            damaged += 1
        else:
            entries.append(entry)
    tail = _entry(last) if last.strip() else None
    if tail is not None:
        entries.append(tail)  # whole, only its newline is missing
    return SegmentLines(entries, damaged, torn=bool(last.strip()) and tail is None)


def _entry(line: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if isinstance(entry, dict) and isinstance(entry.get("result"), dict):
        return entry
    return None


class SegmentWriter:
    """Appends entries of one run durably; a new segment starts after each `rotate`."""

    def __init__(self, journal_dir: Path, run_id: str, first_line: int) -> None:
        self.journal_dir = journal_dir
        self.run_id = run_id
        self.first_line = first_line
        self.lines = 0
        self._fd: int | None = None

    def append(self, entry: dict[str, Any]) -> None:
        """Write one line and fsync it; on a failed write the segment is cut back to its last whole line."""
        self.append_many([entry])

    def append_many(self, entries: list[dict[str, Any]]) -> None:
        """Write several lines with one fsync (a group commit); a failed write cuts back to the last whole line."""
        data = "".join(json.dumps(entry, separators=(",", ":")) + "\n" for entry in entries).encode()
        fd = self._open()
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, start)
            raise
        self.lines += len(entries)

    def _open(self) -> int:
        if self._fd is None:
            path = segment_path(self.journal_dir, self.run_id, self.first_line)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            fsync_dir(self.journal_dir)  # the new name must survive a power cut, not only its bytes
        return self._fd

    def rotate(self) -> None:
        """Close the current segment (if any); the next append starts a new one."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.first_line += self.lines
            self.lines = 0


class RunLock:
    """An flock on `<run_id>.lock`: held by a run's writer, or by whoever recovers a dead run."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    @classmethod
    def try_acquire(cls, journal_dir: Path, run_id: str) -> RunLock | None:
        """The lock of `run_id`, or None while another live process holds it."""
        path = journal_dir / f"{run_id}.lock"
        for _ in range(5):
            created = _create_locked(journal_dir, path)
            if created is not None:
                return cls(created, path)
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue  # released and deleted meanwhile: try creating it again
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            if _same_file(fd, path):
                return cls(fd, path)
            os.close(fd)  # we locked a file its last holder had already deleted
        return None

    def release(self) -> None:
        """Delete the lock file, then let go of the lock (deleting first leaves no window for a stale lock)."""
        self.path.unlink(missing_ok=True)
        os.close(self.fd)


def _create_locked(journal_dir: Path, path: Path) -> int | None:
    """A new lock file that is already locked when its name appears, or None if the name exists."""
    return create_new(path, lambda fd: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False
