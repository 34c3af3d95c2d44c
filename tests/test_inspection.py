"""Inspection of real generated documents: one outcome per file, the right labels, verdicts and errors."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import pytest

import samples
from docrouter.discover.documents import Document, discover_documents
from docrouter.errors import Corrupt, Encrypted
from docrouter.inspect.inspection import Inspection, extract_text, inspect_document
from pdf_fixtures import misplaced_xref


def _doc(tmp_path: Path, name: str, data: bytes) -> Document:
    (tmp_path / name).write_bytes(data)
    (doc,) = discover_documents([tmp_path / name])
    return doc


def _inspect(tmp_path: Path, name: str, data: bytes, **options: object) -> Inspection:
    return inspect_document(_doc(tmp_path, name, data), **options)  # type: ignore[arg-type]


def _png_header(width: int, height: int) -> bytes:
    """A PNG that only declares its size (no pixel data): enough for a header read."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("name", "data", "verdict", "labels", "ocr_pages"),
    [
        ("text.pdf", samples.text_pdf(3), "text", ("text",) * 3, ()),
        ("scan.pdf", samples.scanned_pdf(2), "scan", ("image-only",) * 2, (0, 1)),
        ("good_ocr.pdf", samples.ocr_layer_pdf(2, good=True), "text", ("ocr-good",) * 2, ()),
        ("junk_ocr.pdf", samples.ocr_layer_pdf(1, good=False), "scan", ("ocr-poor",), (0,)),
        ("page_numbers.pdf", samples.page_numbers_only_scan_pdf(3), "scan", ("image-only",) * 3, (0, 1, 2)),
        ("mixed.pdf", samples.mixed_pdf(3, 2), "mixed", ("text", "image-only") * 2 + ("text",), (1, 3)),
        ("blank.pdf", samples.blank_pdf(2), "blank", ("blank",) * 2, ()),
        ("outlines.pdf", samples.vector_text_pdf(), "scan", ("vector",), (0,)),
        ("owner_only.pdf", samples.encrypted_pdf(None, "owner"), "text", ("text",), ()),
        ("a_png.pdf", samples.png(50, 40), "image", (), ()),
    ],
)
def test_pdf_labels_and_verdicts(tmp_path: Path, name: str, data: bytes, verdict: str, labels, ocr_pages) -> None:
    inspection = _inspect(tmp_path, name, data)
    assert inspection.ok, inspection.error_message
    assert (inspection.verdict, inspection.page_labels, inspection.ocr_pages) == (verdict, labels, ocr_pages)
    assert inspection.doc_id == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("name", "data", "error_type", "hint"),
    [
        ("needs_password.pdf", samples.encrypted_pdf("secret", "owner"), "encrypted", "password"),
        ("truncated.pdf", samples.truncated_pdf(), "corrupt", "truncated"),
        ("zero.pdf", b"", "empty", "0 bytes"),
        ("no_pages.pdf", samples.blank_pdf(0), "empty", "no pages"),
        ("scan.tif", samples.tiff(30, 20), "unsupported", "convert"),
        ("notes.pdf", b"just some words, not a PDF", "unsupported", "convert"),
        ("broken.png", samples.png(30, 20)[:40] + b"\x00" * 30, "corrupt", "image"),
        ("bomb.png", _png_header(20_000, 20_000), "too_large", "downscale"),
    ],
)
def test_unusable_files_become_specific_errors(tmp_path: Path, name: str, data: bytes, error_type: str, hint) -> None:
    inspection = _inspect(tmp_path, name, data)
    assert inspection.error_type == error_type
    assert hint in (inspection.error_message or "")


def test_owner_only_encryption_is_opened_and_flagged(tmp_path: Path) -> None:
    inspection = _inspect(tmp_path, "owner.pdf", samples.encrypted_pdf(None, "owner"))
    assert inspection.encrypted and inspection.ok and inspection.text_chars > 500


