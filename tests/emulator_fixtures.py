"""Small documents generated for the emulator's tests (PDFs via pypdf, images via Pillow) and helpers."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from docrouter.emulator import Emulator

FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}


def _escape(text: str) -> bytes:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")


def _text_stream(lines: list[str], render_mode: int) -> bytes:
    shown = b" T* ".join(b"(" + _escape(line) + b") Tj" for line in lines)
    return b"BT %d Tr /F1 11 Tf 14 TL 72 720 Td " % render_mode + shown + b" ET"


def text_pdf(*pages: str, render_mode: int = 0) -> bytes:
    """A PDF with one page per string, drawn in Helvetica (render mode 3: an invisible text layer)."""
    writer = PdfWriter()
    for text in pages:
        page = writer.add_blank_page(612, 792)
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        stream = DecodedStreamObject()
        stream.set_data(_text_stream(text.splitlines() or [""], render_mode))
        page.replace_contents(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def scanned_pdf(pages: int = 1) -> bytes:
    """Image-only pages: a scan without any text layer."""
    images = [Image.new("L", (200, 260), 255) for _ in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=72)
    return out.getvalue()


def scan_with_ocr_layer(text: str) -> bytes:
    """A scanned page with an invisible (render mode 3) OCR text layer on top."""
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(scanned_pdf(1))))
    writer.pages[0].merge_page(PdfReader(io.BytesIO(text_pdf(text, render_mode=3))).pages[0])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def image_bytes(mime: str = "image/png", width: int = 64, height: int = 48) -> bytes:
    """A plain image in the given format."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, FORMATS[mime])
    return out.getvalue()


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def pdf_body(
    pdf: bytes, *, model: str, engine: str | None = None, max_tokens: int | None = 200, name: str = "doc.pdf"
) -> dict[str, Any]:
    """A chat request with a PDF file part (and a file-parser plugin when `engine` is given)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Summarise this document."},
                    {"type": "file", "file": {"filename": name, "file_data": data_url("application/pdf", pdf)}},
                ],
            }
        ],
    }
    if engine is not None:
        body["plugins"] = [{"id": "file-parser", "pdf": {"engine": engine}}]
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


def image_body(url: str, *, model: str = "openai/gpt-4o-mini", max_tokens: int | None = 200) -> dict[str, Any]:
    """A chat request with one image_url part."""
    content = [{"type": "text", "text": "What is in this image?"}, {"type": "image_url", "image_url": {"url": url}}]
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


def text_body(text: str = "Say something.", *, model: str = "openai/gpt-4o-mini", max_tokens: int = 100) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def api(emulator: Emulator) -> Iterator[httpx.Client]:
    """An httpx client on the emulator's base URL with its key."""
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    with httpx.Client(base_url=emulator.base_url, headers=headers, timeout=30.0) as client:
        yield client
