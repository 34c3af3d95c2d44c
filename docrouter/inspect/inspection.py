"""Inspection: what reading a document needs (text layer, scan, OCR layer), measured locally."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import struct
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from PIL import Image

from docrouter.discover.documents import Document, DocumentKind
from docrouter.errors import Corrupt, DocumentError, Empty, TooLarge, Unsupported
from docrouter.inspect.isolation import Failure, WorkerPool
from docrouter.inspect.pagelabels import choose_sample, label_page, label_unread, labels_by_look
from docrouter.inspect.pdfwork import PdfLimits, failure_error
from docrouter.inspect.textquality import TextQuality, measure_text
from docrouter.pdf.pdfium import PdfiumPdf, open_pdfium
from docrouter.pdf.pdfreading import PAGE_FAILURES, OpenedPdf, extract_text, open_readable, pypdf_messages
from docrouter.pdf.pdfscan import PageScan
from docrouter.vocabulary import ErrorType

__all__ = [
    "PAGE_LABELS",
    "NEEDS_READING",
    "Inspection",
    "extract_text",
    "inspect_document",
    "inspect_image",
    "inspect_isolated",
    "inspection_pool",
]

# Per-page labels (reference/pdf-heuristics.md §3.3).
PAGE_LABELS = (
    "text",  # usable text layer
    "text-degraded",  # usable for summaries, flagged
    "ocr-good",  # scan with a good OCR layer
    "ocr-poor",  # scan with a poor OCR layer: needs OCR/native
    "garbled",  # text layer decodes to garbage: needs OCR/native
    "image-only",  # scan without text: needs OCR/native
    "vector",  # text drawn as outlines: needs OCR/native
    "blank",  # nothing on the page
    "unsampled",  # only the raw operator scan saw it, and it looked like text
)
NEEDS_READING = frozenset({"ocr-poor", "garbled", "image-only", "vector"})
USABLE = frozenset({"text", "text-degraded", "ocr-good", "unsampled"})  # pages whose text layer can be sent
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF"})
Readable = OpenedPdf | PdfiumPdf


@dataclass(frozen=True)
class Inspection:
    """What local inspection learned about one document (or why it could not)."""

    doc_id: str
    kind: DocumentKind
    pages: int = 0  # PDF pages; 1 for an image
    error_type: ErrorType | None = None  # encrypted|corrupt|empty|unsupported|too_large|too_complex
    error_message: str | None = None
    producer: str | None = None
    encrypted: bool = False  # owner-password-only encryption, opened with the empty password
    repaired: bool = False  # pypdf had to repair the file while reading it
    reader: str = "pypdf"  # pypdf, or pdfium when pypdf could not read the file
    reader_note: str = ""  # why PDFium read it (empty when pypdf did)
    notes: tuple[str, ...] = ()  # what the PDF libraries complained about (repairs, odd fonts): for the run's log
    page_labels: tuple[str, ...] = ()  # one of PAGE_LABELS per page
    ocr_pages: tuple[int, ...] = ()  # 0-based pages whose text layer cannot be used
    text_chars: int = 0  # estimated characters of usable text in the whole document
    verdict: str = ""  # text|scan|mixed|blank|image
    image_format: str | None = None  # PNG|JPEG|WEBP|GIF
    width: int = 0
    height: int = 0
    frames: int = 0

    @property
    def ok(self) -> bool:
        return self.error_type is None

    @property
    def needs_ocr(self) -> bool:
        return bool(self.ocr_pages)


def inspect_document(doc: Document, *, sample_pages: int = 10, time_budget_s: float = 20.0) -> Inspection:
    """What reading `doc` needs; never raises for a bad file (the Inspection carries error_type/message).

    PDFs follow pdf-heuristics.md §3.3: open with the empty password, a raw operator scan of every page,
    text metrics of `sample_pages` evenly spaced pages plus the suspicious ones, per-page labels, a verdict.
    Past `time_budget_s` the remaining pages are labelled from what was seen (never extracted). Images: the
    header only (format, size, frames).
    """
    kind: DocumentKind = doc.kind or ("image" if doc.mime_type.startswith("image/") else "pdf")
    try:
        if doc.size_bytes == 0:
            raise Empty("the file is empty (0 bytes)")
        if doc.kind is None:
            raise Unsupported(f"{doc.mime_type} is not a PDF, PNG, JPEG, WebP or GIF; convert it to one of those")
        if doc.kind == "image":
            return inspect_image(doc)
        return inspect_pdf(doc, sample_pages=sample_pages, deadline=time.monotonic() + time_budget_s)
    except DocumentError as exc:
        return Inspection(doc_id=doc.doc_id, kind=kind, error_type=exc.error_type, error_message=exc.message)
    except MemoryError:
        message = "reading this file needed more memory than allowed; split or compress it"
        return Inspection(doc_id=doc.doc_id, kind=kind, error_type="too_large", error_message=message)
    except RecursionError:
        message = "the file's structure nests too deeply to read (likely damaged); re-export or repair it"
        return Inspection(doc_id=doc.doc_id, kind=kind, error_type="corrupt", error_message=message)


def inspection_pool(
    limits: PdfLimits | None = None, *, workers: int = 2, sample_pages: int = 10
) -> WorkerPool[Document, Inspection]:
    """Worker processes that inspect one document at a time, each under the per-file time and memory limit."""
    limits = limits or PdfLimits()
    inspect = functools.partial(inspect_document, sample_pages=sample_pages, time_budget_s=limits.time_s * 0.6)
    return WorkerPool(inspect, workers=workers, timeout_s=limits.time_s, memory_mb=limits.memory_mb)


def inspect_isolated(
    docs: Iterable[Document], pool: WorkerPool[Document, Inspection] | None = None
) -> Iterator[tuple[Document, Inspection]]:
    """(document, inspection) for every document, in input order, each inspected in a worker process.

    The very Document objects passed in come back, paired with their Inspection. A file that takes longer
    than the pool's time limit gets error_type "too_complex"; one that needs more than its memory limit gets
    "too_large"; a worker that dies on a file gives "corrupt". Workers are reused across files, and across
    calls when a `pool` (see inspection_pool) is given; without one, a default pool lives for this call.
    """
    with contextlib.ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(inspection_pool())  # the default limits (a run passes its own pool)
        for doc, outcome in pool.map(docs):
            yield doc, outcome if isinstance(outcome, Inspection) else _failed(doc, outcome)


def _failed(doc: Document, failure: Failure) -> Inspection:
    """The Inspection for a file whose worker had to be stopped."""
    error = failure_error(failure, "inspection")
    return Inspection(
        doc_id=doc.doc_id, kind=doc.kind or "pdf", error_type=error.error_type, error_message=error.message
    )


def inspect_image(doc: Document) -> Inspection:
    """Format, size and frames from the image header (pixels are never decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # images.py decides on size
            with Image.open(doc.path) as image:
                fmt, (width, height) = image.format, image.size
                frames = int(getattr(image, "n_frames", 1))
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"{exc}; downscale the image before sending it") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:  # what Pillow raises on bad bytes
        raise Corrupt(f"cannot read this image ({type(exc).__name__}: {exc}); re-save it from an editor") from exc
    if fmt not in IMAGE_FORMATS:
        raise Unsupported(f"{fmt} images are not accepted; convert it to PNG or JPEG")
    return Inspection(
        doc_id=doc.doc_id,
        kind="image",
        pages=1,
        verdict="image",
        image_format=fmt,
        width=width,
        height=height,
        frames=frames,
    )


