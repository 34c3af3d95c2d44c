"""Every fault knob of the emulator is observable over a real socket, and the draws reproduce."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time

import httpx
import openai
import pytest

from docrouter.emulator import Emulator, Faults
from docrouter.emulator.faults import parse_fault_flag
from emulator_fixtures import pdf_body, text_body, text_pdf

pytestmark = pytest.mark.slow  # starts servers, subprocesses or Prefect flows

PDF = text_pdf("A short page. It has two sentences.")
OCR_MODEL = "meta-llama/llama-3.3-70b-instruct"  # text only: PDFs default to mistral-ocr


def post(emu: Emulator, body: dict, *, client: httpx.Client | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    if client is not None:
        return client.post(f"{emu.base_url}/chat/completions", json=body, headers=headers)
    return httpx.post(f"{emu.base_url}/chat/completions", json=body, headers=headers, timeout=30.0)


def with_fault(**knobs: object) -> Emulator:
    return Emulator(faults=Faults(**knobs))  # type: ignore[arg-type]


def test_429_carries_retry_after_and_rate_limit_headers_in_ms() -> None:
    with with_fault(rate_429=1.0, retry_after=3.0) as emu:
        before_ms = time.time() * 1000
        response = post(emu, text_body())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert int(response.headers["x-ratelimit-reset"]) >= before_ms + 3000 - 1000
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert response.json()["error"]["metadata"]["headers"]["X-RateLimit-Reset"] == response.headers["x-ratelimit-reset"]
    assert emu.billed_usd == 0.0 and emu.records[0].fault == "429"


def test_429_without_retry_after_still_has_rate_limit_reset() -> None:
    with with_fault(rate_429_no_retry_after=1.0) as emu:
        response = post(emu, text_body())
    assert response.status_code == 429 and "retry-after" not in response.headers
    assert "x-ratelimit-reset" in response.headers


def test_bare_upstream_429_has_no_timing_headers() -> None:
    with with_fault(rate_429_bare=1.0) as emu:
        response = post(emu, text_body())
    assert response.status_code == 429
    assert "retry-after" not in response.headers and "x-ratelimit-reset" not in response.headers
    assert response.json()["error"]["message"] == "Provider returned error"


def test_5xx_statuses_come_from_the_seeded_draw() -> None:
    with with_fault(rate_5xx=1.0) as emu, httpx.Client() as client:
        statuses = [post(emu, text_body(), client=client).status_code for _ in range(12)]
    assert set(statuses) <= {500, 502, 503, 529} and len(set(statuses)) > 1


@pytest.mark.parametrize(("knob", "status"), [("rate_408", 408), ("rate_524", 524), ("rate_403", 403)])
def test_json_error_statuses(knob: str, status: int) -> None:
    with with_fault(**{knob: 1.0}) as emu:
        response = post(emu, text_body())
    assert response.status_code == status and response.json()["error"]["code"] == status


@pytest.mark.parametrize(("knob", "status"), [("rate_524_html", 524), ("rate_503_html", 503)])
def test_cloudflare_errors_arrive_as_html(knob: str, status: int) -> None:
    with with_fault(**{knob: 1.0}) as emu:
        response = post(emu, text_body())
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html") and "<html>" in response.text


def test_502_after_parsing_carries_the_file_annotations_and_bills_the_ocr_fee() -> None:
    with with_fault(rate_502_with_annotations=1.0) as emu:
        response = post(emu, pdf_body(PDF, model=OCR_MODEL))
    annotations = response.json()["error"]["metadata"]["file_annotations"]
    assert response.status_code == 502
    assert annotations[0]["file"]["hash"] == hashlib.sha256(base64.b64encode(PDF)).hexdigest()  # the recorded rule
    assert emu.billed_usd == pytest.approx(0.002) and emu.records[0].ocr_pages_billed == 1


def test_error_inside_a_200_body_has_no_choices() -> None:
    with with_fault(rate_200_error_body=1.0) as emu:
        response = post(emu, text_body())
    assert response.status_code == 200
    assert "choices" not in response.json() and response.json()["error"]["code"] == 500


def test_finish_reason_error_keeps_partial_content_and_bills_no_tokens() -> None:
    with with_fault(rate_200_finish_error=1.0) as emu:
        body = post(emu, text_body("First sentence here. Second one.")).json()
        scan = post(emu, pdf_body(PDF, model=OCR_MODEL)).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "error" and choice["error"]["code"] == 502
    # Zero completion insurance (as documented and recorded): no token charge on finish_reason "error"...
    assert choice["message"]["content"] and body["usage"]["cost"] == 0
    # ...but the file parse happened and is billed.
    assert scan["choices"][0]["finish_reason"] == "error" and scan["usage"]["cost"] == pytest.approx(0.002)
    assert emu.billed_usd == pytest.approx(0.002)


def test_empty_content_still_bills_the_prompt() -> None:
    with with_fault(rate_empty_content=1.0) as emu:
        body = post(emu, text_body()).json()
    assert body["choices"][0]["message"]["content"] == ""
    assert body["usage"]["completion_tokens"] == 0 and body["usage"]["cost"] > 0


def test_dropped_connection_breaks_the_response_and_bills_nothing() -> None:
    with with_fault(rate_drop_connection=1.0) as emu, pytest.raises(httpx.RemoteProtocolError):
        post(emu, text_body())
    assert emu.records[0].status == 0 and emu.billed_usd == 0.0


def test_connection_dropped_after_billing_was_still_billed() -> None:
    with with_fault(rate_drop_after_billing=1.0) as emu, pytest.raises(httpx.RemoteProtocolError):
        post(emu, text_body())
    assert emu.records[0].status == 0 and emu.billed_usd > 0


def test_slow_stream_sends_keep_alive_comments() -> None:
    with with_fault(rate_slow=1.0, slow_seconds=0.2) as emu:
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        body = {**text_body(), "stream": True}
        with httpx.stream("POST", f"{emu.base_url}/chat/completions", json=body, headers=headers) as response:
            comments = [line for line in response.iter_lines() if line.startswith(":")]
    assert len(comments) == 2 and emu.records[0].fault == "slow"


def test_mid_stream_error_raises_in_the_openai_client() -> None:
    with (
        with_fault(rate_200_error_body=1.0) as emu,
        openai.OpenAI(base_url=emu.base_url, api_key=emu.api_key, max_retries=0) as client,
    ):
        stream = client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=10, stream=True
        )
        with pytest.raises(openai.APIError, match="Internal Server Error"):
            list(stream)


def test_fail_401_refuses_even_the_right_key() -> None:
    with with_fault(fail_401=True) as emu:
        response = post(emu, text_body())
    assert response.status_code == 401 and response.json()["error"]["message"] == "User not found."


def test_first_attempts_per_document_fail_then_succeed() -> None:
    with with_fault(fail_first_attempts=2, fail_first_kind="429") as emu:
        statuses = [post(emu, pdf_body(PDF, model=OCR_MODEL)).status_code for _ in range(3)]
        other = post(emu, pdf_body(text_pdf("Another document."), model=OCR_MODEL)).status_code
    assert statuses == [429, 429, 200] and other == 429


def test_cloudflare_failure_knob_answers_failed_to_parse_but_ocr_works() -> None:
    with with_fault(cloudflare_fails=True) as emu:
        failed = post(emu, pdf_body(PDF, model=OCR_MODEL, engine="pdf-text"))
        ocr = post(emu, pdf_body(PDF, model=OCR_MODEL, engine="mistral-ocr"))
    assert failed.status_code == 400 and failed.json()["error"]["message"] == "Failed to parse"
    assert ocr.status_code == 200


def test_pdf_text_is_an_alias_of_cloudflare_ai_unless_rejected() -> None:
    with Emulator() as emu:
        assert post(emu, pdf_body(PDF, model=OCR_MODEL, engine="pdf-text")).status_code == 200
        assert emu.records[0].engine == "cloudflare-ai"
        emu.set_faults(Faults(pdf_text_rejected=True))
        assert post(emu, pdf_body(PDF, model=OCR_MODEL, engine="pdf-text")).status_code == 400


def test_generation_is_404_inside_its_window_then_found() -> None:
    # The window is wide enough that the first GET lands inside it even on a loaded machine.
    with with_fault(generation_404_seconds=2.0) as emu:
        generation_id = post(emu, text_body()).json()["id"]
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        statuses = []
        for _ in range(600):
            statuses.append(httpx.get(f"{emu.base_url}/generation", params={"id": generation_id}, headers=headers))
            if statuses[-1].status_code == 200:
                break
            time.sleep(0.05)
    assert statuses[0].status_code == 404 and statuses[-1].status_code == 200


def test_402_says_what_the_balance_can_afford_and_nothing_is_billed() -> None:
    with Emulator(credits_usd=0.001) as emu:
        response = post(emu, text_body(model="anthropic/claude-sonnet-4.5", max_tokens=1000))
    message = response.json()["error"]["message"]
    assert response.status_code == 402
    assert "You requested up to 1000 tokens, but can only afford 65" in message  # (0.001 - 4 * 3e-6) / 1.5e-5
    assert emu.billed_usd == 0.0


def test_402_without_max_tokens_reserves_the_models_maximum_output() -> None:
    with Emulator(credits_usd=0.5) as emu:
        body = {"model": "anthropic/claude-sonnet-4.5", "messages": [{"role": "user", "content": "hi"}]}
        response = post(emu, body)
    assert response.status_code == 402 and "You requested up to 64000 tokens" in response.json()["error"]["message"]


def test_credits_run_down_until_402_and_key_reports_the_remainder() -> None:
    with Emulator(credits_usd=0.003) as emu:  # each call holds $0.0015 back, then bills about $0.00025
        statuses = [
            post(emu, text_body(model="anthropic/claude-sonnet-4.5", max_tokens=100)).status_code for _ in range(10)
        ]
        key = httpx.get(f"{emu.base_url}/key", headers={"Authorization": f"Bearer {emu.api_key}"}).json()["data"]
    assert statuses[0] == 200 and statuses[-1] == 402
    assert key["limit_remaining"] == pytest.approx(0.003 - emu.billed_usd) and key["limit_remaining"] >= 0


def test_credits_endpoint_can_require_a_management_key() -> None:
    with with_fault(credits_need_management_key=True) as emu:
        response = httpx.get(f"{emu.base_url}/credits", headers={"Authorization": f"Bearer {emu.api_key}"})
    assert response.status_code == 403


def test_same_seed_same_fault_sequence() -> None:
    def sequence(seed: int) -> list[int]:
        with Emulator(faults=Faults(rate_429=0.3, rate_5xx=0.2), seed=seed) as emu, httpx.Client() as client:
            return [post(emu, text_body(f"request {i}"), client=client).status_code for i in range(20)]

    assert sequence(7) == sequence(7)
    assert sequence(7) != sequence(8)


def test_latency_makes_concurrent_requests_overlap() -> None:
    async def burst(emu: Emulator, count: int) -> list[int]:
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        limits = httpx.Limits(max_connections=count)
        async with httpx.AsyncClient(base_url=emu.base_url, headers=headers, limits=limits, timeout=30) as client:
            responses = await asyncio.gather(
                *(client.post("/chat/completions", json=text_body()) for _ in range(count))
            )
        return [r.status_code for r in responses]

    with Emulator(latency=0.3) as emu:
        statuses = asyncio.run(burst(emu, 200))
    assert statuses == [200] * 200 and emu.max_in_flight > 100


def test_admin_endpoints_set_faults_and_report_records_and_stats() -> None:
    with Emulator() as emu:
        admin = f"{emu.root_url}/_emulator"
        assert httpx.post(f"{admin}/faults", json={"rate_429": 1.0, "latency": 0.0}).status_code == 200
        assert post(emu, text_body()).status_code == 429
        assert httpx.post(f"{admin}/faults", json={"rate_nope": 1.0}).status_code == 400
        records = httpx.get(f"{admin}/records").json()["records"]
        stats = httpx.get(f"{admin}/stats").json()
    assert records[0]["fault"] == "429" and records[0]["status"] == 429
    assert stats["statuses"] == {"429": 1} and stats["faults"] == {"429": 1} and stats["billed_usd"] == 0.0


def test_faults_refuse_rates_outside_unit_interval_or_summing_past_one() -> None:
    with pytest.raises(ValueError, match="within"):
        Faults(rate_429=1.5)
    with pytest.raises(ValueError, match="add up"):
        Faults(rate_429=0.6, rate_5xx=0.6)


def test_fault_flags_parse_kinds_and_switches() -> None:
    assert parse_fault_flag("429=0.25") == ("rate_429", 0.25)
    assert parse_fault_flag("fail_401=true") == ("fail_401", True)
    assert parse_fault_flag("fail-first-attempts=2") == ("fail_first_attempts", 2)
    with pytest.raises(ValueError, match="unknown fault"):
        parse_fault_flag("teapot=1")
