"""Opening PDFs with pypdf and reading page text, with pypdf's failures turned into DocumentErrors or data."""

from __future__ import annotations

import contextlib
import io
import logging
import mmap
import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pypdf import PdfReader
from pypdf.errors import DependencyError, PyPdfError

from docrouter.errors import Corrupt, Empty, Encrypted
from docrouter.pdfscan import HUGE_PAGE, content_bytes

# What pypdf is seen to raise on malformed input, besides its own errors (pdf-heuristics.md §3.2):
# a broken file or page is data, never a crash.
PDF_FAILURES: tuple[type[BaseException], ...] = (
    PyPdfError,
    DependencyError,
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    AssertionError,
    ArithmeticError,
    NotImplementedError,
    EOFError,
    struct.error,
    zlib.error,
)


class _Collector(logging.Handler):
    """Keeps what pypdf logs (repairs, odd fonts) instead of letting it reach stderr."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def pypdf_messages() -> Iterator[list[str]]:
    """The warnings pypdf logs inside the block (a repaired xref, a rebuilt object table...)."""
    logger = logging.getLogger("pypdf")
    collector, level = _Collector(), logger.level
    logger.addHandler(collector)
    logger.setLevel(logging.WARNING)  # whatever another part of the process (or a user) set it to
    try:
        yield collector.messages
    finally:
        logger.removeHandler(collector)
        logger.setLevel(level)


@dataclass(frozen=True)
class OpenedPdf:
    """A readable PDF and what opening it revealed."""

    reader: PdfReader
    pages: int
    encrypted: bool  # owner-password-only: opened with the empty password
    repaired: bool  # pypdf warned while opening: it had to repair the file
    producer: str | None


def open_pdf(path: str) -> OpenedPdf:
    """The opened PDF; raises Corrupt, Encrypted or Empty with a message a person can act on."""
    with pypdf_messages() as messages:
        try:
            reader = PdfReader(path, strict=False)
            encrypted = reader.is_encrypted
            if encrypted:
                _decrypt(reader)
            index_unlisted_objects(reader)
            pages = len(reader.pages)
        except (Encrypted, MemoryError, RecursionError):
            raise
        except OSError as exc:
            raise Corrupt(f"cannot read the file ({_describe(exc)})") from exc
        except PDF_FAILURES as exc:
            raise Corrupt(f"cannot parse this PDF ({_describe(exc)}); it may be truncated or damaged") from exc
        repaired = bool(messages)
    if pages == 0:
        raise Empty("the PDF has no pages")
    return OpenedPdf(reader, pages, encrypted, repaired, _producer(reader))


_OBJECT_HEADER = re.compile(rb"\s(\d{1,10})\s+(\d{1,5})\s+obj")


def index_unlisted_objects(reader: PdfReader) -> None:
    """Add the objects a broken xref does not list, at their first definition in the file, in one pass.

    pypdf finds each unlisted object with a regex search of the whole file, the first time it is asked for:
    format-corpus/027613.pdf (1.6 MB, a broken xref chain) cost 1,400 such searches, 8 of its 9 s of
    inspection. One pass finds the same offsets (same pattern, first match), so pypdf reads the same objects.
    A whole xref lists everything, so the pass (~5 ms per MB) is made only when it is short.
    """
    if not xref_is_short(reader):
        return
    data = _all_bytes(reader.stream)
    try:
        for match in _OBJECT_HEADER.finditer(data):
            number, generation = int(match.group(1)), int(match.group(2))
            listed = reader.xref.setdefault(generation, {})
            if number not in listed and not (generation == 0 and number in reader.xref_objStm):
                listed[number] = match.start(1)
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def xref_is_short(reader: PdfReader) -> bool:
    """Whether the xref lists fewer objects than the trailer's /Size says exist (a broken or partial table)."""
    size: Any = reader.trailer.get("/Size")
    try:
        size = int(size)
    except (TypeError, ValueError):  # no usable /Size: assume the worst
        return True
    listed = sum(len(objects) for objects in reader.xref.values()) + len(reader.xref_objStm)
    return listed < size - 1  # object 0 is always free


def _all_bytes(stream: Any) -> bytes | mmap.mmap:
    """The whole file behind a reader's stream (an open file is mapped, not read; its position is kept)."""
    if isinstance(stream, io.BytesIO):
        return stream.getvalue()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
    position = stream.tell()
    try:
        stream.seek(0)
        return bytes(stream.read())
    finally:
        stream.seek(position)


def _decrypt(reader: PdfReader) -> None:
    try:
        opened = reader.decrypt("")
    except (NotImplementedError, DependencyError, PyPdfError, ValueError, LookupError) as exc:
        raise Encrypted(f"the PDF's encryption cannot be opened ({_describe(exc)}); save a decrypted copy") from exc
    if not opened:
        raise Encrypted("the PDF needs a password to open; save a copy without the password and run again")


def _producer(reader: PdfReader) -> str | None:
    try:
        info: dict = reader.metadata or {}
        value = info.get("/Producer") or info.get("/Creator")
    except PDF_FAILURES:
        return None
    return str(value)[:200] if value else None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def page_text(reader: PdfReader, index: int) -> str:
    """One page's text; raises what pypdf raises (callers decide what a broken page means)."""
    page = reader.pages[index]
    if len(content_bytes(page)) > HUGE_PAGE:
        raise TooBig(f"page {index + 1} has more than {HUGE_PAGE // (1024 * 1024)} MB of drawing instructions")
    return page.extract_text() or ""


class TooBig(Exception):
    """A page too heavy to extract text from safely (pypdf's memory grows with the content stream)."""


PAGE_FAILURES: tuple[type[BaseException], ...] = (*PDF_FAILURES, TooBig, RecursionError)  # one page, not the file


def extract_text(path: str, pages: Sequence[int] | None = None) -> list[str]:
    """Per-page text (all pages, or the given 0-based ones); a page that fails or is too heavy gives "".

    Raises Corrupt, Encrypted or Empty when the file itself cannot be opened.
    """
    with pypdf_messages():
        opened = open_pdf(path)
        wanted = range(opened.pages) if pages is None else pages
        return [_text_or_empty(opened.reader, index) for index in wanted]


def _text_or_empty(reader: PdfReader, index: int) -> str:
    try:
        return page_text(reader, index)
    except PAGE_FAILURES:
        return ""
