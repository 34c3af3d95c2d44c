"""Runs over PDFs that are hard to read: PDFium-only files answered, slow ones bounded, pypdf's noise kept quiet."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import samples
from conftest import CORPUS
from pdf_fixtures import eof_missing_pdf, misplaced_xref, slow_text_pdf
from pipeline import results, run_flow
from test_cli import docrouter_cli

pytestmark = pytest.mark.slow  # starts servers, subprocesses or Prefect flows

ENGINES = ("auto", "pdf-text", "mistral-ocr", "native")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_pdf_only_pdfium_opens_is_answered_by_every_engine(prefect_api_url: str, tmp_path: Path, engine: str) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "eof_missing.pdf").write_bytes(eof_missing_pdf(2))
    run_flow(sources=[str(source)], out=str(tmp_path / "out"), offline=True, engine=engine)
    (row,) = results(tmp_path / "out").itertuples()
    assert (row.status, row.pages) == ("ok", 2), row.error_message
    assert row.engine == ("local-text" if engine == "auto" else engine)
    assert "read by PDFium: pypdf could not open it" in row.engine_reason


def test_a_slow_extraction_is_a_too_complex_row_within_the_time_limit(
    prefect_api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "dense.pdf").write_bytes(slow_text_pdf(150))  # pypdf 0.2 s/page, PDFium 0.03 s/page
    (source / "plain.pdf").write_bytes(samples.text_pdf(2))
    monkeypatch.setenv("DOCROUTER_PDF_TIME_LIMIT_S", "3")
    started = time.monotonic()
    run_flow(sources=[str(source)], out=str(tmp_path / "out"), offline=True, engine="local-text")
    assert time.monotonic() - started < 90  # a hang guard: the limit stops the extraction, not the test
    rows = results(tmp_path / "out").set_index("path")
    dense = rows.loc["dense.pdf"]
    assert (dense.status, dense.error_type, dense.engine) == ("failed", "too_complex", "local-text")
    assert "took longer than 3 s" in dense.error_message
    assert rows.loc["plain.pdf"].status == "ok"


def test_a_bad_pdf_time_limit_is_one_line_before_any_work(prefect_api_url: str, tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "plain.pdf").write_bytes(samples.text_pdf(1))
    done = docrouter_cli(
        "run", source, "--out", tmp_path / "out", "--offline", env={"DOCROUTER_PDF_TIME_LIMIT_S": "soon"}
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == "docrouter: error: DOCROUTER_PDF_TIME_LIMIT_S='soon' is not a number"


def _quiet_run(source: Path, out: Path, prefect_api_url: str, *flags: str) -> list[str]:
    """A CLI run over `source` whose stderr has no pypdf line, and whose log file holds pypdf's notes instead."""
    env = {"PREFECT_API_URL": prefect_api_url}
    done = docrouter_cli("run", source, "--out", out, "--offline", *flags, env=env, timeout_s=900)  # a hang guard
    assert done.returncode == 0, done.stderr[-2000:]
    (log,) = (out / "logs").glob("*.log")
    notes = log.read_text().splitlines()
    assert "pypdf" not in done.stderr
    assert not [line for line in notes if line.split(": ", 1)[1][:60] in done.stderr]
    repaired = len({line.split(": ", 1)[0] for line in notes})
    assert f"pypdf warned about {repaired} files (repairs, PDFium fallbacks); details in {log}" in done.stdout
    return notes


def test_a_run_over_broken_pdfs_prints_no_pypdf_line_and_logs_them_to_a_file(
    prefect_api_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    for i in range(3):
        (source / f"repaired_{i}.pdf").write_bytes(misplaced_xref(samples.text_pdf(1 + i)))
    (source / "eof_missing.pdf").write_bytes(eof_missing_pdf(1))
    notes = _quiet_run(source, tmp_path / "out", prefect_api_url)
    noted = {line.split(": ", 1)[0] for line in notes}
    assert noted == {
        str(source / name) for name in ("repaired_0.pdf", "repaired_1.pdf", "repaired_2.pdf", "eof_missing.pdf")
    }


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared corpus is not present at {CORPUS}")
def test_a_run_over_the_corpus_prints_no_pypdf_line(prefect_api_url: str, tmp_path: Path) -> None:
    # 3,489 pypdf lines (2.9 MB) reached stderr before; local-text keeps the run short (no PDF bodies sent).
    notes = _quiet_run(CORPUS, tmp_path / "out", prefect_api_url, "--engine", "local-text", "--exclude", "*.csv")
    assert len(notes) > 100
