"""Documents: what a file is (by its bytes) and where it was found."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from docrouter.discover.names import escape_name, unescape_name
from docrouter.errors import ConfigError
from docrouter.vocabulary import SKIPPED_ERRORS as SKIPPED_ERRORS  # not a document at all: `skipped`
from docrouter.vocabulary import ErrorType

DocumentKind = Literal["pdf", "image"]

SUPPORTED_MIME: dict[str, DocumentKind] = {
    "application/pdf": "pdf",
    "image/png": "image",
    "image/jpeg": "image",
    "image/webp": "image",
    "image/gif": "image",
}


@dataclass(frozen=True)
class Remote:
    """Where a URL document came from: the full URL (never shown: see docrouter.urls.redact) and the
    validators its server sent, for a conditional re-check."""

    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Document:
    """One file found under a source root; identity is the SHA-256 of its bytes."""

    path: str  # absolute filesystem path, for reading the bytes
    rel_path: str  # POSIX path relative to source_root, as stored (escaped: see docrouter.names)
    source_root: str  # absolute real path of its source, as stored (escaped: `root_path` is the filesystem's)
    size_bytes: int
    doc_id: str  # sha256 hex of the bytes; for an entry without readable bytes, of its place, size and mtime
    mime_type: str  # sniffed from the bytes; "application/octet-stream" when unknown
    kind: DocumentKind | None  # None: not a document docrouter can send (a `skipped` or `failed` row)
    error_type: ErrorType | None = None  # why kind is None, when discovery knows: unsupported | unreadable | changed
    error_message: str | None = None
    remote: Remote | None = None  # a document fetched from a URL: `path` is its bytes in the URL cache

    @property
    def root_path(self) -> str:
        """source_root as the filesystem spells it (source_root is escaped for storage)."""
        return unescape_name(self.source_root)


CHUNK = 1024 * 1024  # hash in 1 MiB reads: never the whole file in memory
HEAD = 1024  # real PDF readers accept the %PDF- header anywhere in the first 1024 bytes
EMPTY_MIME = "application/x-empty"  # zero bytes: kind None, the run reports it as `empty`
UNREADABLE_MIME = "application/x-unreadable"  # a regular file that could not be read (permission, I/O error)
OCTET_STREAM = "application/octet-stream"

# What a non-regular entry is: (test on st_mode, MIME type as in shared-mime-info, what to call it).
_SPECIAL = (
    (stat.S_ISFIFO, "inode/fifo", "a named pipe (FIFO)"),
    (stat.S_ISCHR, "inode/chardevice", "a character device"),
    (stat.S_ISBLK, "inode/blockdevice", "a block device"),
    (stat.S_ISSOCK, "inode/socket", "a socket"),
    (stat.S_ISDIR, "inode/directory", "a folder"),
)

# A PDF whose header line was lost or mangled (test suites carry them; pypdf reads them): nothing but comment
# lines before its first "N G obj".
_HEADERLESS_PDF = re.compile(rb"\s*(?:%[^\r\n]*[\r\n]+\s*)*\d+\s+\d+\s+obj\b")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def sniff_mime(head: bytes) -> str:
    """The MIME type the first bytes announce (extensions are never trusted); octet-stream when unknown."""
    if b"%PDF-" in head[:HEAD] or _HEADERLESS_PDF.match(head[:HEAD]):
        return "application/pdf"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    return OCTET_STREAM


def skip_reason(doc: Document) -> tuple[ErrorType, str]:
    """(error_type, message) of a document that is not sent (kind None)."""
    if doc.error_type is not None:
        return doc.error_type, doc.error_message or doc.error_type
    if doc.size_bytes == 0:
        return "empty", "empty file (0 bytes)"
    return "unsupported", f"unsupported file type {doc.mime_type}: docrouter reads PDF, PNG, JPEG, WebP and GIF"


def discover_documents(
    sources: Sequence[str | Path],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    recursive: bool = True,
    skip: Sequence[str | Path] = (),
) -> Iterator[Document]:
    """Every file under the sources (a source may be one file), typed by its bytes and hashed, sorted by path.

    Selection: a pattern matches a file when `fnmatch` (case-sensitive, `*` also crosses `/`, a leading `**/`
    is optional) matches its POSIX path relative to the source root or its basename. A file is kept when no
    include is given or one matches, and no exclude matches; a folder matching an exclude is not entered.
    Hidden files and folders (name starting with ".") are skipped, unless a source names one itself, and so
    are the folders in `skip` (the output folder). Symlinks are followed only when their target resolves
    inside the source root; each real folder is walked once over all sources, so loops are impossible and a
    file under overlapping or repeated sources comes out once, under the first source that holds it.
    Entries that are not documents come out with kind None and a reason (`skip_reason`): zero bytes (empty),
    FIFO, device or socket (unsupported: never opened), unreadable file or folder, looping or dangling link
    (unreadable). Sources are walked in the order given; an unreadable source is a ConfigError.
    """
    walk = _Walk(exclude, recursive, {os.path.realpath(s) for s in skip})
    for source in sources:
        root, found = walk.source(Path(source))
        for entry in sorted(found, key=lambda e: e.rel):
            where = os.path.join(root, entry.rel)  # the same file under another source has the same place
            if where in walk.emitted:
                continue
            walk.emitted.add(where)
            if entry.error is not None:
                yield _unlistable(entry, root)
            elif _selected(entry.rel, include, exclude):
                yield _document(entry, root)


def check_source(source: str | Path) -> None:
    """A ConfigError when a source does not exist (a dangling link counts as a file) or is a folder that
    cannot be listed: a run-level failure, unlike an unreadable folder inside it (a row)."""
    path = Path(source)
    if not path.exists() and not path.is_symlink():
        raise ConfigError(f"source not found: {source}")
    if path.is_dir():
        try:
            os.scandir(path).close()
        except OSError as exc:
            raise ConfigError(f"cannot read source {source}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class _Entry:
    """A file (or a folder that could not be listed: `error`) found under a root."""

    path: str
    rel: str  # POSIX, relative to the root, in the filesystem's str form
    error: OSError | None = None


@dataclass
class _Walk:
    """One discovery over several sources: the real folders walked and the paths emitted so far."""

    exclude: Sequence[str]
    recursive: bool
    skip: set[str]
    seen: set[str] = field(default_factory=set)
    emitted: set[str] = field(default_factory=set)

    def source(self, source: Path) -> tuple[str, list[_Entry]]:
        """The real root of one source and its entries (none when an earlier source walked it already)."""
        check_source(source)
        if not source.is_dir():
            root = os.path.realpath(source.absolute().parent)
            return root, [_Entry(str(source.absolute()), source.name)]  # the path as given (runs.named_files)
        root = os.path.realpath(source)
        if root in self.seen:
            return root, []
        self.seen.add(root)
        return root, self._walk(root)

    def _walk(self, root: str) -> list[_Entry]:
        """Files under root: links only when they stay inside, hidden, skipped and excluded folders pruned."""
        found: list[_Entry] = []
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
            except OSError as exc:  # a folder that cannot be listed is a row, never a silent gap
                found.append(_Entry(folder, _relative(folder, root), exc))
                continue
            for entry in entries:
                if not entry.name.startswith("."):
                    self._visit(entry, root, stack, found)
        return found

    def _visit(self, entry: os.DirEntry[str], root: str, stack: list[str], found: list[_Entry]) -> None:
        real = os.path.realpath(entry.path)
        if entry.is_symlink() and not Path(real).is_relative_to(root):
            return
        rel = _relative(entry.path, root)
        if not os.path.isdir(real):
            found.append(_Entry(entry.path, rel))
        elif self.recursive and real not in self.seen and real not in self.skip and not _matches(rel, self.exclude):
            self.seen.add(real)
            stack.append(entry.path)


def _relative(path: str, root: str) -> str:
    return Path(path).relative_to(root).as_posix()


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        if any(fnmatchcase(candidate, p) for candidate in (rel, name) for p in (pattern, bare)):
            return True
    return False


def _selected(rel: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    return (not include or _matches(rel, include)) and not _matches(rel, exclude)


class _NotRegular(Exception):
    """The path turned out not to be a regular file once opened (swapped since it was stat'ed)."""

    def __init__(self, mode: int) -> None:
        super().__init__(mode)
        self.mode = mode


def _document(entry: _Entry, root: str) -> Document:
    """The Document for one file; files without usable bytes become data, not exceptions (and never block)."""
    try:
        info = os.stat(entry.path)
    except OSError as exc:  # looping or dangling link, vanished, no permission on the way
        return _byteless(entry, root, _lstat(entry.path), *_stat_failure(entry.path, exc))
    if not stat.S_ISREG(info.st_mode):  # FIFO, socket, device: opening could block or have side effects
        return _byteless(entry, root, info, *_special(info.st_mode))
    try:
        digest, head = _hash(entry.path)
    except _NotRegular as swapped:
        return _byteless(entry, root, info, *_special(swapped.mode))
    except OSError as exc:
        reason = "permission denied" if exc.errno == errno.EACCES else f"cannot read it: {exc.strerror or exc}"
        return _byteless(entry, root, info, "unreadable", f"{reason} (the file was not read)", UNREADABLE_MIME)
    mime = sniff_mime(head) if info.st_size else EMPTY_MIME
    doc = Document(
        entry.path, escape_name(entry.rel), escape_name(root), info.st_size, digest, mime, SUPPORTED_MIME.get(mime)
    )
    return doc if doc.kind is not None else _with_reason(doc)


def _with_reason(doc: Document) -> Document:
    error_type, message = skip_reason(doc)
    return replace(doc, error_type=error_type, error_message=message)


def _unlistable(entry: _Entry, root: str) -> Document:
    """The row for a folder that could not be listed: what is in it was not discovered."""
    assert entry.error is not None
    reason = "permission denied" if entry.error.errno == errno.EACCES else entry.error.strerror or str(entry.error)
    message = f"folder cannot be listed ({reason}): the files in it were not discovered"
    return _byteless(entry, root, _lstat(entry.path), "unreadable", message, "inode/directory")


def _byteless(
    entry: _Entry, root: str, info: os.stat_result | None, error_type: ErrorType, message: str, mime: str
) -> Document:
    """A Document without readable bytes; its identity is its place, size and mtime (so a rerun knows it)."""
    rel, stored_root = escape_name(entry.rel), escape_name(root)
    size, mtime = (info.st_size, info.st_mtime_ns) if info else (0, 0)
    doc_id = byteless_id(stored_root, rel, size, mtime)
    return Document(entry.path, rel, stored_root, size, doc_id, mime, None, error_type, message)


def byteless_id(source_root: str, rel_path: str, size_bytes: int, mtime_ns: int) -> str:
    """The doc_id of an entry whose bytes cannot be read: SHA-256 of its place, size and modification time."""
    return hashlib.sha256(f"no-bytes\0{source_root}\0{rel_path}\0{size_bytes}\0{mtime_ns}".encode()).hexdigest()


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _stat_failure(path: str, exc: OSError) -> tuple[ErrorType, str, str]:
    """(error_type, message, mime) for a path whose stat failed."""
    if exc.errno == errno.ELOOP:
        return "unreadable", "symlink loop: the link never reaches a file", "inode/symlink"
    if os.path.islink(path):
        return "unreadable", f"dangling symlink: its target {os.readlink(path)} does not exist", "inode/symlink"
    if exc.errno == errno.ENOENT:
        return "changed", "the file vanished while it was being discovered", UNREADABLE_MIME
    return "unreadable", f"cannot read it: {exc.strerror or exc}", UNREADABLE_MIME


def _special(mode: int) -> tuple[ErrorType, str, str]:
    """(error_type, message, mime) for an entry that is not a regular file."""
    for test, mime, what in _SPECIAL:
        if test(mode):
            return "unsupported", f"{what}, not a regular file: never opened", mime
    return "unsupported", f"not a regular file (mode {stat.filemode(mode)}): never opened", OCTET_STREAM


def _hash(path: str) -> tuple[str, bytes]:
    """(SHA-256 hex, first bytes) read in CHUNK-sized pieces; a FIFO swapped in since the stat never blocks."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _NotRegular(mode)
        sha = hashlib.sha256()
        head = b""
        while chunk := f.read(CHUNK):
            if not head:
                head = chunk[:HEAD]
            sha.update(chunk)
    return sha.hexdigest(), head
