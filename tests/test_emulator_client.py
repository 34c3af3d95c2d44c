"""Every failure the emulator injects reaches docrouter.client as the error its branch expects."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from docrouter import errors
from docrouter.call.client import Completion, OpenRouterClient
from docrouter.emulator import FAULT_KINDS, Emulator, Faults
from emulator_fixtures import pdf_body, text_body, text_pdf

pytestmark = pytest.mark.slow  # starts servers, subprocesses or Prefect flows

OCR_MODEL = "meta-llama/llama-3.3-70b-instruct"
EXPECTED = {
    "429": errors.RateLimited,
    "429_no_retry_after": errors.RateLimited,
    "429_bare": errors.RateLimited,
    "403": errors.Moderation,
    "drop_connection": errors.ConnectionFailed,
    "5xx": errors.ServerError,
    "408": errors.Timeout,
    "524": errors.Timeout,
    "524_html": errors.Timeout,
    "503_html": errors.ServerError,
    "502_with_annotations": errors.ServerError,
    "200_error_body": errors.ServerError,
    "200_finish_error": errors.ServerError,
    "empty_content": errors.EmptyAnswer,
    "drop_after_billing": errors.ConnectionFailed,
    "unreadable_reply": Completion,  # a billed answer; the call stage judges it (docrouter.nonanswers)
}


def complete(emu: Emulator, body: dict) -> Completion | errors.DocrouterError:
    async def go() -> Completion | errors.DocrouterError:
        async with httpx.AsyncClient(timeout=30) as http:
            client = OpenRouterClient(http, base_url=emu.base_url, api_key=emu.api_key)
            try:
                return await client.complete(body)
            except errors.DocrouterError as exc:
                return exc

    return asyncio.run(go())


def test_every_fault_kind_is_covered() -> None:
    assert set(EXPECTED) | {"slow"} == set(FAULT_KINDS)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_injected_fault_becomes_the_expected_error(kind: str) -> None:
    faults = Faults(**{f"rate_{kind}": 1.0, "retry_after": 2.0, "slow_seconds": 0.0})  # type: ignore[arg-type]
    with Emulator(faults=faults) as emu:
        outcome = complete(emu, pdf_body(text_pdf("One page. Two sentences."), model=OCR_MODEL))
    assert type(outcome) is EXPECTED[kind], outcome
    if kind == "429":
        assert outcome.retry_after == 2.0
    if kind == "502_with_annotations":
        assert outcome.annotations and outcome.annotations[0]["type"] == "file"
    if kind in ("200_finish_error", "empty_content"):
        assert outcome.charged_usd == pytest.approx(emu.billed_usd) and outcome.charged_usd > 0


def test_slow_answer_is_still_a_completion_with_the_billed_cost() -> None:
    with Emulator(faults=Faults(rate_slow=1.0, slow_seconds=0.05)) as emu:
        outcome = complete(emu, text_body())
    assert isinstance(outcome, Completion) and outcome.cost_usd == pytest.approx(emu.billed_usd)


@pytest.mark.parametrize(
    ("emulator_options", "body", "expected"),
    [
        ({"faults": Faults(fail_401=True)}, text_body(), errors.AuthError),
        ({"credits_usd": 0.0}, text_body(), errors.CreditsError),
        ({}, pdf_body(text_pdf("x"), model=OCR_MODEL, engine="native"), errors.NoEndpoint),
        ({}, text_body(model="nobody/nothing"), errors.BadRequest),
        ({"max_body_bytes": 1000}, text_body("x" * 2000), errors.PayloadTooLarge),
    ],
    ids=["401", "402", "404", "400", "413"],
)
def test_refusals_map_to_their_branch(emulator_options: dict, body: dict, expected: type) -> None:
    with Emulator(**emulator_options) as emu:
        outcome = complete(emu, body)
    assert type(outcome) is expected, outcome
