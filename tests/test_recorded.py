"""Recorded real OpenRouter responses (tests/fixtures/recorded/, sources in SOURCES.md): the client parses them,
the store keeps their annotations and sends them back in the shape they came, and the emulator agrees with them.
Where a recording and the emulator disagree, the recording wins."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from docrouter import errors
from docrouter.call.client import OpenRouterClient, error_from_response, parse_completion
from docrouter.call.nonanswers import says_unreadable
from docrouter.call.payloads import RequestOptions, pdf_request
from docrouter.call.rows import RunColumns, Unsent, annotation_rows, as_message_annotation, row
from docrouter.discover.documents import discover_documents
from docrouter.emulator import Emulator
from docrouter.run.ledger import stored_parses
from docrouter.store.store import Store

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
ANSWERS = sorted(p.stem for p in RECORDED.glob("*.json") if json.loads(p.read_text())["status"] == 200)
OCR_FEE = 0.002  # per page, $2 per 1,000 (the recordings bill exactly this for their 1-page PDF)


def recorded(name: str) -> dict[str, Any]:
    return json.loads((RECORDED / f"{name}.json").read_text(encoding="utf-8"))


def recorded_pdf() -> tuple[str, bytes]:
    """The base64 text the recorded request sent, and the PDF bytes it stands for."""
    data_url = (RECORDED / "pdf_default_ocr_annotation.file_data.txt").read_text(encoding="ascii")
    text = data_url.partition(",")[2]
    return text, base64.b64decode(text)


def fee(usage: dict[str, Any]) -> float:
    """What `usage.cost` holds beyond the two upstream token costs: the file parser's fee."""
    details = usage["cost_details"]
    return usage["cost"] - details["upstream_inference_prompt_cost"] - details["upstream_inference_completions_cost"]


def test_every_recorded_source_is_cited() -> None:
    sources = (RECORDED / "SOURCES.md").read_text(encoding="utf-8")
    fixtures = sorted(p.name for p in RECORDED.iterdir() if p.name != "SOURCES.md")
    assert len(fixtures) == 9
    for name in fixtures:
        assert f"`{name.split('.')[0]}" in sources, name
    rows = [line for line in sources.splitlines() if line.startswith("| `")]
    assert len(rows) == 8 and all(re.search(r"`[0-9a-f]{40}`", line) for line in rows)  # repository, path, commit


@pytest.mark.parametrize("name", ANSWERS)
def test_the_client_parses_every_recorded_answer_as_recorded(name: str) -> None:
    body = recorded(name)["body"]
    completion = parse_completion(body, httpx.Headers())
    usage, choice = body["usage"], body["choices"][0]
    assert completion.content == choice["message"]["content"]
    assert (completion.model, completion.provider) == (body["model"], body["provider"])
    assert completion.generation_id == body["id"] and completion.finish_reason == choice["finish_reason"]
    assert completion.prompt_tokens == usage["prompt_tokens"]
    assert completion.completion_tokens == usage["completion_tokens"]
    # cost is usage.cost as sent, fee included; a 2025 answer without usage accounting has none
    assert completion.cost_usd == usage.get("cost")


def test_the_recorded_ocr_fee_is_inside_cost_and_the_annotation_is_wrapped_in_file_parts() -> None:
    for name in ("pdf_default_ocr_annotation", "pdf_unreadable_reply", "pdf_resent_without_annotations"):
        usage = recorded(name)["body"]["usage"]
        assert "file_parser" not in usage and "file_parser_cost" not in usage["cost_details"]
        assert fee(usage) == pytest.approx(OCR_FEE)  # one page, billed again on every request without annotations
    assert fee(recorded("pdf_url_native_no_annotation")["body"]["usage"]) == pytest.approx(0.0)
    completion = parse_completion(recorded("pdf_default_ocr_annotation")["body"], httpx.Headers())
    (annotation,) = completion.annotations
    parts = annotation["file"]["content"]
    assert parts[0] == {"type": "text", "text": '<file name="filename.pdf">'} and parts[-1]["text"] == "</file>"


@pytest.mark.slow
def test_the_recorded_file_hash_is_the_sha256_of_the_base64_text_not_of_the_pdf_bytes() -> None:
    text, pdf = recorded_pdf()
    recorded_hash = recorded("pdf_default_ocr_annotation")["body"]["choices"][0]["message"]["annotations"][0]["file"]
    assert recorded_hash["hash"] == hashlib.sha256(text.encode()).hexdigest()
    assert recorded_hash["hash"] != hashlib.sha256(pdf).hexdigest()
    with Emulator() as emu:  # the emulator follows the recording
        options = RequestOptions("meta-llama/llama-3.3-70b-instruct", "What is it?", 100)
        body = pdf_request(options, pdf, "f.pdf", "native")
        body.pop("plugins")  # no plugin on a text-only model: mistral-ocr, as in the recording
        answer = _post(emu, body)
    assert answer["choices"][0]["message"]["annotations"][0]["file"]["hash"] == recorded_hash["hash"]
    assert fee(answer["usage"]) == pytest.approx(OCR_FEE)


