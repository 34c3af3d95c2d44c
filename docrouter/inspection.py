"""Inspection: what reading a document needs (text layer, scan, OCR layer), measured locally."""

from __future__ import annotations

from dataclasses import dataclass

from docrouter.documents import DocumentKind

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


@dataclass(frozen=True)
class Inspection:
    """What local inspection learned about one document (or why it could not)."""

    doc_id: str
    kind: DocumentKind
    pages: int = 0  # PDF pages; 1 for an image
    error_type: str | None = None  # encrypted|corrupt|empty|unsupported|too_large|timeout
    error_message: str | None = None
    producer: str | None = None
    encrypted: bool = False  # owner-password-only encryption, opened with the empty password
    repaired: bool = False  # pypdf had to repair the file while reading it
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
