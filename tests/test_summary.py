"""The summary artifact: money spent vs budget vs estimate, savings against the naive rules, documents by status
and engine, the top failures with their paths, where the results are; for a run and for a backfill."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect import flow

import samples
from docrouter.call.rows import job_for
from docrouter.emulator import Emulator
from docrouter.route.pricing import PriceBook
from docrouter.route.routing import Router, usd
from docrouter.run.planning import plan_from
from docrouter.run.summary import (
    Costs,
    Digest,
    job_costs,
    read_run_rows,
    read_run_summaries,
    summary_markdown,
    top_failures,
)
from docrouter_flows.backfill_report import ShardRun, backfill_summary, publish_backfill_summary
from pipeline import run_flow, write_corpus
from test_cli import docrouter_cli, prefect_filter
from test_planning import GEMINI, PROMPT_CHARS, SAMPLES

KEY = "sk-or-v1-summary-canary-5f0c2a9d71e4b3aa-never-print-me"
BROKEN = "broken/half | download.pdf"  # a pipe: the Markdown table must escape it


def digest(**changes: Any) -> Digest:
    base: dict[str, Any] = {
        "title": "docrouter run r1",
        "headline": "5 files: 5 processed.",
        "spent_usd": 0.012,
        "budget_usd": 0.05,
        "costs": Costs(expected_usd=0.01, max_usd=0.04, default_usd=0.02, always_ocr_usd=0.05),
        "default_engine": "native",
        "by_status": {"ok": 4, "failed": 1},
        "by_engine": {"local-text": 3, "image": 1},
        "failures": [{"error_type": "corrupt", "count": 1, "examples": [{"path": "a|b.pdf", "message": "bad\nxref"}]}],
        "places": [("results", "/out/results/")],
    }
    return Digest(**(base | changes))


# --- the Markdown, as a table of cases -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "present", "absent"),
    [
        (
            {},
            [
                "# docrouter run r1",
                "| spent (billed) | $0.0120 |",
                "| budget | $0.0500 (24% used) |",
                "| estimate, expected | $0.0100 (spent is 120% of it) |",
                "| estimate, at most | $0.0400 |",
                "| docrouter routing | $0.0100 |  |",
                "| OpenRouter default (native) | $0.0200 | $0.0100 (50%) |",
                "| always mistral-ocr | $0.0500 | $0.0400 (80%) |",
                "| failed | 1 |",
                "| local-text | 3 |",
                "| corrupt | 1 | `a\\|b.pdf` | bad xref |",
                "- results: `/out/results/`",
            ],
            ["no cap"],
        ),
        ({"budget_usd": None}, ["| budget | no cap |"], ["used)"]),
        ({"budget_usd": 0.0}, ["| budget | $0.0000 |"], ["used)"]),
        ({"costs": None}, ["| spent (billed) | $0.0120 |"], ["## Savings", "estimate, expected"]),
        (
            {"costs": Costs(expected_usd=0.03, max_usd=0.05, default_usd=0.02, always_ocr_usd=0.0)},
            [
                "| OpenRouter default (native) | $0.0200 | costs $0.0100 more (50%) |",
                "| always mistral-ocr | $0.0000 | - |",
            ],
            [],
        ),
        ({"failures": []}, ["## Documents"], ["## Top failures"]),
        (
            {"notes": ["**Stopped:** HTTP 402"], "sections": ["## Shards\n\nx"]},
            ["**Stopped:** HTTP 402", "## Shards"],
            [],
        ),
    ],
)
def test_summary_markdown(changes: dict[str, Any], present: list[str], absent: list[str]) -> None:
    text = summary_markdown(digest(**changes))
    lines = text.splitlines()
    assert [p for p in present if p not in lines and p not in text] == []
    assert [a for a in absent if a in text] == []


def test_sections_come_in_the_order_an_operator_reads_them() -> None:
    text = summary_markdown(digest(notes=["**Stopped:** x"]))
    order = ["# docrouter", "**Stopped:**", "## Money", "## Savings", "## Documents", "## Top failures", "## Results"]
    assert [text.index(heading) for heading in order] == sorted(text.index(heading) for heading in order)


def test_a_long_message_is_clipped_to_one_cell() -> None:
    failures = [{"error_type": "bad_request", "count": 1, "examples": [{"path": "p.pdf", "message": "x" * 500}]}]
    line = next(line for line in summary_markdown(digest(failures=failures)).splitlines() if "bad_request" in line)
    assert len(line) < 250 and line.endswith("… |")


def test_top_failures_list_the_commonest_type_first_with_its_paths_and_leave_skipped_files_out() -> None:
    rows = pd.DataFrame(
        {
            "path": ["a.pdf", "b.pdf", "c.pdf", "d.pdf", "e.pdf", "f.txt", "g.pdf"],
            "status": ["failed", "failed", "failed", "failed", "over_budget", "skipped", "ok"],
            "error_type": ["corrupt", "encrypted", "corrupt", "corrupt", "budget", "unsupported", None],
            "error_message": ["truncated", "password", None, "bad xref", "over", "not a document", None],
        }
    )
    failures = top_failures(rows, examples=2)
    assert [(f["error_type"], f["count"]) for f in failures] == [("corrupt", 3), ("budget", 1), ("encrypted", 1)]
    assert failures[0]["examples"] == [{"path": "a.pdf", "message": "truncated"}, {"path": "c.pdf", "message": ""}]
    assert top_failures(rows, limit=1)[0]["error_type"] == "corrupt"


def test_a_runs_estimates_are_plans_totals_for_the_same_documents() -> None:
    router = Router(GEMINI, PriceBook(), None, PROMPT_CHARS, 512, 200)
    fresh = [(d, i) for d, i in SAMPLES if not d.rel_path.startswith("copy/")]  # the run writes copies at $0
    plan = plan_from(fresh, router, copies=[d for d, _ in SAMPLES if d.rel_path.startswith("copy/")])
    costs = job_costs([job_for(d, i, router.route(d, i)) for d, i in fresh], router)
    assert costs.expected_usd == pytest.approx(plan.routed_usd)
    assert costs.max_usd == pytest.approx(plan.routed_max_usd)
    assert costs.default_usd == pytest.approx(plan.default_usd)
    assert costs.always_ocr_usd == pytest.approx(plan.always_ocr_usd)
    assert 0 < costs.expected_usd < costs.default_usd < costs.always_ocr_usd


# --- read back from a real Prefect server --------------------------------------------------------------------


def write_documents(src: Path) -> None:
    write_corpus(src, text=3, scans=1, pngs=2)
    (src / BROKEN).parent.mkdir(parents=True, exist_ok=True)
    (src / BROKEN).write_bytes(samples.truncated_pdf())


def markdown_of(api_url: str, out: Path, key: str) -> str:
    runs = [
        r for r in prefect_filter(api_url, "flow_runs", "START_TIME_DESC") if r["parameters"].get("out") == str(out)
    ]
    artifacts = prefect_filter(api_url, "artifacts", "CREATED_DESC")
    return next(a["data"] for a in artifacts if a["flow_run_id"] == runs[0]["id"] and a["key"] == key)


def test_a_runs_summary_artifact_says_money_savings_failures_and_places(
    prefect_api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    write_documents(src)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no answer-length history from other tests
    with Emulator(api_key=KEY, seed=5) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
        planned = docrouter_cli("plan", src, "--out", out, "--base-url", emu.base_url, "--json")
        assert planned.returncode == 0, planned.stderr
        plan = json.loads(planned.stdout)
        summary = run_flow(sources=[str(src)], out=str(out), base_url=emu.base_url, budget=1.0)
        billed = emu.billed_usd
    text = markdown_of(prefect_api_url, out, "docrouter-run")
    lines = text.splitlines()
    assert f"# docrouter run {summary['run_id']}" in lines
    assert f"| spent (billed) | {usd(billed)} |" in lines and billed > 0
    assert f"| budget | $1.0000 ({billed:.0%} used) |" in lines
    assert any(line.startswith(f"| estimate, expected | {usd(plan['expected_usd'])} (spent is ") for line in lines)
    assert f"| estimate, at most | {usd(plan['max_usd'])} |" in lines
    assert any(line.startswith(f"| OpenRouter default (native) | {usd(plan['default_usd'])} | ") for line in lines)
    assert any(line.startswith(f"| always mistral-ocr | {usd(plan['always_ocr_usd'])} | ") for line in lines)
    assert "| ok | 6 |" in lines and "| failed | 1 |" in lines
    assert any(line.startswith("| corrupt | 1 | `broken/half \\| download.pdf` | ") for line in lines)
    assert f"- results (Parquet dataset; `docrouter report DIR` reads it): `{out / 'results'}/`" in lines
    assert f"- run summary (JSON): `{out / '_runs' / summary['run_id']}.json`" in lines
    recorded = read_run_summaries(str(out), [summary["run_id"]])[0]
    assert recorded["estimate"]["expected_usd"] == pytest.approx(plan["expected_usd"])
    assert recorded["top_failures"][0]["examples"] == [{"path": BROKEN, "message": recorded_message(out)}]
    assert KEY not in json.dumps(prefect_filter(prefect_api_url, "artifacts", "CREATED_DESC"))


def recorded_message(out: Path) -> str:
    rows = read_run_rows(str(out), list(pd.read_parquet(out / "results")["run_id"].unique()))
    return str(rows.loc[rows["path"] == BROKEN, "error_message"].iloc[0])


@flow(name="publish-backfill-summary")
async def publish_backfill(summary: dict[str, Any]) -> None:
    """The backfill flow's last step, on its own: publish the summary of shards that already ran."""
    await publish_backfill_summary(summary)


