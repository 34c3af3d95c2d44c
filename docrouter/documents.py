"""Documents: what a file is (by its bytes) and where it was found."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from stat import S_ISREG
from typing import Literal

from docrouter.errors import ConfigError

DocumentKind = Literal["pdf", "image"]

SUPPORTED_MIME: dict[str, DocumentKind] = {
    "application/pdf": "pdf",
    "image/png": "image",
    "image/jpeg": "image",
    "image/webp": "image",
    "image/gif": "image",
}


@dataclass(frozen=True)
class Document:
    """One file found under a source root; identity is the SHA-256 of its bytes."""

    path: str  # absolute filesystem path, for reading the bytes
    rel_path: str  # POSIX path relative to source_root (what the results show)
    source_root: str  # absolute POSIX path of the source it was found under
    size_bytes: int
    doc_id: str  # sha256 hex of the bytes ("" for files that could not be read)
    mime_type: str  # sniffed from the bytes; "application/octet-stream" when unknown
    kind: DocumentKind | None  # None: not a supported document type (a `skipped` row)


CHUNK = 1024 * 1024  # hash in 1 MiB reads: never the whole file in memory
HEAD = 1024  # real PDF readers accept the %PDF- header anywhere in the first 1024 bytes
EMPTY_MIME = "application/x-empty"  # zero bytes: kind None, the run reports it as `empty`
UNREADABLE_MIME = "application/x-unreadable"  # could not be read (permission, dangling link, FIFO): doc_id ""
OCTET_STREAM = "application/octet-stream"

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


def discover_documents(
    sources: Sequence[str | Path],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    recursive: bool = True,
) -> Iterator[Document]:
    """Every file under the sources (a source may be one file), typed by its bytes and hashed, sorted by path.

    Selection: a pattern matches a file when `fnmatch` (case-sensitive, `*` also crosses `/`, a leading `**/`
    is optional) matches its POSIX path relative to the source root or its basename. A file is kept when no
    include is given or one matches, and no exclude matches; a folder matching an exclude is not entered.
    Hidden files and folders (name starting with ".") are skipped, unless a source names one itself.
    Symlinks are followed only when their target resolves inside the source root; each real folder is
    walked once, so loops are impossible. Zero-byte files come out with mime EMPTY_MIME and kind None; files
    that cannot be read (permission, dangling link, FIFO or other non-regular file) with mime
    UNREADABLE_MIME, doc_id "" and kind None. Sources are walked in the order given.
    """
    for source in sources:
        path = Path(source)
        if not path.exists() and not path.is_symlink():
            raise ConfigError(f"source not found: {source}")
        if path.is_dir():
            root = Path(os.path.realpath(path))
            found = _walk(root, exclude, recursive)
        else:
            root, found = Path(os.path.realpath(path.absolute().parent)), [(path.absolute(), path.name)]
        for file, rel in sorted(found, key=lambda pair: pair[1]):
            if _selected(rel, include, exclude):
                yield _document(file, rel, root)


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        if any(fnmatchcase(candidate, p) for candidate in (rel, name) for p in (pattern, bare)):
            return True
    return False


def _selected(rel: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    return (not include or _matches(rel, include)) and not _matches(rel, exclude)


def _inside(target: str, root: Path) -> bool:
    return Path(target).is_relative_to(root)


def _walk(root: Path, exclude: Sequence[str], recursive: bool) -> list[tuple[Path, str]]:
    """(path, POSIX path relative to root) of the files under root: links only when they stay inside,
    hidden and excluded folders pruned."""
    files: list[tuple[Path, str]] = []
    seen = {str(root)}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:
            continue  # an unreadable folder holds nothing we can name
        for entry in entries:
            if entry.name.startswith("."):
                continue
            real = os.path.realpath(entry.path)
            if entry.is_symlink() and not _inside(real, root):
                continue
            rel = Path(entry.path).relative_to(root).as_posix()
            if os.path.isdir(real):
                if recursive and real not in seen and not _matches(rel, exclude):
                    seen.add(real)
                    stack.append(Path(entry.path))
            else:
                files.append((Path(entry.path), rel))
    return files


def _document(path: Path, rel: str, root: Path) -> Document:
    """The Document for one file; unreadable files become data, not exceptions."""
    common = {"path": str(path), "rel_path": rel, "source_root": root.as_posix()}
    try:
        stat = path.stat()
    except OSError:  # dangling or looping link, or the file vanished
        return Document(**common, size_bytes=0, doc_id="", mime_type=UNREADABLE_MIME, kind=None)
    if not S_ISREG(stat.st_mode):  # FIFO, socket, device: opening could block forever
        return Document(**common, size_bytes=0, doc_id="", mime_type=UNREADABLE_MIME, kind=None)
    try:
        digest, head = _hash(path)
    except OSError:  # permission denied, I/O error
        return Document(**common, size_bytes=stat.st_size, doc_id="", mime_type=UNREADABLE_MIME, kind=None)
    mime = sniff_mime(head) if stat.st_size else EMPTY_MIME
    return Document(**common, size_bytes=stat.st_size, doc_id=digest, mime_type=mime, kind=SUPPORTED_MIME.get(mime))


def _hash(path: Path) -> tuple[str, bytes]:
    """(SHA-256 hex, first bytes) read in CHUNK-sized pieces."""
    sha = hashlib.sha256()
    head = b""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            if not head:
                head = chunk[:HEAD]
            sha.update(chunk)
    return sha.hexdigest(), head
