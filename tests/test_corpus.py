"""The real-world corpus (../shared/corpus, 144 files from public test suites): one outcome per file, always.

Opt-in tier (marker `corpus`), skipped when the corpus is not beside the repository. The corpus ships no
expected outcomes; the table below states only what the upstream suites built the files to be (their
README, the qpdf/cpdf commands that made the encrypted ones, the file's own bytes).
"""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import pytest

from docrouter.discover.documents import Document, discover_documents
from docrouter.inspect.inspection import PAGE_LABELS, Inspection, inspect_isolated
from pipeline import results
from test_cli import COMMAND

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
NOT_DOCUMENTS = ("MANIFEST.csv", "README.md")  # the corpus's own description, not part of it

pytestmark = [
    pytest.mark.slow,
    pytest.mark.slow,
    pytest.mark.slow,
    pytest.mark.corpus,
    pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared corpus is not present at {CORPUS}"),
]

ERROR_TYPES = frozenset({"encrypted", "corrupt", "empty", "unsupported", "too_large"})
VERDICTS = frozenset({"text", "scan", "mixed", "blank", "image"})
PIPELINE_BOUND_S = 900  # not a timing assertion: the limit past which a stalled run is a failure, not a hang
CRASHED = ("worker process died", "failed unexpectedly")  # isolation's words for a crash, not a verdict

# A user password is needed: qpdf/cpdf made them with one (R2-R4 reuse it as the owner password when
# the owner's is empty), or the upstream suite names the password it opens them with.
NEEDS_PASSWORD = (
    "pypdf/r2-user-password.pdf",
    "pypdf/r3-user-password.pdf",
    "pypdf/r4-user-password.pdf",
    "pypdf/r4-aes-user-password.pdf",
    "pypdf/r6-both-passwords.pdf",
    "pypdf/crazyones-encrypted-256.pdf",
    "pypdf/libreoffice-writer-password.pdf",
    "pdfminer/aes-128.pdf",
    "pdfminer/aes-256-r6.pdf",
    "pdfminer/rc4-40.pdf",
    "pdfminer/rc4-128.pdf",
    "format-corpus/encryption_openpassword.pdf",
    "unstructured/password.pdf",
    "docling/2206.01062_pg3.pdf",
)
# Encrypted, but the empty password opens them: empty user password, owner-only restrictions, or R5/R6
# with an empty owner password (qpdf needs --allow-insecure for that: anyone opens them as owner).
OPENS_WITH_EMPTY_PASSWORD = (
    "pypdf/r2-empty-password.pdf",
    "pypdf/r3-empty-password.pdf",
    "pypdf/r4-owner-password.pdf",
    "pypdf/r5-empty-password.pdf",
    "pypdf/r5-owner-password.pdf",
    "pypdf/r5-user-password.pdf",
    "pypdf/r6-empty-password.pdf",
    "pypdf/r6-owner-password.pdf",
    "pypdf/r6-user-password.pdf",
    "format-corpus/encryption_nocopy.pdf",
    "format-corpus/encryption_noprinting.pdf",
    "format-corpus/encryption_notextaccess.pdf",
    "unstructured/copy-protected.pdf",
)
# (path, error_type): files that cannot be used, whatever reads them.
UNUSABLE = (
    ("images/2206.01062.tif", "unsupported"),
    ("images/old-style-jpeg-compression.tif", "unsupported"),
    ("ocrmypdf/invalid.pdf", "corrupt"),
    ("format-corpus/T02-01_001_document-catalog-No-document-catalog.pdf", "corrupt"),
    ("format-corpus/T02-02_001_no-page-tree-node.pdf", "corrupt"),
)
# (path, verdict, a page label that must appear): documents whose nature their source states.
READABLE = (
    ("pypdf/crazyones.pdf", "text", "text"),
    ("pypdf/unencrypted.pdf", "text", "text"),
    ("format-corpus/lorem-ipsum.pdf", "text", "text"),
    ("sample-files/multicolumn.pdf", "text", "text"),
    ("unstructured/DA-619p.pdf", "text", "text"),
    ("format-corpus/T02-03_008_page-object-mediabox-missing.pdf", "text", "text"),  # readers default the box
    ("format-corpus/T01_006_header-invalid-syntax-no-pdf.pdf", "text", "text"),  # header mangled, objects intact
    ("format-corpus/T01_007_header-no-version-info.pdf", "text", "text"),  # no header line at all
    ("pypdf/Seige_of_Vicksburg_Sample_OCR.pdf", "text", "ocr-good"),
    ("unstructured/pdf-with-ocr-text.pdf", "text", "ocr-good"),
    ("ocrmypdf/c02-22.pdf", "scan", "image-only"),
    ("docling/ocr_test.pdf", "scan", "image-only"),
    ("docling/ocr_test_rotated_90.pdf", "scan", "image-only"),
    ("sample-files/grayscale-image.pdf", "scan", "image-only"),
    ("pdfminer/pdf-with-jbig2.pdf", "scan", "image-only"),
    ("unstructured/loremipsum-flat.pdf", "scan", "image-only"),
    ("ocrmypdf/type3_font_nomapping.pdf", "scan", "garbled"),  # glyphs without a Unicode mapping
    ("ocrmypdf/blank.pdf", "blank", "blank"),
)
# (path, format by the bytes): two WebP files carry a .png extension.
IMAGES = (
    ("images/0011.png", "WEBP"),
    ("images/0012.png", "WEBP"),
    ("images/0014.png", "PNG"),
    ("images/lorem-ipsum.im.png", "PNG"),
    ("images/chi_sim_image.jpeg", "JPEG"),
    ("images/sample.gif", "GIF"),
    ("images/webp-test.webp", "WEBP"),
)