def test_a_backfills_summary_artifact_adds_up_its_shards(
    prefect_api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    write_documents(src)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with Emulator(api_key=KEY, seed=6) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
        shard_runs = []
        for shard in range(2):
            done = run_flow(sources=[str(src)], out=str(out), base_url=emu.base_url, shard=shard, shards=2, budget=0.5)
            shard_runs.append(ShardRun(shard, uuid.uuid4(), f"shard-{shard}", "Completed", True, "", done["run_id"]))
        billed = emu.billed_usd
    run_ids = [s.run_id for s in shard_runs if s.run_id]
    shard_summaries = read_run_summaries(str(out), run_ids)
    summary = backfill_summary(shard_runs, read_run_rows(str(out), run_ids), 1.0, runs=shard_summaries, out=str(out))
    asyncio.run(publish_backfill(summary))
    artifacts = prefect_filter(prefect_api_url, "artifacts", "CREATED_DESC")
    text = next(a["data"] for a in artifacts if a["key"] == "docrouter-backfill")
    lines = text.splitlines()
    expected = sum(s["estimate"]["expected_usd"] for s in shard_summaries)
    assert "# docrouter backfill: 2 of 2 shards completed" in lines
    assert f"| spent (billed) | {usd(billed)} |" in lines
    assert any(line.startswith(f"| estimate, expected | {usd(expected)} (spent is ") for line in lines)
    assert any(line.startswith("| OpenRouter default (native) | ") for line in lines)
    assert "| ok | 6 |" in lines
    assert any(line.startswith("| corrupt | 1 | `broken/half \\| download.pdf` | ") for line in lines)
    assert [line for line in lines if line.startswith("- run summary (JSON): ")] == [
        f"- run summary (JSON): `{out / '_runs' / run_id}.json`" for run_id in run_ids
    ]
    assert KEY not in json.dumps(artifacts)
