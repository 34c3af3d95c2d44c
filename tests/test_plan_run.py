"""One decision pipeline: per document, `plan` says the engine and the estimate the run then records.

DIR holds stored parses (prompt A answered two scans over mistral-ocr) and documents already answered
with prompt B; the folder also holds a new path of bytes answered earlier, a new scan, a text file and
an image the text-only model cannot read. Plan and run with prompt B must agree row by row.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import samples
from docrouter.emulator import Emulator
from docrouter.run.config import RunConfig
from docrouter.run.planning import Plan, make_plan
from pipeline import results, run_flow, scan_pdf

pytestmark = pytest.mark.slow  # starts servers, subprocesses or Prefect flows

TEXT_ONLY = "meta-llama/llama-3.3-70b-instruct"  # reads no files: scans go to mistral-ocr, images fail
PROMPT_A = "List every name and number in this letter."
PROMPT_B = "In one sentence: who wrote this letter, and to whom?"


@dataclass(frozen=True)
class Folder:
    emu: Emulator
    source: Path
    out: Path

    def config(self, prompt: str, *, include: tuple[str, ...] = ()) -> RunConfig:
        return RunConfig(
            sources=(str(self.source),),
            out=str(self.out),
            model=TEXT_ONLY,
            prompt=prompt,
            include=include,
            base_url=self.emu.base_url,
        )

    def run(self, prompt: str, *, include: tuple[str, ...] = ()) -> dict:
        params = {"sources": [str(self.source)], "out": str(self.out), "model": TEXT_ONLY, "prompt": prompt}
        return run_flow(**params, include=list(include), base_url=self.emu.base_url)

    def billed(self, since: int) -> float:
        return sum(r.billed_usd for r in self.emu.records[since:] if r.path.endswith("/chat/completions"))


def _text(path: Path, words: str) -> None:
    path.write_bytes(samples.text_pdf(1, text=words * 40))


@pytest.fixture
def folder(prefect_api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Folder]:
    source = tmp_path / "src"
    for sub in ("a", "b", "c"):
        (source / sub).mkdir(parents=True)
    for i in range(2):
        (source / "a" / f"scan_{i}.pdf").write_bytes(scan_pdf(f"Dear Ada, letter {i} from Charles."))
    _text(source / "a" / "text_0.pdf", "First report. ")
    _text(source / "b" / "text_1.pdf", "Second report. ")
    (source / "b" / "scan_2.pdf").write_bytes(scan_pdf("Dear Charles, a reply from Ada."))
    with Emulator() as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        yield Folder(emu, source, tmp_path / "out")


def _settle_history(folder: Folder) -> None:
    """Prompt A over a/ (stored parses for two scans), prompt B over b/ (answered); then new files in c/."""
    folder.run(PROMPT_A, include=("a/*",))
    folder.run(PROMPT_B, include=("b/*",))
    shutil.copy(folder.source / "b" / "text_1.pdf", folder.source / "c" / "text_1_again.pdf")
    (folder.source / "c" / "scan_3.pdf").write_bytes(scan_pdf("A new letter, never seen."))
    (folder.source / "c" / "notes.txt").write_text("not a document")
    (folder.source / "c" / "photo.png").write_bytes(samples.png(300, 200))


def _by_path(plan: Plan) -> dict[str, tuple[str | None, float]]:
    return {r.path: (r.engine, r.est_cost_usd) for r in plan.rows if r.settled is None}


def test_plan_and_run_agree_per_document_with_stored_parses_and_answered_documents(folder: Folder) -> None:
    _settle_history(folder)
    plan = make_plan(folder.config(PROMPT_B))
    rows = {r.path: r for r in plan.rows}
    assert {p for p, r in rows.items() if r.settled} == {"b/text_1.pdf", "b/scan_2.pdf"}  # answered: not sent
    assert rows["a/scan_0.pdf"].parse_fee_usd == 0 and "stored parse reused" in rows["a/scan_0.pdf"].engine_reason
    assert rows["c/scan_3.pdf"].parse_fee_usd == pytest.approx(0.002)  # never parsed: pays its page
    assert rows["c/text_1_again.pdf"].duplicate_of == "b/text_1.pdf" and rows["c/text_1_again.pdf"].est_cost_usd == 0

    summary = folder.run(PROMPT_B)
    frame = results(folder.out)
    ran = frame[frame.run_id == summary["run_id"]]
    recorded = {
        row.path: (row.engine if isinstance(row.engine, str) else None, row.est_cost_usd) for row in ran.itertuples()
    }
    assert recorded == _by_path(plan)  # same documents, same engines, same estimates (exactly)
    again = ran[ran.path == "c/text_1_again.pdf"].iloc[0]
    assert again.status == "ok" and again.cost_usd == 0 and again.content  # its own row, a copy at $0


def test_plan_after_a_partial_run_prices_only_the_rest_within_30_percent_of_the_bill(folder: Folder) -> None:
    for i in range(6):
        _text(folder.source / "c" / f"more_{i}.pdf", f"Annex {i} of the report. ")
    folder.run(PROMPT_B, include=("a/*", "c/*"))
    plan = make_plan(folder.config(PROMPT_B))
    to_send = {r.path for r in plan.rows if r.engine and r.duplicate_of is None}
    assert to_send == {"b/text_1.pdf", "b/scan_2.pdf"}  # only what the partial run left
    seen = len(folder.emu.records)
    folder.run(PROMPT_B)
    billed = folder.billed(seen)
    assert billed > 0
    assert abs(plan.routed_usd - billed) / billed <= 0.30, (plan.routed_usd, billed)
    assert plan.routed_max_usd >= billed  # the reservation bound stays a bound
