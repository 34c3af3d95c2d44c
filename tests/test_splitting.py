"""Long documents are cut into page ranges that each fit one request; text pages stay on a text engine."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader, PdfWriter

from docrouter.inspect.inspection import Inspection
from docrouter.route.splitting import Part, SplitLimits, pdf_subset, plan_parts


def inspection(pages: int, ocr_pages: tuple[int, ...] = (), text_chars: int = 0) -> Inspection:
    return Inspection(doc_id="x", kind="pdf", pages=pages, ocr_pages=ocr_pages, text_chars=text_chars)


def test_a_short_document_is_one_part() -> None:
    assert plan_parts(inspection(10, text_chars=5000), "local-text", 50_000, SplitLimits()) == [
        Part(0, 9, "local-text")
    ]


def test_300_pages_split_by_the_engine_page_limit() -> None:
    parts = plan_parts(inspection(300, ocr_pages=tuple(range(300))), "native", 3_000_000, SplitLimits())
    assert [(p.first, p.last) for p in parts] == [(0, 99), (100, 199), (200, 299)]
    assert {p.engine for p in parts} == {"native"}


def test_byte_limit_makes_smaller_parts_than_the_page_limit() -> None:
    limits = SplitLimits(max_body_bytes=10 * 1024 * 1024)
    # 2 MB per page: a 10 MB body holds 3 pages after base64 growth.
    parts = plan_parts(inspection(10, ocr_pages=tuple(range(10))), "mistral-ocr", 20 * 1024 * 1024, limits)
    assert all(p.pages <= 3 for p in parts) and sum(p.pages for p in parts) == 10


def test_text_budget_limits_local_text_parts() -> None:
    limits = SplitLimits(max_text_chars=100_000)
    parts = plan_parts(inspection(100, text_chars=500_000), "local-text", 1_000_000, limits)
    assert all(p.pages <= 20 for p in parts) and parts[-1].last == 99


def test_mixed_pdf_sends_text_pages_as_text_and_scans_by_the_chosen_engine() -> None:
    scans = (3, 4, 5, 9)
    parts = plan_parts(inspection(12, ocr_pages=scans, text_chars=12_000), "native", 120_000, SplitLimits())
    assert parts == [
        Part(0, 2, "local-text"),
        Part(3, 5, "native"),
        Part(6, 8, "local-text"),
        Part(9, 9, "native"),
        Part(10, 11, "local-text"),
    ]


def test_too_many_alternations_read_whole_by_one_engine() -> None:
    every_other = tuple(range(0, 40, 2))
    parts = plan_parts(inspection(40, ocr_pages=every_other), "native", 400_000, SplitLimits(max_mixed_runs=8))
    assert parts == [Part(0, 39, "native")]


@pytest.mark.parametrize(("first", "last"), [(0, 0), (2, 4), (9, 9)])
def test_pdf_subset_is_a_real_pdf_of_those_pages(tmp_path, first: int, last: int) -> None:
    writer = PdfWriter()
    for i in range(10):
        writer.add_blank_page(width=100 + i, height=200)
    path = tmp_path / "ten.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    subset = PdfReader(io.BytesIO(pdf_subset(str(path), first, last)))
    assert [int(p.mediabox.width) for p in subset.pages] == [100 + i for i in range(first, last + 1)]


def test_parts_are_cut_evenly_until_their_estimated_tokens_fit_and_a_page_that_cannot_is_too_large() -> None:
    from docrouter.errors import TooLarge
    from docrouter.route.splitting import split_to_fit

    def tokens(part: Part) -> int:
        return 100 + 600 * part.pages  # a fixed instruction plus ~600 tokens a page

    parts = split_to_fit([Part(0, 119, "local-text")], tokens, 15_000)
    assert [p.pages for p in parts] == [24] * 5 and parts[-1].last == 119  # 72,100 tokens: five even ranges
    assert all(tokens(p) <= 15_000 for p in parts)
    assert split_to_fit([Part(0, 119, "native")], tokens, None) == [Part(0, 119, "native")]  # context unknown
    with pytest.raises(TooLarge, match="page 1 alone"):
        split_to_fit([Part(0, 3, "local-text")], tokens, 500)