@pytest.mark.slow
def test_recorded_annotations_survive_the_store_and_go_back_exactly_as_received(tmp_path: Path) -> None:
    text, pdf = recorded_pdf()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "filename.pdf").write_bytes(pdf)
    (document,) = discover_documents([str(tmp_path / "docs")])
    answer = recorded("pdf_default_ocr_annotation")["body"]
    received = answer["choices"][0]["message"]["annotations"]
    run = RunColumns(run_id="r1", model=answer["model"], prompt_sha256="p")
    job = Unsent(document, None, None)
    with Store(tmp_path / "out", "r1") as store:
        store.record(row(job, run, "ok", "2026-11-30T00:00:00+00:00"), annotation_rows(job, run, tuple(received), "x"))
    parses = stored_parses(tmp_path / "out", [document.doc_id])
    stored = tuple(as_message_annotation(a) for a in parses[document.doc_id])
    assert list(stored) == received  # hash, name and every content part, as the API sent them
    options = RequestOptions("meta-llama/llama-3.3-70b-instruct", "Who wrote it?", 100)
    body = pdf_request(options, pdf, "filename.pdf", "mistral-ocr", stored)
    sent_text = body["messages"][0]["content"][1]["file"]["file_data"].partition(",")[2]
    assert sent_text == text  # the same base64 text, so the same file.hash: OpenRouter can match the parse
    assert body["messages"][1]["annotations"] == received
    with Emulator() as emu:
        follow_up = _post(emu, body)
        (record,) = emu.records
    assert record.reused_hashes == (received[0]["file"]["hash"],) and record.ocr_pages_billed == 0
    assert fee(follow_up["usage"]) == pytest.approx(0.0)


def test_annotations_that_are_not_files_are_not_stored(tmp_path: Path) -> None:
    completion = parse_completion(recorded("url_citation_annotations")["body"], httpx.Headers())
    assert completion.annotations and {a["type"] for a in completion.annotations} == {"url_citation"}
    (tmp_path / "d.pdf").write_bytes(recorded_pdf()[1])
    (document,) = discover_documents([str(tmp_path)])
    job = Unsent(document, None, None)
    assert annotation_rows(job, RunColumns("r", "m", "p"), completion.annotations, "native") == []


def test_the_recorded_429_is_a_rate_limit_with_the_providers_words() -> None:
    fixture = recorded("error_429_provider_returned_error")
    error = error_from_response(httpx.Response(fixture["status"], json=fixture["body"]))
    assert isinstance(error, errors.RateLimited) and error.retry_after is None
    assert "Provider returned error" in error.message and "temporarily rate-limited upstream" in error.message


def test_the_recorded_non_answer_is_recognised_and_real_answers_are_not() -> None:
    assert says_unreadable(recorded("pdf_unreadable_reply")["body"]["choices"][0]["message"]["content"])
    for name in ANSWERS:
        if name != "pdf_unreadable_reply":
            assert not says_unreadable(recorded(name)["body"]["choices"][0]["message"]["content"]), name


def _post(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    response = httpx.post(f"{emu.base_url}/chat/completions", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.slow
@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("OPENROUTER_API_KEY"), reason="needs a real OPENROUTER_API_KEY")
def test_live_resending_annotations_skips_the_ocr_fee(capsys: pytest.CaptureFixture[str]) -> None:
    """The one documented behaviour no recording shows: does a follow-up with the annotations pay OCR again?

    Two requests with mistral-ocr on the recorded 1-page PDF (about $0.005 in all); prints both fees.
    """
    _, pdf = recorded_pdf()
    options = RequestOptions("openai/gpt-4o-mini", "In five words, what is this?", 50)

    async def both() -> tuple[Any, Any]:
        async with httpx.AsyncClient(timeout=120) as http:
            key = os.environ["OPENROUTER_API_KEY"]
            client = OpenRouterClient(http, base_url="https://openrouter.ai/api/v1", api_key=key)
            first = await client.complete(pdf_request(options, pdf, "filename.pdf", "mistral-ocr"))
            again = pdf_request(options, pdf, "filename.pdf", "mistral-ocr", first.annotations)
            return first, await client.complete(again)

    first, second = asyncio.run(both())
    token_price = 0.00000015 * first.prompt_tokens + 0.0000006 * first.completion_tokens  # gpt-4o-mini list prices
    found = (
        f"live: first request cost ${first.cost_usd:.6f} ({len(first.annotations)} annotation(s)); "
        f"the follow-up with them cost ${second.cost_usd:.6f}; tokens alone ~${token_price:.6f}"
    )
    with capsys.disabled():
        print(found)
    assert first.annotations, found
    assert second.cost_usd is not None and first.cost_usd is not None
    assert second.cost_usd < first.cost_usd - OCR_FEE / 2, f"resending annotations did not skip the OCR fee: {found}"
