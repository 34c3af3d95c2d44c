"""The ledger: what a run needs of DIR is read once at its start (a fixed number of dataset reads, whatever
the number of documents), and the call stage reuses stored parses from it, never from Parquet per document.

Runs go through the session's real stages (no Prefect) against the emulator; reads are counted by a reader
passed in to the session (`open_session(read=...)`, `make_plan(read=...)`), which reads DIR for real.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from docrouter.emulator import Emulator
from docrouter.results import Result
from docrouter.run import session as runs
from docrouter.run.config import RunConfig
from docrouter.run.ledger import read_ledger
from docrouter.run.planning import make_plan
from docrouter.store.compaction import Kind, read_dataset
from pipeline import results, scan_pdf

TEXT_ONLY = "meta-llama/llama-3.3-70b-instruct"  # reads no files: scans go to mistral-ocr, whose parse is stored
PROMPT_A = "List every name and number in this letter."
PROMPT_B = "In one sentence: who wrote this letter, and to whom?"


@dataclass
class CountingReader:
    """store.compaction.read_dataset, counting which dataset each call read."""

    calls: list[str] = field(default_factory=list)

    def __call__(
        self, out_dir: Path, kind: Kind, columns: list[str] | None = None, filter: pc.Expression | None = None
    ) -> pa.Table:
        self.calls.append(kind.directory)
        return read_dataset(out_dir, kind, columns, filter)


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator() as emulator:
        monkeypatch.setenv("OPENROUTER_API_KEY", emulator.api_key)
        yield emulator


def config(source: Path, out: Path, emu: Emulator, prompt: str) -> RunConfig:
    return RunConfig(sources=(str(source),), out=str(out), model=TEXT_ONLY, prompt=prompt, base_url=emu.base_url)


def run_stages(config: RunConfig, read: CountingReader) -> list[Result]:
    """One run through the session's stages: select against the ledger, inspect, route, call, write copies."""
    return asyncio.run(_run_stages(config, read))


async def _run_stages(config: RunConfig, read: CountingReader) -> list[Result]:
    documents = runs.discover(config)
    async with runs.open_session(config, api_key=os.environ["OPENROUTER_API_KEY"], read=read) as session:
        selection = runs.select_from(documents, session.ledger, config)
        pairs = runs.inspect(selection.fresh, session.inspector, session.jobs.named_files)
        copied = {doc.doc_id for doc in selection.copies}
        answered = await runs.call(session, runs.route(session, pairs), copied)
        return answered + runs.write_copies(session, selection.copies)


def letters(source: Path, count: int) -> None:
    source.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (source / f"letter_{i}.pdf").write_bytes(scan_pdf(f"Dear Ada, letter {i} from Charles."))


@pytest.mark.parametrize("count", [2, 5])
def test_a_run_reads_dir_a_fixed_number_of_times_and_sends_stored_parses_from_the_ledger(
    tmp_path: Path, emu: Emulator, count: int
) -> None:
    source, out = tmp_path / "src", tmp_path / "out"
    letters(source, count)
    first = run_stages(config(source, out, emu, PROMPT_A), CountingReader())
    assert [r.engine for r in first] == ["mistral-ocr"] * count
    assert sum(r.ocr_pages_billed for r in emu.records) == count  # parsed once each: the parses are stored
    shutil.copy(source / "letter_0.pdf", source / "letter_0_again.pdf")  # a new path of bytes answered for A

    reader, seen = CountingReader(), len(emu.records)
    second = run_stages(config(source, out, emu, PROMPT_B), reader)
    # The ledger, whatever the number of documents: the results once; the annotations twice (which documents
    # have a parse, then the parses of those the run may send). No read per document.
    assert reader.calls == ["results", "annotations", "annotations"]
    chats = [r for r in emu.records[seen:] if r.path.endswith("/chat/completions")]
    assert len(chats) == count and all(r.reused_hashes and r.ocr_pages_billed == 0 for r in chats)
    assert [r.path for r in second if r.cost_usd == 0] == ["letter_0_again.pdf"]  # a copy of this run's answer

    reader = CountingReader()
    again = run_stages(config(source, out, emu, PROMPT_A), reader)  # only the new path is left for prompt A
    assert [(r.path, r.status, r.cost_usd) for r in again] == [("letter_0_again.pdf", "ok", 0.0)]
    assert reader.calls == ["results", "annotations", "results"]  # no parse to send; the copies' answers at the end
    frame = results(out).set_index("run_id")
    original = frame[frame.path == "letter_0.pdf"].loc[first[0].run_id]
    assert again[0].content == original.content  # the stored answer


def test_the_ledger_keeps_only_the_parses_of_documents_the_run_may_send(tmp_path: Path, emu: Emulator) -> None:
    source, out = tmp_path / "src", tmp_path / "out"
    letters(source, 3)
    run_stages(config(source, out, emu, PROMPT_A), CountingReader())
    for_b = config(source, out, emu, PROMPT_B)
    run_stages(dataclasses.replace(for_b, include=("letter_0.pdf",)), CountingReader())

    ledger = runs.load_ledger(for_b)
    assert len(ledger.annotated) == 3
    assert len(ledger.parses) == 2  # letter_0 is answered for prompt B: its parse is not loaded
    assert all(parse and parse[0].engine == "mistral-ocr" for parse in ledger.parses.values())
    assert read_ledger(out, TEXT_ONLY, for_b.prompt_sha256).parses == {}  # as plan reads it: which have one


def test_plan_reads_the_ledger_once_without_the_parses(tmp_path: Path, emu: Emulator) -> None:
    source, out = tmp_path / "src", tmp_path / "out"
    letters(source, 2)
    empty = CountingReader()
    make_plan(config(source, out, emu, PROMPT_A), read=empty)
    assert empty.calls == []  # a DIR with no results yet is not read at all
    run_stages(config(source, out, emu, PROMPT_A), CountingReader())
    reader = CountingReader()
    plan = make_plan(config(source, out, emu, PROMPT_B), read=reader)
    assert reader.calls == ["results", "annotations"]
    assert [r.parse_fee_usd for r in plan.rows] == [0.0, 0.0]
    assert all("stored parse reused" in r.engine_reason for r in plan.rows)
