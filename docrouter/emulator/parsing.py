"""The file-parser plugin's engines: what each one honestly gets out of a PDF, and its annotation."""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pypdf import PdfReader

from docrouter.errors import DocumentError
from docrouter.pdf.pdfium import pdfium_text
from docrouter.pdf.pdfreading import pypdf_messages

ENGINES = ("mistral-ocr", "cloudflare-ai", "native")
ENGINE_ALIASES = {"pdf-text": "cloudflare-ai"}  # deprecated, "automatically redirected"
PARSING_ENGINES = frozenset({"mistral-ocr", "cloudflare-ai"})
PARSE_BUDGET_S = 30.0  # per document: past this, remaining pages are marked instead of read


class ParseFailure(Exception):
    """The PDF cannot be parsed at all (encrypted, corrupt); becomes a 400 "Failed to parse"."""


@dataclass(frozen=True)
class PageText:
    """The text layer of one page ("" when there is none), or why it could not be read."""

    text: str
    problem: str | None = None

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())


@dataclass(frozen=True)
class ParsedFile:
    """One file as the model receives it: the annotation content parts, and what parsing cost."""

    hash: str
    name: str
    engine: str
    pages: int
    content: tuple[dict[str, Any], ...]  # [{"type": "text", "text": '<file name="...">'}, page parts...]
    pages_with_text: tuple[bool, ...]
    ocr_pages: int = 0  # pages billed by mistral-ocr (0 when reused or another engine)
    reused: bool = False

    @property
    def text(self) -> str:
        """The parsed text the model reads (the content parts after the file-name wrapper)."""
        return "\n\n".join(str(p["text"]) for p in self.content if p.get("type") == "text" and not is_wrapper(p))

    def annotation(self) -> dict[str, Any]:
        """The documented file annotation: {"type": "file", "file": {hash, name, content}}."""
        return {"type": "file", "file": {"hash": self.hash, "name": self.name, "content": list(self.content)}}


def read_pages(data: bytes, *, budget_s: float = PARSE_BUDGET_S) -> tuple[PageText, ...]:
    """The text layer of every page, read with pypdf (PDFium when pypdf cannot open it); a page that fails is
    marked, not fatal."""
    with pypdf_messages():  # pypdf's repair notes are not the emulator's news: kept off the console
        return _read_pages(data, budget_s)


def _read_pages(data: bytes, budget_s: float) -> tuple[PageText, ...]:
    try:
        reader = open_pdf(data)
        try:
            count = len(reader.pages)
        except Exception as exc:  # pypdf raises many types on broken page trees
            raise ParseFailure(f"the page tree cannot be read ({type(exc).__name__})") from None
    except ParseFailure as failure:
        return _pdfium_pages(data, failure)
    deadline = time.monotonic() + budget_s
    pages = []
    for index in range(count):
        if time.monotonic() > deadline:
            pages.append(PageText("", f"not read: the emulator's {budget_s:.0f} s parse budget ran out"))
            continue
        pages.append(_page_text(reader, index))
    return tuple(pages)


def _pdfium_pages(data: bytes, failure: ParseFailure) -> tuple[PageText, ...]:
    """What PDFium reads of a file pypdf could not open (as docrouter itself falls back); pypdf's failure when
    PDFium cannot open it either, or the file needs a password."""
    if "encrypted" in str(failure):
        raise failure
    try:
        return tuple(PageText(clean_text(text)) for text in pdfium_text(data))
    except DocumentError:
        raise failure from None


def clean_text(text: str) -> str:
    """Text safe to send as UTF-8 JSON: pypdf can return lone surrogates from broken font maps."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _page_text(reader: PdfReader, index: int) -> PageText:
    try:
        return PageText(clean_text(reader.pages[index].extract_text() or ""))
    except Exception as exc:  # real PDFs raise odd exceptions per page; the rest of the file still counts
        return PageText("", f"the text could not be read ({type(exc).__name__})")


def open_pdf(data: bytes) -> PdfReader:
    """A reader for the bytes, opened with the empty password if encrypted."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseFailure("the PDF is encrypted with a password")
        return reader
    except ParseFailure:
        raise
    except Exception as exc:  # corrupt files raise anything from PdfReadError to RecursionError
        raise ParseFailure(f"the PDF is corrupt ({type(exc).__name__}: {str(exc)[:120]})") from None


CLOSING_PART = {"type": "text", "text": "</file>"}
# What OCR annotations carry for a page image when image parts are switched on: a 1x1 PNG stands in for it.
PAGE_IMAGE_URL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGP4DwABAQEAWk1v8QAAAABJRU5ErkJggg=="
)


def wrapper_part(name: str) -> dict[str, Any]:
    """The first content part of every annotation, as observed in live traffic (the last is CLOSING_PART)."""
    return {"type": "text", "text": f'<file name="{name}">'}


def is_wrapper(part: dict[str, Any]) -> bool:
    """The `<file name=...>` or `</file>` part around the parsed text."""
    text = str(part.get("text", ""))
    return part.get("type") == "text" and (text == CLOSING_PART["text"] or text.startswith("<file name="))


def parse(
    engine: str, file_hash: str, name: str, pages: tuple[PageText, ...], *, image_parts: bool = False
) -> ParsedFile:
    """What `engine` makes of the pages: mistral-ocr reads text layers and says which pages are images (with
    `image_parts`, also sends each as an image_url part, as recorded OCR annotations may); cloudflare-ai (the
    text-layer parser) keeps only pages with text; native keeps the file as is."""
    parts = [wrapper_part(name)]
    for number, page in enumerate(pages, start=1):
        if page.problem:
            parts.append({"type": "text", "text": f"[page {number}: {page.problem}]"})
        elif page.has_text:
            parts.append({"type": "text", "text": page.text.strip()})
        elif engine == "mistral-ocr":
            parts.append({"type": "text", "text": f"[page {number}: image without a text layer]"})
            if image_parts:
                parts.append({"type": "image_url", "image_url": {"url": PAGE_IMAGE_URL}})
    parts.append(dict(CLOSING_PART))
    return ParsedFile(
        hash=file_hash,
        name=name,
        engine=engine,
        pages=len(pages),
        content=tuple(parts),
        pages_with_text=tuple(p.has_text for p in pages),
        ocr_pages=len(pages) if engine == "mistral-ocr" else 0,
    )


def reuse(engine: str, file_hash: str, name: str, content: list[dict[str, Any]]) -> ParsedFile:
    """A file whose parse arrived in an assistant message's annotations: nothing is parsed or billed."""
    parts = tuple(
        {**part, "text": clean_text(part["text"])} if isinstance(part.get("text"), str) else part
        for part in content
        if isinstance(part, dict)
    )
    return ParsedFile(
        hash=file_hash, name=clean_text(name), engine=engine, pages=0, content=parts, pages_with_text=(), reused=True
    )


class PageCache:
    """Recently read PDFs by content hash: retries of the same file are not re-read (thread-safe)."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._pages: OrderedDict[str, tuple[PageText, ...]] = OrderedDict()

    def pages(self, file_hash: str, data: bytes) -> tuple[PageText, ...]:
        """The pages of `data` (hash `file_hash`), read once."""
        with self._lock:
            if file_hash in self._pages:
                self._pages.move_to_end(file_hash)
                return self._pages[file_hash]
        pages = read_pages(data)
        with self._lock:
            self._pages[file_hash] = pages
            while len(self._pages) > self._size:
                self._pages.popitem(last=False)
        return pages
