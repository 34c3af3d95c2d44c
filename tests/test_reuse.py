"""Stored file annotations are reused: a second prompt, `docrouter ask` and a renamed file pay no OCR again."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from docrouter.emulator import Emulator, RequestRecord
from docrouter_commands.asking import ask_command
from pipeline import results, run_flow, scan_pdf

pytestmark = pytest.mark.slow  # starts servers, subprocesses or Prefect flows

TEXT_ONLY = "meta-llama/llama-3.3-70b-instruct"  # reads no files: a scan can only go through OCR
PROMPT_A = "List every name and number in this letter."
PROMPT_B = "In one sentence: who wrote this letter, and to whom?"
LETTERS = 2


@dataclass(frozen=True)
class Archive:
    """Scanned letters answered once with prompt A over mistral-ocr, on an emulator that stays up."""

    emu: Emulator
    source: Path
    out: Path
    first: dict[str, Any]
    first_chats: list[RequestRecord]

    def chats_since(self, seen: int) -> list[RequestRecord]:
        return chat_records(self.emu)[seen:]

    def run(self, prompt: str) -> dict[str, Any]:
        return answer(self.emu, self.source, self.out, prompt)


def answer(emu: Emulator, source: Path, out: Path, prompt: str) -> dict[str, Any]:
    """One flow run of the text-only model over `source` against the emulator."""
    params = {"sources": [str(source)], "out": str(out), "model": TEXT_ONLY, "prompt": prompt}
    return run_flow(**params, base_url=emu.base_url)


def chat_records(emu: Emulator) -> list[RequestRecord]:
    return [r for r in emu.records if r.path.endswith("/chat/completions")]


def file_hash(path: Path) -> str:
    """An annotation's file.hash as recorded: sha256 of the base64 text that was sent (not of the bytes)."""
    return hashlib.sha256(base64.b64encode(path.read_bytes())).hexdigest()


@pytest.fixture
def archive(prefect_api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Archive]:
    source = tmp_path / "letters"
    source.mkdir()
    for i in range(LETTERS):
        (source / f"letter_{i}.pdf").write_bytes(scan_pdf(f"Dear Ada, letter {i} from Charles."))
    with Emulator() as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        first = answer(emu, source, tmp_path / "out", PROMPT_A)
        yield Archive(emu, source, tmp_path / "out", first, chat_records(emu))


def test_the_first_prompt_pays_ocr_per_page_and_stores_annotations_by_doc_and_file_hash(archive: Archive) -> None:
    frame = results(archive.out)
    assert list(frame.engine) == ["mistral-ocr"] * LETTERS
    assert (frame.status == "ok").all()
    assert [r.ocr_pages_billed for r in archive.first_chats] == [1] * LETTERS
    billed = sum(r.billed_usd for r in archive.first_chats)
    assert archive.first["spent_usd"] == pytest.approx(billed, abs=1e-6)  # the OCR fee is counted as spent
    stored = pd.read_parquet(archive.out / "annotations")
    assert set(stored.doc_id) == {hashlib.sha256(p.read_bytes()).hexdigest() for p in archive.source.iterdir()}
    assert set(stored.doc_id) == set(frame.doc_id)
    # The API's file.hash is the SHA-256 of the base64 text sent (recorded), not doc_id (of the bytes).
    assert set(stored.file_hash) == {file_hash(p) for p in archive.source.iterdir()}
    assert (stored.engine == "mistral-ocr").all()
    assert all(json.loads(content) for content in stored.content)


def test_annotations_parts_carry_the_spec_columns_with_their_types(archive: Archive) -> None:
    parts = sorted((archive.out / "annotations").glob("*.parquet"))
    assert parts
    schema = pq.read_schema(parts[0])
    types = {name: str(schema.field(name).type) for name in ("doc_id", "file_hash", "name", "engine", "content")}
    assert types == dict.fromkeys(types, "string")
    assert str(schema.field("created_at").type) == "timestamp[us, tz=UTC]"


def test_a_second_prompt_sends_the_stored_annotations_and_is_billed_no_ocr_fee(archive: Archive) -> None:
    second = archive.run(PROMPT_B)
    chats = archive.chats_since(len(archive.first_chats))
    hashes = {file_hash(p) for p in archive.source.iterdir()}
    assert len(chats) == LETTERS
    assert {h for r in chats for h in r.reused_hashes} == hashes  # the emulator parsed nothing again
    assert [r.ocr_pages_billed for r in chats] == [0] * LETTERS
    assert all(r.status == 200 and r.billed_usd > 0 for r in chats)  # tokens are still paid
    first_fee = sum(r.billed_usd for r in archive.first_chats)
    assert sum(r.billed_usd for r in chats) < first_fee - LETTERS * 0.002 / 2
    frame = results(archive.out)
    answered = frame[(frame.run_id == second["run_id"]) & (frame.status == "ok")]
    assert len(answered) == LETTERS


def ask_args(archive: Archive, *, max_tokens: int) -> argparse.Namespace:
    """`docrouter ask DIR --doc letter_0.pdf "Who signed this letter?"` against the archive's emulator."""
    return argparse.Namespace(
        dir=str(archive.out),
        doc="letter_0.pdf",
        question="Who signed this letter?",
        model=None,
        max_tokens=max_tokens,
        offline=False,
        base_url=archive.emu.base_url,
    )


def test_ask_reuses_the_stored_parse_pays_no_ocr_fee_and_prints_an_answer(
    archive: Archive, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ask_command(ask_args(archive, max_tokens=200)) == 0
    chats = archive.chats_since(len(archive.first_chats))
    assert len(chats) == 1
    assert chats[0].reused_hashes == (file_hash(archive.source / "letter_0.pdf"),)
    assert (chats[0].ocr_pages_billed, chats[0].model) == (0, TEXT_ONLY)
    printed = capsys.readouterr()
    assert printed.out.strip()
    assert "no parse fee" in printed.err


def test_a_renamed_file_is_not_sent_again_but_gets_its_own_row(archive: Archive) -> None:
    (archive.source / "letter_0.pdf").rename(archive.source / "renamed.pdf")
    (archive.source / "letter_1.pdf").rename(archive.source / "moved.pdf")
    summary = archive.run(PROMPT_A)
    assert archive.chats_since(len(archive.first_chats)) == []
    assert summary["spent_usd"] == 0
    frame = results(archive.out)
    copies = frame[frame.run_id == summary["run_id"]]  # SPEC section 1: each path its own row, a copy at $0
    assert sorted(copies.path) == ["moved.pdf", "renamed.pdf"]
    assert (copies.status == "ok").all() and (copies.cost_usd == 0).all() and copies.content.notna().all()


def test_ask_says_when_the_answer_was_cut_by_the_length_limit(
    archive: Archive, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ask_command(ask_args(archive, max_tokens=15)) == 0  # 60 characters: the emulated answer is longer
    printed = capsys.readouterr()
    assert printed.out.strip() and "cut by the length limit" in printed.err