def test_text_chars_estimates_the_whole_document_from_a_sample(tmp_path: Path) -> None:
    data = samples.text_pdf(60)
    inspection = _inspect(tmp_path, "long.pdf", data, sample_pages=5)
    actual = sum(len(" ".join(text.split())) for text in extract_text(str(tmp_path / "long.pdf")))
    assert "unsampled" in inspection.page_labels
    assert abs(inspection.text_chars - actual) / actual < 0.1


def test_one_scanned_page_in_a_long_text_document_is_found_without_sampling_it(tmp_path: Path) -> None:
    inspection = _inspect(tmp_path, "annex.pdf", samples.mixed_pdf(59, 1), sample_pages=4)
    (scan_page,) = samples.scan_page_numbers(59, 1)
    assert inspection.ocr_pages == (scan_page,)
    assert inspection.verdict == "mixed"


def test_past_the_time_budget_pages_are_unsampled_not_lost(tmp_path: Path) -> None:
    inspection = _inspect(tmp_path, "text.pdf", samples.text_pdf(4), time_budget_s=0)
    assert inspection.ok and inspection.pages == 4
    assert inspection.page_labels == ("unsampled",) * 4


def test_a_repaired_file_is_flagged(tmp_path: Path) -> None:
    inspection = _inspect(tmp_path, "repaired.pdf", misplaced_xref(samples.text_pdf(2)))
    assert inspection.ok and inspection.repaired and inspection.verdict == "text"
    assert not _inspect(tmp_path, "clean.pdf", samples.text_pdf(2)).repaired


def test_producer_is_recorded(tmp_path: Path) -> None:
    assert _inspect(tmp_path, "scan.pdf", samples.scanned_pdf(1)).producer == "docrouter samples (scanner)"


@pytest.mark.parametrize(
    ("name", "data", "fmt", "size", "frames"),
    [
        ("photo.png", samples.png(64, 48), "PNG", (64, 48), 1),
        ("photo.jpg", samples.jpeg(64, 48), "JPEG", (64, 48), 1),
        ("photo.webp", samples.webp(64, 48), "WEBP", (64, 48), 1),
        ("anim.gif", samples.gif(64, 48, frames=3), "GIF", (64, 48), 3),
        ("lying.jpg", samples.png(10, 12), "PNG", (10, 12), 1),
    ],
)
def test_images_report_format_size_and_frames(tmp_path: Path, name: str, data: bytes, fmt: str, size, frames) -> None:
    inspection = _inspect(tmp_path, name, data)
    assert (inspection.kind, inspection.verdict, inspection.pages) == ("image", "image", 1)
    assert (inspection.image_format, (inspection.width, inspection.height), inspection.frames) == (fmt, size, frames)


def test_extract_text_gives_each_asked_page(tmp_path: Path) -> None:
    path = str(tmp_path / "text.pdf")
    Path(path).write_bytes(samples.text_pdf(3))
    assert [t.split(".")[0] for t in extract_text(path)] == ["Page 1", "Page 2", "Page 3"]
    assert [t.split(".")[0] for t in extract_text(path, [2, 0])] == ["Page 3", "Page 1"]
    assert extract_text(path, [7]) == [""]  # past the end: nothing, not a crash


def test_extract_text_of_scanned_pages_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pdf"
    path.write_bytes(samples.mixed_pdf(1, 1))
    assert [bool(t.strip()) for t in extract_text(str(path))] == [True, False]


@pytest.mark.parametrize(
    ("data", "error"),
    [(samples.encrypted_pdf("secret", "owner"), Encrypted), (samples.truncated_pdf(), Corrupt)],
)
def test_extract_text_raises_document_errors_for_unusable_files(tmp_path: Path, data: bytes, error) -> None:
    path = tmp_path / "bad.pdf"
    path.write_bytes(data)
    with pytest.raises(error):
        extract_text(str(path))
