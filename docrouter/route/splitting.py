"""Long documents in page ranges: which pages go together, by which engine, and the PDF bytes of a range."""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import BinaryIO

from pypdf import PdfReader, PdfWriter

from docrouter.errors import ConfigError, Corrupt, TooLarge
from docrouter.inspect.inspection import Inspection
from docrouter.pdf.pdfreading import index_unlisted_objects, pypdf_messages
from docrouter.vocabulary import TEXT_ENGINES, Engine

ENV_MAX_REQUEST_BYTES = "DOCROUTER_MAX_REQUEST_BYTES"
ENV_MAX_PART_PAGES = "DOCROUTER_MAX_PART_PAGES"


@dataclass(frozen=True)
class SplitLimits:
    """Per-request limits (pages per engine, request body bytes); past them a document is split."""

    max_pages: dict[Engine, int] = field(
        default_factory=lambda: {"native": 100, "mistral-ocr": 200, "pdf-text": 200, "local-text": 200}
    )
    max_body_bytes: int = 20 * 1024 * 1024  # well under the ~30 MB where providers start to refuse
    max_text_chars: int = 400_000  # ~100k tokens of extracted text per request
    max_mixed_runs: int = 8  # past this many text/scan alternations, one engine reads it all

    def pages_for(self, engine: Engine) -> int:
        return self.max_pages.get(engine, 100)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SplitLimits:
        """The defaults, overridden by DOCROUTER_MAX_REQUEST_BYTES and DOCROUTER_MAX_PART_PAGES (every engine)."""
        limits = cls()
        if environ.get(ENV_MAX_REQUEST_BYTES):
            limits = dataclasses.replace(limits, max_body_bytes=_positive(environ, ENV_MAX_REQUEST_BYTES))
        if environ.get(ENV_MAX_PART_PAGES):
            pages = _positive(environ, ENV_MAX_PART_PAGES)
            limits = dataclasses.replace(limits, max_pages=dict.fromkeys(limits.max_pages, pages))
        return limits


_ENV_HIGHEST = {ENV_MAX_REQUEST_BYTES: 1 << 30, ENV_MAX_PART_PAGES: 100_000}  # sane upper bounds


def _positive(environ: Mapping[str, str], name: str) -> int:
    value = environ[name]
    if not value.isdigit() or not 1 <= int(value) <= _ENV_HIGHEST[name]:
        raise ConfigError(f"{name} must be a whole number from 1 to {_ENV_HIGHEST[name]}, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class Part:
    """Pages first..last (0-based, inclusive) read by one engine."""

    first: int
    last: int
    engine: Engine

    @property
    def label(self) -> str:
        return f"{self.first + 1}-{self.last + 1}"

    @property
    def pages(self) -> int:
        return self.last - self.first + 1


def plan_parts(inspection: Inspection, engine: Engine, size_bytes: int, limits: SplitLimits) -> list[Part]:
    """One part when the document fits in one request; else ranges that each fit, text pages kept on text."""
    pages = max(1, inspection.pages)
    runs = [Part(0, pages - 1, engine)]
    if engine not in TEXT_ENGINES and inspection.ocr_pages and len(inspection.ocr_pages) < pages:
        mixed = _mixed_runs(pages, set(inspection.ocr_pages), engine)
        if len(mixed) <= limits.max_mixed_runs:
            runs = mixed
    bytes_per_page = size_bytes / pages
    chars_per_page = inspection.text_chars / pages if inspection.text_chars else 0.0
    parts: list[Part] = []
    for run in runs:
        parts.extend(_cap(run, _pages_per_part(run.engine, bytes_per_page, chars_per_page, limits)))
    return parts


def _mixed_runs(pages: int, needs_reading: set[int], engine: Engine) -> list[Part]:
    """Consecutive pages grouped by whether their text layer can be used."""
    runs: list[Part] = []
    start = 0
    for page in range(1, pages + 1):
        if page == pages or (page in needs_reading) != (start in needs_reading):
            runs.append(Part(start, page - 1, engine if start in needs_reading else "local-text"))
            start = page
    return runs


def _pages_per_part(engine: Engine, bytes_per_page: float, chars_per_page: float, limits: SplitLimits) -> int:
    cap = limits.pages_for(engine)
    if engine in TEXT_ENGINES and chars_per_page > 0:
        cap = min(cap, int(limits.max_text_chars / chars_per_page))
    if engine != "local-text" and bytes_per_page > 0:
        # base64 grows the file by 4/3; keep 5% for the JSON around it.
        cap = min(cap, int(limits.max_body_bytes * 0.95 * 3 / 4 / bytes_per_page))
    return max(1, cap)


def split_to_fit(parts: Sequence[Part], tokens_of: Callable[[Part], int], limit: int | None) -> list[Part]:
    """The parts, each cut into even page ranges until its estimated prompt tokens fit `limit` (None: any).

    A single page that cannot fit is TooLarge: it is refused before any request, so before any money.
    """
    fitted: list[Part] = []
    for part in parts:
        tokens = tokens_of(part)
        if limit is None or tokens <= limit:
            fitted.append(part)
        elif part.pages == 1:
            raise TooLarge(
                f"page {part.first + 1} alone may need {tokens:,} prompt tokens, more than the {max(0, limit):,} "
                "the model's context leaves beside the answer (--max-tokens and the reasoning budget)"
            )
        else:
            pieces = min(part.pages, max(2, math.ceil(tokens / max(1, limit))))
            fitted.extend(split_to_fit(_cap(part, math.ceil(part.pages / pieces)), tokens_of, limit))
    return fitted


def _cap(run: Part, size: int) -> list[Part]:
    return [Part(first, min(run.last, first + size - 1), run.engine) for first in range(run.first, run.last + 1, size)]


def pdf_subset(source: str | BinaryIO, first: int, last: int) -> bytes:
    """The PDF bytes of pages first..last (a real, standalone PDF made with pypdf), from a path or open file."""
    try:
        # An open file, not the path: given a path, pypdf reads the whole file into memory first.
        with pypdf_messages(), _binary(source) as file:  # its repair notes are not news here: keep them off stderr
            reader = PdfReader(file, strict=False)
            if reader.is_encrypted:
                reader.decrypt("")
            index_unlisted_objects(reader)  # one pass instead of a whole-file search per unlisted object
            writer = PdfWriter()
            for index in range(first, last + 1):
                writer.add_page(reader.pages[index])
            out = io.BytesIO()
            writer.write(out)
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as exc:
        raise Corrupt(f"cannot cut pages {first + 1}-{last + 1} out of the PDF: {exc}") from None
    return out.getvalue()


def _binary(source: str | BinaryIO) -> AbstractContextManager[BinaryIO]:
    """The file opened for reading, or the open file as is (its owner closes it)."""
    return open(source, "rb") if isinstance(source, str) else nullcontext(source)


def check_body(size: int, limits: SplitLimits, what: str) -> None:
    """Refuse before sending a body the API would refuse anyway."""
    if size > limits.max_body_bytes:
        raise TooLarge(f"{what} makes a {size:,}-byte request, over the limit of {limits.max_body_bytes:,} bytes")


def part_labels(parts: Sequence[Part]) -> str:
    """A short human description, e.g. '3 parts: 1-100 native, 101-120 local-text, 121-300 native'."""
    return f"{len(parts)} parts: " + ", ".join(f"{p.label} {p.engine}" for p in parts)
