"""Opening PDFs with pypdf and reading page text, with pypdf's failures turned into DocumentErrors or data."""

from __future__ import annotations

import contextlib
import io
import logging
import mmap
import re
import struct
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from pypdf import PdfReader
from pypdf.errors import DependencyError, PyPdfError

from docrouter.errors import Corrupt, DocumentError, Empty, Encrypted
from docrouter.pdf.pdfium import PdfiumError, PdfiumPdf, open_pdfium, pdfium_text
from docrouter.pdf.pdfscan import HUGE_PAGE, FormCache, PageScan, content_bytes, scan_page

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


NOTE_CHARS = 500  # pypdf dumps whole font dictionaries into some messages
MAX_NOTES = 50  # per document: enough to see what was wrong, bounded for a file that complains per glyph
_NOTES: ContextVar[list[str] | None] = ContextVar("docrouter_pdf_notes", default=None)
log = logging.getLogger("docrouter.pdf")


class _Router(logging.Handler):
    """Where pypdf's log records go instead of the console: the document's notes (if collected) and DEBUG."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()[:NOTE_CHARS]
        notes = _NOTES.get()
        if notes is not None and len(notes) < MAX_NOTES:
            notes.append(message)
        log.debug("pypdf: %s", message)


def quiet_pypdf() -> None:
    """Keep pypdf's repair notes off the console (they reach DEBUG and the run's log file instead).

    A whole corpus run printed 3,489 lines (2.9 MB) through the root logger's console handler (Prefect's),
    burying the progress lines; the notes are about the files, and a person reads them per file in the log.
    Called on every pypdf_messages block: a later logging.config.dictConfig (Prefect's) resets the logger.
    """
    logger = logging.getLogger("pypdf")
    if not any(isinstance(handler, _Router) for handler in logger.handlers):
        logger.addHandler(_Router())
    logger.propagate = False
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)


@contextmanager
def pypdf_messages() -> Iterator[list[str]]:
    """The warnings pypdf logs inside the block, in this thread (a repaired xref, a rebuilt object table...).

    Nested blocks share the outer block's list, so a document's notes gather in one place.
    """
    quiet_pypdf()
    outer = _NOTES.get()
    if outer is not None:
        yield outer
        return
    notes: list[str] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)


@dataclass(frozen=True)
class OpenedPdf:
    """A readable PDF and what opening it revealed."""

    reader: PdfReader
    pages: int
    encrypted: bool  # owner-password-only: opened with the empty password
    repaired: bool  # pypdf warned while opening: it had to repair the file
    producer: str | None
    forms: FormCache = field(default_factory=FormCache)  # a logo's form on every page is scanned once
    name: str = "pypdf"

    def scan(self, index: int) -> PageScan:
        """The raw operator scan of one page; raises what pypdf raises on a broken page."""
        return scan_page(self.reader.pages[index], self.forms)

    def text(self, index: int) -> str:
        """One page's text; raises what pypdf raises (or TooBig)."""
        return page_text(self.reader, index)

    def close(self) -> None:
        """Nothing to release: pypdf holds Python objects only."""


def open_pdf(path: str) -> OpenedPdf:
    """The opened PDF; raises Corrupt, Encrypted or Empty with a message a person can act on."""
    with pypdf_messages() as messages:
        before = len(messages)
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
        repaired = len(messages) > before
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
    declared: Any = reader.trailer.get("/Size")
    try:
        size = int(declared)
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
        info: dict[str, Any] = reader.metadata or {}
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


# One page, not the file (PDFium's errors too: a page it cannot load).
PAGE_FAILURES: tuple[type[BaseException], ...] = (*PDF_FAILURES, TooBig, RecursionError, PdfiumError)


def open_readable(path: str) -> OpenedPdf | PdfiumPdf:
    """The file opened with pypdf, or with PDFium when pypdf cannot parse it; raises pypdf's error when neither can.

    pypdf stays the primary reader (the inspection heuristics are built on it); PDFium opens what pypdf
    rejects (a truncated file, a missing %%EOF, a broken object table) and its `fallback` says why it was used.
    """
    try:
        return open_pdf(path)
    except (Corrupt, RecursionError) as exc:
        failure = exc
    try:
        opened = open_pdfium(path)
    except DocumentError:
        raise failure from None
    why = failure.message if isinstance(failure, Corrupt) else "its structure nests too deeply"
    opened.fallback = f"pypdf could not open it: {why}"
    return opened


# From this many pages on, PDFium extracts the text (same words, 6-40x faster on the corpus's 45-619 page
# documents: bench/RESULTS.md); shorter ones keep pypdf, the reader the inspection judged them with.
PDFIUM_FROM_PAGES = 50


def extract_text(
    path: str, pages: Sequence[int] | None = None, *, deadline: float | None = None, pdfium_from: int | None = None
) -> list[str]:
    """Per-page text (all pages, or the given 0-based ones; "" for a page past the end or without text).

    pypdf reads each page; PDFium reads a file pypdf cannot open, the pages pypdf fails on or finds too heavy,
    every page still unread when `deadline` (time.monotonic()) passes, and all of them when at least
    `pdfium_from` pages are asked for. Raises Corrupt, Encrypted or Empty when the file cannot be opened.
    """
    with pypdf_messages():
        opened = open_readable(path)
        try:
            wanted = list(range(opened.pages) if pages is None else pages)
            if opened.name == "pypdf" and pdfium_from is not None and len(wanted) >= pdfium_from:
                deadline = 0.0  # every page is PDFium's (pypdf's reading stays the fallback below)
            texts = [_text_or_none(opened, index, deadline) for index in wanted]
        finally:
            opened.close()
        unread = [index for index, text in zip(wanted, texts, strict=True) if text is None]
        again = dict(zip(unread, _pdfium_pages(path, unread), strict=True)) if unread else {}
        return [again.get(index, "") if text is None else text for index, text in zip(wanted, texts, strict=True)]


def _text_or_none(opened: OpenedPdf | PdfiumPdf, index: int, deadline: float | None) -> str | None:
    """The page's text, "" past the end, None when pypdf failed or ran out of time (PDFium's turn)."""
    if not 0 <= index < opened.pages:
        return ""
    if opened.name == "pypdf" and deadline is not None and time.monotonic() > deadline:
        return None
    try:
        return opened.text(index)
    except PAGE_FAILURES:
        return None if opened.name == "pypdf" else ""


def _pdfium_pages(path: str, pages: Sequence[int]) -> list[str]:
    """PDFium's text of the pages pypdf could not read ("" each when PDFium cannot open the file)."""
    try:
        return pdfium_text(path, pages)
    except DocumentError:
        return [""] * len(pages)
