"""The sample generators make real, reproducible documents with the quirk their names promise."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader
from pypdf.errors import PdfReadError

import samples

REPO = Path(__file__).resolve().parents[1]


def _reader(data: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(data), strict=False)


def _texts(data: bytes) -> list[str]:
    return [(page.extract_text() or "").strip() for page in _reader(data).pages]


@pytest.mark.parametrize(
    "make",
    [
        lambda: samples.text_pdf(2),
        lambda: samples.scanned_pdf(2),
        lambda: samples.ocr_layer_pdf(1, good=False),
        lambda: samples.mixed_pdf(2, 2),
        lambda: samples.encrypted_pdf("user", "owner"),
        samples.vector_text_pdf,
        lambda: samples.gif(40, 30, frames=2),
        lambda: samples.webp(40, 30),
    ],
)
@pytest.mark.slow  # seconds of CPU
def test_generators_are_byte_for_byte_deterministic(make) -> None:
    assert make() == make()


def test_text_pdf_has_several_sentences_of_extractable_text_per_page() -> None:
    texts = _texts(samples.text_pdf(3))
    assert len(texts) == 3
    assert all(t.count(".") >= 5 and len(t) > 400 for t in texts)
    assert texts[0] != texts[1]


def test_text_pdf_uses_the_given_text() -> None:
    assert _texts(samples.text_pdf(1, text="Invoice (draft) 42")) == ["Invoice (draft) 42"]


def test_scanned_pdf_has_no_text_but_a_full_page_image_on_each_page() -> None:
    reader = _reader(samples.scanned_pdf(2))
    assert [page.extract_text().strip() for page in reader.pages] == ["", ""]
    assert all(len(page.images) == 1 for page in reader.pages)
    assert reader.pages[0].images[0].image.size == (850, 1100)


def test_ocr_layer_pdf_good_layer_repeats_the_page_text_in_render_mode_3() -> None:
    data = samples.ocr_layer_pdf(1)
    assert b"3 Tr" in _reader(data).pages[0].get_contents().get_data()
    assert _texts(data)[0].startswith("Page 1. The quarterly report")


def test_ocr_layer_pdf_poor_layer_is_junk() -> None:
    words = _texts(samples.ocr_layer_pdf(1, good=False))[0].split()
    assert sum(len(w) <= 2 for w in words) / len(words) > 0.9


def test_page_numbers_only_scan_shows_just_the_number() -> None:
    assert _texts(samples.page_numbers_only_scan_pdf(3)) == ["1", "2", "3"]


def test_mixed_pdf_interleaves_scans_among_text_pages() -> None:
    texts = _texts(samples.mixed_pdf(3, 2))
    scans = samples.scan_page_numbers(3, 2)
    assert [i for i, t in enumerate(texts) if not t] == list(scans) == [1, 3]


def test_owner_only_encryption_opens_with_the_empty_password() -> None:
    reader = _reader(samples.encrypted_pdf(None, "owner"))
    assert reader.is_encrypted
    assert reader.decrypt("") != 0
    assert reader.pages[0].extract_text().startswith("Page 1.")


def test_user_password_encryption_needs_the_password() -> None:
    reader = _reader(samples.encrypted_pdf("secret", "owner"))
    assert reader.decrypt("") == 0
    assert reader.decrypt("secret") != 0
    assert reader.pages[0].extract_text().startswith("Page 1.")


def test_truncated_pdf_cannot_be_opened() -> None:
    data = samples.truncated_pdf()
    assert data.startswith(b"%PDF-")
    with pytest.raises(PdfReadError):
        _reader(data).pages[0]


def test_blank_pdf_pages_have_empty_content() -> None:
    assert _texts(samples.blank_pdf(2)) == ["", ""]


@pytest.mark.slow  # seconds of CPU
def test_vector_text_pdf_draws_paths_without_text_or_images() -> None:
    page = _reader(samples.vector_text_pdf()).pages[0]
    content = page.get_contents().get_data()
    assert content.count(b" re") > 500
    assert b"BT" not in content and b"Do" not in content


@pytest.mark.parametrize(
    ("make", "fmt", "frames"),
    [
        (lambda: samples.png(64, 48), "PNG", 1),
        (lambda: samples.jpeg(64, 48), "JPEG", 1),
        (lambda: samples.webp(64, 48), "WEBP", 1),
        (lambda: samples.gif(64, 48, frames=3), "GIF", 3),
        (lambda: samples.tiff(64, 48), "TIFF", 1),
    ],
)
def test_images_have_the_asked_format_size_and_frames(make, fmt: str, frames: int) -> None:
    with Image.open(io.BytesIO(make())) as image:
        assert (image.format, image.size, getattr(image, "n_frames", 1)) == (fmt, (64, 48), frames)


@pytest.mark.slow  # seconds of CPU
def test_committed_samples_match_the_generators(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_samples", REPO / "scripts" / "make_samples.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.write_samples(tmp_path / "samples")
    committed = REPO / "data" / "samples"
    for path in written:
        rel = path.relative_to(tmp_path / "samples")
        assert (committed / rel).read_bytes() == path.read_bytes(), f"data/samples/{rel} is stale: rerun the script"
    assert sum(p.stat().st_size for p in written) < 300 * 1024