def inspect_pdf(doc: Document, *, sample_pages: int, deadline: float) -> Inspection:
    """Stages 0-3 of pdf-heuristics.md §3.3; raises DocumentError when the file cannot be used.

    pypdf reads the file; PDFium when pypdf cannot open it or read any of its pages.
    """
    with pypdf_messages() as notes:
        opened = open_readable(doc.path)
        try:
            inspection = inspect_opened(doc, opened, sample_pages, deadline)
        except Corrupt as exc:
            if opened.name != "pypdf":
                raise
            opened.close()
            opened = _pdfium_instead(doc.path, exc)
            inspection = inspect_opened(doc, opened, sample_pages, deadline)
        finally:
            opened.close()
        return dataclasses.replace(inspection, notes=tuple(notes))


def _pdfium_instead(path: str, failure: Corrupt) -> PdfiumPdf:
    """PDFium's reading of a file pypdf opened but could not read a page of; pypdf's error when PDFium fails too."""
    try:
        opened = open_pdfium(path)
    except DocumentError:
        raise failure from None
    opened.fallback = f"pypdf could not read its pages: {failure.message}"
    return opened


def inspect_opened(doc: Document, opened: Readable, sample_pages: int, deadline: float) -> Inspection:
    """The inspection of an opened PDF by whichever reader opened it (bench/ compares the two readers)."""
    scans = _scan_pages(opened, deadline=time.monotonic() + (deadline - time.monotonic()) / 2)
    qualities = _measure_pages(opened, choose_sample(scans, sample_pages), deadline)
    errors = [s.error for s in scans if s is not None and s.error is not None]
    if len(errors) == opened.pages:
        raise Corrupt(f"none of the {opened.pages} pages can be read ({errors[0]}); the file is damaged")
    labels = _label_pages(scans, qualities)
    return Inspection(
        doc_id=doc.doc_id,
        kind="pdf",
        pages=opened.pages,
        producer=opened.producer,
        encrypted=opened.encrypted,
        repaired=opened.repaired,
        reader=opened.name,
        reader_note=getattr(opened, "fallback", ""),
        page_labels=labels,
        ocr_pages=tuple(i for i, label in enumerate(labels) if label in NEEDS_READING),
        text_chars=_text_chars(labels, qualities),
        verdict=_verdict(labels),
    )


