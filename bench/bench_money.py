"""Money: docrouter's routed cost vs OpenRouter's default rule vs always-OCR, per model, planned and billed.

    .venv/bin/python bench/bench_money.py

The corpus is data/samples plus generated text, scanned and mixed PDFs and a few images (made once, reused).
For each model (one text-only, one that reads files natively) it prints the plan's three totals
(docrouter.run.planning: no request), then confirms them with real runs against the emulator: the same
pipeline (docrouter.runs stages, no Prefect) once routed (--engine auto), once with the engine OpenRouter's
default rule picks, once with mistral-ocr for every PDF; each run's cost is read back from its Parquet rows
and from the emulator's own billing. Appends nothing anywhere (copy figures into bench/RESULTS.md by hand).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import samples  # noqa: E402
from docrouter.emulator import Emulator  # noqa: E402
from docrouter.route.pricing import PriceBook  # noqa: E402
from docrouter.run import session as runs  # noqa: E402
from docrouter.run.config import RunConfig  # noqa: E402
from docrouter.run.planning import Plan, build_plan  # noqa: E402
from tests.pipeline import scan_pdf  # noqa: E402

WORK = REPO / "bench" / "_work"
MODELS = ("meta-llama/llama-3.3-70b-instruct", "google/gemini-2.5-flash")  # text-only; native file input
PROMPT = "Summarize this document in three sentences."
MAX_TOKENS = 512


def corpus() -> Path:
    """data/samples plus distinct generated documents of each kind (made once, reused)."""
    folder = WORK / "money-corpus"
    if folder.exists():
        return folder
    shutil.copytree(REPO / "data" / "samples", folder / "samples")
    made = folder / "generated"
    made.mkdir()
    for i in range(12):
        lines = 4 if i % 2 else 40  # short memos and dense invoices: the cheapest engine differs
        text = " ".join(f"Invoice {i}, line {n}: delivered and paid." for n in range(lines))
        (made / f"text_{i:02d}.pdf").write_bytes(samples.text_pdf(1 + i % 6, text=text))
    for i in range(6):
        (made / f"scan_{i:02d}.pdf").write_bytes(scan_pdf(f"Scanned letter number {i}, page one."))
    for i in range(6):
        (made / f"mixed_{i:02d}.pdf").write_bytes(samples.mixed_pdf(text_pages=2 + i, scan_pages=1 + i % 2))
    for i in range(4):
        (made / f"image_{i:02d}.png").write_bytes(samples.png(400 + 40 * i, 300))
    return folder


def config(source: Path, model: str, engine: str = "auto", out: str = "") -> RunConfig:
    return RunConfig(sources=(str(source),), out=out, model=model, prompt=PROMPT, engine=engine, max_tokens=MAX_TOKENS)


def plan_for(source: Path, model: str) -> Plan:
    """The plan `docrouter plan --offline` prints: routed, default-rule and always-OCR totals."""
    cfg = config(source, model)
    offline = RunConfig(sources=cfg.sources, out="", model=model, offline=True)
    return build_plan(
        runs.inspect(runs.discover(cfg)),
        runs.models(offline).get(model),
        PriceBook(ocr_fee_per_page=cfg.ocr_fee_per_page),
        prompt_chars=len(PROMPT),
        max_tokens=MAX_TOKENS,
    )


@dataclass(frozen=True)
class Billed:
    """One run's money: the sum of its rows' cost_usd, the emulator's bill, and rows by status."""

    rows_usd: float
    emulator_usd: float
    statuses: dict[str, int]


def run_and_bill(source: Path, model: str, engine: str) -> Billed:
    """One run through docrouter.runs against a fresh emulator; cost read back from Parquet and the bill."""
    out = tempfile.mkdtemp(prefix="bench-money-", dir=WORK)
    cfg = config(source, model, engine, out)
    with Emulator() as emulator:
        cfg = dataclasses.replace(cfg, base_url=emulator.base_url)
        asyncio.run(_run(cfg, emulator.api_key))
        billed = emulator.billed_usd
    results = pd.read_parquet(Path(out) / "results", columns=["status", "cost_usd"])
    shutil.rmtree(out, ignore_errors=True)
    return Billed(float(results.cost_usd.sum()), billed, dict(results.status.value_counts()))


async def _run(cfg: RunConfig, key: str) -> None:
    documents = runs.discover(cfg)
    async with runs.open_session(cfg, api_key=key) as session:
        selection = runs.select(documents, session.store.done_keys(), cfg)
        pairs = await asyncio.to_thread(runs.inspect, selection.fresh)
        await runs.call(session, runs.route(session, pairs), {d.doc_id for d in selection.copies})
        runs.write_copies(session, selection.copies)


def main() -> None:
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="bench-money-cache-")  # no stale catalogue
    WORK.mkdir(parents=True, exist_ok=True)
    source = corpus()
    print(f"corpus {source}: {sum(1 for p in source.rglob('*') if p.is_file())} files; prompt {PROMPT!r}")
    head = f"{'model':36} {'rule':32} {'planned $':>10} {'rows $':>10} {'emulator $':>10}  statuses"
    for model in MODELS:
        plan = plan_for(source, model)
        engines: dict[str, int] = {}
        for row in plan.rows:
            if row.engine and row.duplicate_of is None:
                engines[row.engine] = engines.get(row.engine, 0) + 1
        print(f"\n{model}: routed engines {engines}; {plan.count('sent')} sent, {plan.count('unsent')} not sent")
        print(head)
        rules = [
            ("docrouter (auto)", "auto", plan.routed_usd),
            (f"OpenRouter default ({plan.default_engine})", plan.default_engine, plan.default_usd),
            ("always mistral-ocr", "mistral-ocr", plan.always_ocr_usd),
        ]
        billed_usd = []
        for name, engine, planned in rules:
            billed = run_and_bill(source, model, engine)
            billed_usd.append(billed.emulator_usd)
            statuses = ", ".join(f"{k} {v}" for k, v in sorted(billed.statuses.items()))
            money = f"{planned:>10.5f} {billed.rows_usd:>10.5f} {billed.emulator_usd:>10.5f}"
            print(f"{model:36} {name:32} {money}  {statuses}")
        saved_default = plan.savings_vs_default_usd / plan.default_usd if plan.default_usd else 0.0
        saved_ocr = plan.savings_vs_ocr_usd / plan.always_ocr_usd if plan.always_ocr_usd else 0.0
        print(f"planned savings: {saved_default:.0%} vs the default rule, {saved_ocr:.0%} vs always-OCR")
        routed, default, ocr = billed_usd
        print(f"billed savings:  {1 - routed / default:.0%} vs the default rule, {1 - routed / ocr:.0%} vs always-OCR")


if __name__ == "__main__":
    # Run from `-c`, not as this file: inspection's forkserver workers re-import the main module, and this one
    # pulls in pyarrow, which does not fit their 1 GB address-space limit (files would fail as too_large).
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_money; bench_money.main()"
    sys.exit(subprocess.run([sys.executable, "-c", code], check=False).returncode)
