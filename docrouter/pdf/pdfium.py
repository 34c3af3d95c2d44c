"""Reading PDFs with PDFium (pypdfium2): the fallback opener and extractor when pypdf cannot read a file.

PDFium is the engine of Chrome's PDF viewer: it opens many files pypdf rejects (a missing %%EOF, a broken
xref it rebuilds silently) and extracts text 5-25x faster. It is not thread-safe, so every call into it in
one process takes one lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from docrouter.errors import Corrupt, Empty, Encrypted
from docrouter.pdf.pdfscan import INVISIBLE_MODES, PageScan

PdfiumError = pdfium.PdfiumError
LOCK = threading.RLock()  # PDFium keeps global state: one call at a time per process
_TEXT, _IMAGE, _PATH = pdfium_c.FPDF_PAGEOBJ_TEXT, pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_PATH
_PASSWORD_ERRORS = frozenset({pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY})


@dataclass
class PdfiumPdf:
    """A PDF opened with PDFium, read page by page like an OpenedPdf (close it, or use `opened_pdfium`)."""

    document: pdfium.PdfDocument
    pages: int
    producer: str | None
    encrypted: bool = False
    repaired: bool = False
    name: str = "pdfium"
    fallback: str = ""  # why PDFium read it, not pypdf
    closed: bool = field(default=False, init=False)

    def scan(self, index: int) -> PageScan:
        """The raw operator scan from PDFium's page objects: text, images (largest share), paths."""
        with LOCK:
            page = self.document[index]
            try:
                return _scan(page)
            finally:
                page.close()

    def text(self, index: int) -> str:
        """One page's text ("" for a page without a text layer)."""
        with LOCK:
            page = self.document[index]
            try:
                textpage = page.get_textpage()
                try:
                    return str(textpage.get_text_range()).replace("\r\n", "\n")
                finally:
                    textpage.close()
            finally:
                page.close()

    def close(self) -> None:
        """Release PDFium's document."""
        with LOCK:
            if not self.closed:
                self.document.close()
                self.closed = True


def open_pdfium(source: str | bytes) -> PdfiumPdf:
    """The PDF (a path, or its bytes) opened with PDFium (empty password tried); raises Corrupt, Encrypted or Empty."""
    with LOCK:
        try:
            document = pdfium.PdfDocument(source, password="")
        except pdfium.PdfiumError as exc:
            if exc.err_code in _PASSWORD_ERRORS:
                raise Encrypted("the PDF needs a password to open; save a copy without the password") from exc
            raise Corrupt(f"PDFium cannot open it either ({exc})") from exc
        pages = len(document)
        if pages == 0:
            document.close()
            raise Empty("the PDF has no pages")
        return PdfiumPdf(document, pages, _producer(document))


@contextmanager
def opened_pdfium(source: str | bytes) -> Iterator[PdfiumPdf]:
    """open_pdfium, closed after the block."""
    opened = open_pdfium(source)
    try:
        yield opened
    finally:
        opened.close()


def pdfium_text(source: str | bytes, pages: Sequence[int] | None = None) -> list[str]:
    """Per-page text with PDFium (all pages, or the given 0-based ones; "" past the end)."""
    with opened_pdfium(source) as opened:
        wanted = range(opened.pages) if pages is None else pages
        return [opened.text(index) if 0 <= index < opened.pages else "" for index in wanted]


def _producer(document: pdfium.PdfDocument) -> str | None:
    info = document.get_metadata_dict(skip_empty=True)
    value = info.get("Producer") or info.get("Creator")
    return str(value)[:200] if value else None


def _scan(page: pdfium.PdfPage) -> PageScan:
    """Counts over the page's objects (forms included), the same quantities pdfscan reads from operators."""
    width, height = page.get_size()
    area = abs(width * height) or 1.0
    text = invisible = images = paths = 0
    largest = 0.0
    for obj in page.get_objects(filter=[_TEXT, _IMAGE, _PATH]):
        if obj.type == _TEXT:
            text += 1
            invisible += pdfium_c.FPDFTextObj_GetTextRenderMode(obj.raw) in INVISIBLE_MODES
        elif obj.type == _IMAGE:
            images += 1
            left, bottom, right, top = obj.get_bounds()
            largest = max(largest, abs((right - left) * (top - bottom)))
        else:
            paths += max(1, pdfium_c.FPDFPath_CountSegments(obj.raw))  # pypdf's scan counts path operators
    return PageScan(
        text_ops=text, invisible_ops=invisible, images=images, path_ops=paths, max_image_cov=min(1.0, largest / area)
    )