def _scan_pages(opened: Readable, *, deadline: float) -> list[PageScan | None]:
    """The raw scan of every page (None for pages past the deadline); a page that fails records why."""
    scans: list[PageScan | None] = []
    for index in range(opened.pages):
        if time.monotonic() > deadline:
            scans.extend([None] * (opened.pages - index))
            break
        try:
            scans.append(opened.scan(index))
        except PAGE_FAILURES as exc:
            scans.append(PageScan(error=f"{type(exc).__name__}: {exc}"[:300]))
    return scans


def _measure_pages(opened: Readable, sample: Sequence[int], deadline: float) -> dict[int, TextQuality | None]:
    """Text metrics of the sampled pages (None: extraction failed) until the deadline."""
    measured: dict[int, TextQuality | None] = {}
    for index in sample:
        if time.monotonic() > deadline:
            break
        try:
            measured[index] = measure_text(opened.text(index))
        except PAGE_FAILURES:
            measured[index] = None
    return measured


def _label_pages(scans: Sequence[PageScan | None], qualities: dict[int, TextQuality | None]) -> tuple[str, ...]:
    """One label per page: measured pages by their text, the others by their operators and their likes."""
    measured = {}
    for index, quality in qualities.items():
        scan = scans[index]
        assert scan is not None  # only scanned pages are sampled
        measured[index] = label_page(scan, quality) if quality is not None else "garbled"
    like = labels_by_look(scans, measured)
    return tuple(measured.get(i) or label_unread(scan, like) for i, scan in enumerate(scans))


def _text_chars(labels: Sequence[str], qualities: dict[int, TextQuality | None]) -> int:
    """Mean characters of the sampled usable pages times the number of usable pages."""
    lengths = [q.length for i, q in qualities.items() if q is not None and labels[i] in USABLE]
    usable = sum(label in USABLE for label in labels)
    return round(sum(lengths) / len(lengths) * usable) if lengths else 0


def _verdict(labels: Sequence[str]) -> str:
    """text (nothing needs reading), scan (every non-blank page does), mixed, or blank."""
    inked = [label for label in labels if label != "blank"]
    if not inked:
        return "blank"
    needs = sum(label in NEEDS_READING for label in inked)
    if needs == 0:
        return "text"
    return "scan" if needs == len(inked) else "mixed"
