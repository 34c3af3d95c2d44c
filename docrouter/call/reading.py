"""Reading a discovered file for sending: the bytes sent are the bytes discovery hashed, or a `changed` row.

A file is opened once per send, without following a symlink swapped in after discovery (O_NOFOLLOW on the
last component; a link discovery followed is followed again only while it stays inside the source root, as
discovery requires), and checked against what discovery saw: a regular file of the same size whose bytes
hash to the document's doc_id. Anything else raises errors.Changed saying what changed, or
errors.Unreadable when the file is there but cannot be read.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from docrouter.discover.documents import CHUNK, Document
from docrouter.errors import Changed, Unreadable

# O_NONBLOCK: a FIFO swapped in after discovery must not block the open; regular files ignore it.
_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def read_verified(doc: Document, named: Collection[str] = ()) -> bytes:
    """The whole file, read once and checked against its doc_id (Changed/Unreadable when it cannot be)."""
    with _opened(doc, named) as file:
        try:
            data = file.read()
        except OSError as exc:
            raise Unreadable(f"cannot read the file: {exc.strerror or exc}") from None
    _check_hash(hashlib.sha256(data).hexdigest(), doc)
    return data


@contextmanager
def verified_file(doc: Document, named: Collection[str] = ()) -> Iterator[BinaryIO]:
    """The open file, its content checked against doc_id, positioned at 0; read it through this handle only.

    The handle keeps the checked inode even if the path is replaced; a change written into that very file
    while it is in use shows as a new size or mtime when the block ends (Changed).
    """
    with _opened(doc, named) as file:
        before = os.fstat(file.fileno())
        sha = hashlib.sha256()
        try:
            while chunk := file.read(CHUNK):
                sha.update(chunk)
        except OSError as exc:
            raise Unreadable(f"cannot read the file: {exc.strerror or exc}") from None
        _check_hash(sha.hexdigest(), doc)
        file.seek(0)
        yield file
        after = os.fstat(file.fileno())
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise Changed(f"{doc.rel_path} was modified while it was being read; the next run sends it anew")


def check_unchanged(doc: Document, named: Collection[str] = ()) -> None:
    """Changed/Unreadable unless the file at doc.path still has the discovered bytes."""
    with verified_file(doc, named):
        pass


def still_discovered(doc: Document, named: Collection[str] = ()) -> Changed | None:
    """The Changed error when the file is no longer what discovery hashed, else None (also when unreadable)."""
    try:
        check_unchanged(doc, named)
    except Changed as exc:
        return exc
    except Unreadable:
        return None
    return None


@contextmanager
def _opened(doc: Document, named: Collection[str]) -> Iterator[BinaryIO]:
    """doc.path opened read-only without following a link swapped in; a regular file of the discovered size."""
    target = _target(doc, named)
    try:
        fd = os.open(target, _FLAGS)
    except OSError as exc:
        raise _open_error(doc, exc) from None
    try:
        _check_kind_and_size(doc, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as file:  # (fdopen refuses a folder: the kind is checked first)
        yield file


def _check_kind_and_size(doc: Document, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise Changed(f"{doc.rel_path} was replaced by {_what(info.st_mode)} after discovery; not sent")
    if info.st_size != doc.size_bytes:
        raise Changed(
            f"{doc.rel_path} was modified after discovery ({doc.size_bytes:,} -> {info.st_size:,} bytes); "
            "not sent, the next run sends the new content"
        )


def _target(doc: Document, named: Collection[str]) -> str:
    """The path to open: doc.path, or where a symlink that discovery would follow points."""
    try:
        info = os.lstat(doc.path)
    except (FileNotFoundError, NotADirectoryError):
        raise Changed(f"{doc.rel_path} was deleted after discovery; not sent") from None
    except OSError as exc:
        raise Unreadable(f"cannot read the file: {exc.strerror or exc}") from None
    if not stat.S_ISLNK(info.st_mode):
        return doc.path
    real = os.path.realpath(doc.path)
    if doc.path not in named and not Path(real).is_relative_to(doc.root_path):
        raise Changed(f"{doc.rel_path} was replaced by a symlink to {real}, outside the source root; not sent")
    return real


def _open_error(doc: Document, exc: OSError) -> Changed | Unreadable:
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):  # ENOTDIR: a folder on its path became a file
        return Changed(f"{doc.rel_path} was deleted after discovery; not sent")
    if exc.errno == errno.ELOOP:
        return Changed(f"{doc.rel_path} was replaced by a symlink after discovery; not sent")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return Unreadable(f"cannot read {doc.rel_path}: permission denied")
    return Unreadable(f"cannot read {doc.rel_path}: {exc.strerror or exc}")


def _check_hash(digest: str, doc: Document) -> None:
    if digest != doc.doc_id:
        raise Changed(
            f"{doc.rel_path} was modified after discovery (same size, different bytes); not sent, "
            "the next run sends the new content"
        )


def _what(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a device")
