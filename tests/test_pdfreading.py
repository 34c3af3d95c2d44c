"""Reading PDFs: fontTools-decoded text, PDFium as the fallback opener and extractor, pypdf's notes kept quiet."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import samples
from docrouter.discover.documents import Document, discover_documents
from docrouter.emulator.parsing import ParseFailure, read_pages
from docrouter.errors import Corrupt
from docrouter.inspect.inspection import inspect_document
from docrouter.pdf.pdfium import pdfium_text
from docrouter.pdf.pdfreading import extract_text, open_readable, pypdf_messages
from docrouter.route.routing import describe
from pdf_fixtures import eof_missing_pdf, math_symbols_pdf, misplaced_xref


def _doc(tmp_path: Path, name: str, data: bytes) -> Document:
    (tmp_path / name).write_bytes(data)
    (doc,) = discover_documents([tmp_path / name])
    return doc


def test_math_symbols_of_an_embedded_cff_font_come_out_as_symbols(tmp_path: Path) -> None:
    path = tmp_path / "lecture.pdf"
    path.write_bytes(math_symbols_pdf())
    assert extract_text(str(path)) == ["∀∃∈"]  # without fontTools: "892"


def test_a_pdf_pypdf_rejects_is_opened_by_pdfium_which_says_why(tmp_path: Path) -> None:
    path = tmp_path / "eof_missing.pdf"
    path.write_bytes(eof_missing_pdf(2))
    opened = open_readable(str(path))
    try:
        assert (opened.name, opened.pages) == ("pdfium", 2)
        assert "pypdf could not open it" in getattr(opened, "fallback", "")
    finally:
        opened.close()
    assert [t.split(".")[0] for t in extract_text(str(path))] == ["Page 1", "Page 2"]


def test_a_pdf_only_pdfium_reads_is_inspected_and_routed_as_usual(tmp_path: Path) -> None:
    inspection = inspect_document(_doc(tmp_path, "eof_missing.pdf", eof_missing_pdf(3)))
    assert inspection.ok, inspection.error_message
    assert (inspection.reader, inspection.verdict, inspection.page_labels) == ("pdfium", "text", ("text",) * 3)
    assert inspection.text_chars > 500
    assert describe(inspection).startswith("text layer, 3 pp (read by PDFium: pypdf could not open it")


def test_a_pdf_neither_reader_opens_is_still_corrupt(tmp_path: Path) -> None:
    truncated = samples.text_pdf(2)[:300]
    inspection = inspect_document(_doc(tmp_path, "truncated.pdf", truncated))
    assert inspection.error_type == "corrupt"
    with pytest.raises(Corrupt):
        extract_text(str(tmp_path / "truncated.pdf"))


def test_the_emulator_reads_a_pdf_only_pdfium_opens() -> None:
    pages = read_pages(eof_missing_pdf(2))
    assert [p.text.split(".")[0] for p in pages] == ["Page 1", "Page 2"]
    with pytest.raises(ParseFailure):
        read_pages(samples.text_pdf(2)[:300])


class _Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.names.append(record.name)


def test_pypdf_notes_are_collected_per_document_and_never_reach_the_root_logger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "repaired.pdf"
    path.write_bytes(misplaced_xref(samples.text_pdf(1)))
    root, seen = logging.getLogger(), _Seen()  # where Prefect's console handler listens
    root.addHandler(seen)
    try:
        with pypdf_messages() as notes:
            assert extract_text(str(path))[0].startswith("Page 1.")
    finally:
        root.removeHandler(seen)
    assert any("startxref" in note for note in notes)
    assert not [name for name in seen.names if name.startswith("pypdf")]
    assert "startxref" not in capsys.readouterr().err


def test_an_inspection_carries_the_notes_of_its_file(tmp_path: Path) -> None:
    inspection = inspect_document(_doc(tmp_path, "repaired.pdf", misplaced_xref(samples.text_pdf(1))))
    assert inspection.repaired and any("startxref" in note for note in inspection.notes)
    assert inspect_document(_doc(tmp_path, "clean.pdf", samples.text_pdf(1))).notes == ()


def test_pages_left_at_the_deadline_or_in_long_ranges_are_read_by_pdfium(tmp_path: Path) -> None:
    path = tmp_path / "text.pdf"
    path.write_bytes(samples.text_pdf(3))
    assert extract_text(str(path)) != pdfium_text(str(path))  # the readers differ (in trailing spaces): telling
    for texts in (extract_text(str(path), deadline=0.0), extract_text(str(path), pdfium_from=3)):
        assert texts == pdfium_text(str(path))
        assert [t.split(".")[0] for t in texts] == ["Page 1", "Page 2", "Page 3"]