def _manifest() -> dict[str, dict[str, str]]:
    with (CORPUS / "MANIFEST.csv").open(newline="") as f:
        return {row["path"]: row for row in csv.DictReader(f)}


def _documents() -> list[Document]:
    return list(discover_documents([CORPUS], exclude=NOT_DOCUMENTS))


@pytest.fixture(scope="module")
def manifest() -> dict[str, dict[str, str]]:
    return _manifest()


@pytest.fixture(scope="module")
def outcomes() -> dict[str, tuple[Document, Inspection]]:
    """Every corpus file inspected in isolated workers (the pipeline's own settings), by relative path."""
    pairs = list(inspect_isolated(_documents()))
    paths = [doc.rel_path for doc, _ in pairs]
    assert len(paths) == len(set(paths)), "a file came back twice"
    return {doc.rel_path: (doc, inspection) for doc, inspection in pairs}


def test_discovery_finds_every_manifest_file_with_its_hash_and_size(manifest) -> None:
    docs = {doc.rel_path: doc for doc in _documents()}
    assert set(docs) == set(manifest)
    for path, row in manifest.items():
        assert (docs[path].doc_id, docs[path].size_bytes) == (row["sha256"], int(row["bytes"])), path


def test_every_file_gets_exactly_one_outcome(outcomes, manifest) -> None:
    assert sorted(outcomes) == sorted(manifest)
    for path, (doc, inspection) in outcomes.items():
        assert inspection.doc_id == doc.doc_id, path


def test_no_file_crashes_or_times_out_its_worker(outcomes) -> None:
    for path, (_, inspection) in outcomes.items():
        assert inspection.error_type != "too_complex", f"{path}: {inspection.error_message}"
        assert not any(words in (inspection.error_message or "") for words in CRASHED), path


def test_failures_are_specific_and_say_what_to_do(outcomes) -> None:
    failed = {path: inspection for path, (_, inspection) in outcomes.items() if not inspection.ok}
    assert failed  # the corpus holds broken and encrypted files on purpose
    for path, inspection in failed.items():
        assert inspection.error_type in ERROR_TYPES, path
        assert len(inspection.error_message or "") > 20, path


def test_readable_pdfs_label_every_page_and_agree_with_their_verdict(outcomes) -> None:
    for path, (_, inspection) in outcomes.items():
        if not inspection.ok or inspection.kind != "pdf":
            continue
        assert inspection.verdict in VERDICTS, path
        assert len(inspection.page_labels) == inspection.pages > 0, path
        assert set(inspection.page_labels) <= set(PAGE_LABELS), path
        assert (inspection.verdict in ("scan", "mixed")) == inspection.needs_ocr, path
        assert all(0 <= page < inspection.pages for page in inspection.ocr_pages), path


@pytest.mark.parametrize("path", NEEDS_PASSWORD)
def test_a_user_password_makes_a_file_encrypted(outcomes, path: str) -> None:
    inspection = outcomes[path][1]
    assert inspection.error_type == "encrypted"
    assert "password" in (inspection.error_message or "")


@pytest.mark.parametrize("path", OPENS_WITH_EMPTY_PASSWORD)
def test_encryption_the_empty_password_opens_is_read_and_flagged(outcomes, path: str) -> None:
    inspection = outcomes[path][1]
    assert inspection.ok, inspection.error_message
    assert inspection.encrypted and inspection.verdict == "text"


@pytest.mark.parametrize(("path", "error_type"), UNUSABLE)
def test_unusable_files_get_their_specific_error(outcomes, path: str, error_type: str) -> None:
    assert outcomes[path][1].error_type == error_type


@pytest.mark.parametrize(("path", "verdict", "label"), READABLE)
def test_text_scans_and_blanks_are_told_apart(outcomes, path: str, verdict: str, label: str) -> None:
    inspection = outcomes[path][1]
    assert inspection.ok, inspection.error_message
    assert (inspection.verdict, label in inspection.page_labels) == (verdict, True)


def test_the_619_page_document_is_counted_whole_and_sampled(outcomes) -> None:
    inspection = outcomes["unstructured/DA-619p.pdf"][1]
    assert inspection.pages == 619
    assert "unsampled" in inspection.page_labels  # bounded: most pages only get the raw operator scan


@pytest.mark.parametrize(("path", "image_format"), IMAGES)
def test_images_are_typed_by_their_bytes_not_their_extension(outcomes, path: str, image_format: str) -> None:
    inspection = outcomes[path][1]
    assert (inspection.kind, inspection.verdict, inspection.image_format) == ("image", "image", image_format)
    assert inspection.width > 0 and inspection.height > 0 and inspection.frames >= 1


@pytest.mark.slow
def test_the_whole_pipeline_gives_every_corpus_file_one_complete_row(tmp_path: Path, manifest, prefect_api_url) -> None:
    out = tmp_path / "out"
    excluded = [arg for name in NOT_DOCUMENTS for arg in ("--exclude", name)]
    command = [*COMMAND, "run", str(CORPUS), "--out", str(out), "--offline", *excluded]
    env = {**os.environ, "PREFECT_API_URL": prefect_api_url, "PREFECT_LOGGING_LEVEL": "WARNING"}
    # A subprocess, so that a hang fails the test at the bound instead of stalling the suite.
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=PIPELINE_BOUND_S, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = results(out)
    assert sorted(rows["path"]) == sorted(manifest)  # exactly one row per file
    assert rows["status"].notna().all() and set(rows["status"]) <= {"ok", "failed", "skipped"}
    for row in rows[rows["status"] != "ok"].itertuples():
        assert row.error_type, row.path
        assert isinstance(row.error_message, str) and row.error_message.strip(), row.path
    assert (rows.loc[rows["status"] == "ok", "content"].str.len() > 0).all()
