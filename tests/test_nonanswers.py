"""Replies that say the document could not be read: recognised (several languages), flagged unreadable_reply,
and tried once more through another adequate engine; every paid request stays in the row's cost."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import samples
from docrouter.call.nonanswers import says_unreadable
from docrouter.emulator import Emulator, Faults
from docrouter.errors import is_terminal
from docrouter.route.splitting import ENV_MAX_PART_PAGES
from pipeline import results, run_flow, write_corpus

REPLIES_THAT_ARE_NOT_ANSWERS = [
    "I'm sorry, but I can't access or view the contents of the PDF file.",  # recorded (pdf_unreadable_reply.json)
    "I’m unable to open the attached document.",
    "Je ne peux pas accéder au contenu de ce fichier.",
    "Leider kann ich die Datei nicht öffnen.",
    "Lo siento, no puedo leer el documento adjunto.",
    "Mi dispiace, non riesco ad aprire il documento.",
    "Desculpe, não consigo abrir o arquivo.",
    "Sorry, ik kan het bestand niet openen.",
]
ANSWERS = [
    "The tenant cannot file a claim after 30 days; the document is a lease for 12 months.",
    "Der Mieter kann das Dokument jederzeit kündigen.",
    "An invoice from ACME for $120, due 1 March.",
    "I cannot read minds, but " + "this long summary of the PDF goes on. " * 20,  # too long to be a refusal
]


@pytest.mark.parametrize("reply", REPLIES_THAT_ARE_NOT_ANSWERS)
def test_a_reply_saying_the_document_cannot_be_read_is_recognised(reply: str) -> None:
    assert says_unreadable(reply)


@pytest.mark.parametrize("reply", ANSWERS)
def test_answers_that_merely_mention_not_reading_are_answers(reply: str) -> None:
    assert not says_unreadable(reply)


def test_unreadable_reply_is_transient_so_a_rerun_tries_again() -> None:
    assert not is_terminal("unreadable_reply")


def _run(tmp_path: Path, name: str, faults: Faults, monkeypatch: pytest.MonkeyPatch, **params: object):
    with Emulator(seed=4, faults=faults) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        out = tmp_path / name
        run_flow(sources=[str(tmp_path / "docs")], out=str(out), base_url=emu.base_url, **params)
        chats = [r for r in emu.records if r.path.endswith("/chat/completions")]
        billed = emu.billed_usd
    return results(out).set_index("path"), chats, billed


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api_url")
def test_a_non_answer_is_retried_once_through_another_engine_and_both_requests_are_paid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_corpus(tmp_path / "docs", scans=1, pngs=1)
    first_only = Faults(fail_first_attempts=1, fail_first_kind="unreadable_reply")
    rows, chats, billed = _run(tmp_path, "first", first_only, monkeypatch)
    scan, image = rows.loc["scan_000.pdf"], rows.loc["image_000.png"]
    assert (scan.status, scan.attempts) == ("ok", 2) and "could not read the file" in scan.engine_reason
    engines = [r.engine for r in chats if r.file_hashes and r.engine]
    assert len(engines) == 2 and engines[1] == scan.engine != engines[0]  # native <-> mistral-ocr
    # An image has no other engine: its non-answer is its row.
    assert (image.status, image.error_type, image.attempts) == ("failed", "unreadable_reply", 1)
    assert "can't access or view" in image.error_message
    assert len(chats) == 3 and rows.cost_usd.sum() == pytest.approx(billed) and billed > 0


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api_url")
def test_a_second_non_answer_fails_the_row_and_a_forced_engine_is_not_switched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_corpus(tmp_path / "docs", scans=1)
    always = Faults(rate_unreadable_reply=1.0)
    rows, chats, billed = _run(tmp_path, "auto", always, monkeypatch)
    (scan,) = rows.itertuples()
    assert (scan.status, scan.error_type, scan.attempts, len(chats)) == ("failed", "unreadable_reply", 2, 2)
    assert scan.cost_usd == pytest.approx(billed) and billed > 0
    rows, chats, billed = _run(tmp_path, "forced", always, monkeypatch, engine="mistral-ocr")
    (scan,) = rows.itertuples()
    assert (scan.status, scan.error_type, scan.engine, len(chats)) == ("failed", "unreadable_reply", "mistral-ocr", 1)
    assert scan.cost_usd == pytest.approx(billed) and billed > 0


def scanned_pages(pages: int) -> bytes:
    """A multi-page scan (no text layer) whose pages say different things."""
    images = [samples.render_lines([f"Page {n + 1} of a scanned letter."] * 8, 850, 1100) for n in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=100.0)
    return out.getvalue()


@pytest.mark.usefixtures("prefect_api_url")
def test_each_page_range_of_a_split_document_is_judged_and_retried_before_the_combine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "letter.pdf").write_bytes(scanned_pages(4))
    monkeypatch.setenv(ENV_MAX_PART_PAGES, "2")  # two ranges of two pages, then a combining request
    first_only = Faults(fail_first_attempts=1, fail_first_kind="unreadable_reply")
    rows, chats, billed = _run(tmp_path, "first", first_only, monkeypatch)
    (letter,) = rows.itertuples()
    # Each range: a non-answer, then another engine; the combine's own first reply is a refusal too (the fault
    # strikes every request's first attempt): asked once more. Never two refusals combined, or one stored as ok.
    assert (letter.status, letter.attempts, len(chats)) == ("ok", 6, 6)
    ranges = [r.engine for r in chats if r.file_hashes]
    assert len(ranges) == 4 and ranges.count(ranges[0]) == 2 and len(set(ranges)) == 2
    assert not says_unreadable(letter.content) and letter.cost_usd == pytest.approx(billed) and billed > 0
    always = Faults(rate_unreadable_reply=1.0)
    rows, chats, billed = _run(tmp_path, "always", always, monkeypatch)
    (letter,) = rows.itertuples()
    assert (letter.status, letter.error_type, letter.attempts, len(chats)) == ("failed", "unreadable_reply", 4, 4)
    assert letter.cost_usd == pytest.approx(billed) and billed > 0  # every paid refusal, no combine sent
