"""The client is the only place HTTP statuses become error types; every documented status maps somewhere."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from docrouter import errors
from docrouter.call.client import OpenRouterClient, error_for_status, parse_retry_after

# reference/openrouter-api.md section 6.1: every status the API documents, and what it must mean here.
NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)

DOCUMENTED = {
    400: (errors.BadRequest, "terminal"),
    401: (errors.AuthError, "fatal"),
    402: (errors.CreditsError, "fatal"),
    403: (errors.Moderation, "terminal"),
    404: (errors.NoEndpoint, "terminal"),
    408: (errors.Timeout, "transient"),
    413: (errors.PayloadTooLarge, "terminal"),
    422: (errors.BadRequest, "terminal"),
    429: (errors.RateLimited, "transient"),
    500: (errors.ServerError, "transient"),
    502: (errors.ServerError, "transient"),
    503: (errors.ServerError, "transient"),
    524: (errors.Timeout, "transient"),
    529: (errors.ServerError, "transient"),
}


def _branch(kind: type[errors.DocrouterError]) -> str:
    if issubclass(kind, errors.RunFatal):
        return "fatal"
    return "transient" if issubclass(kind, errors.Transient) else "terminal"


@pytest.mark.parametrize("status", sorted(DOCUMENTED))
def test_every_documented_status_maps_to_its_branch(status: int) -> None:
    expected_type, expected_branch = DOCUMENTED[status]
    assert error_for_status(status) is expected_type
    assert _branch(error_for_status(status)) == expected_branch


def complete_with(handler) -> errors.DocrouterError | object:
    """Run one completion against a transport built from `handler`; return the result or the error."""

    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            client = OpenRouterClient(http, base_url="http://test/api/v1", api_key="sk-or-v1-test")
            try:
                return await client.complete({"model": "m", "messages": []})
            except errors.DocrouterError as exc:
                return exc

    return asyncio.run(go())


def ok_body(content: str = "hello", **extra) -> dict:
    return {
        "id": "gen-1-abc",
        "model": "m",
        "choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "cost": 0.0001},
        **extra,
    }


def test_success_is_parsed_with_cost_and_annotations() -> None:
    ann = [{"type": "file", "file": {"hash": "ab" * 32, "name": "a.pdf", "content": []}}]
    body = ok_body()
    body["choices"][0]["message"]["annotations"] = ann
    result = complete_with(lambda r: httpx.Response(200, json=body))
    assert result.content == "hello" and result.cost_usd == 0.0001 and result.prompt_tokens == 3
    assert result.annotations[0]["file"]["hash"] == "ab" * 32


def test_200_with_only_an_error_body_is_a_transient_server_error() -> None:
    body = {"error": {"message": "Internal Server Error", "code": 500}, "user_id": "org_abc123"}
    result = complete_with(lambda r: httpx.Response(200, json=body))
    assert isinstance(result, errors.ServerError) and result.retryable


def test_200_with_a_429_inside_is_rate_limited() -> None:
    body = {"error": {"message": "Provider returned error", "code": 429, "metadata": {"raw": "error code: 1015"}}}
    result = complete_with(lambda r: httpx.Response(200, json=body))
    assert isinstance(result, errors.RateLimited)
    assert "1015" in result.message


def test_finish_reason_error_is_transient() -> None:
    body = ok_body("partial")
    body["choices"][0]["finish_reason"] = "error"
    body["choices"][0]["error"] = {"code": 502, "message": "upstream died", "metadata": {"error_type": "x"}}
    result = complete_with(lambda r: httpx.Response(200, json=body))
    assert isinstance(result, errors.ServerError)


def test_empty_content_is_retried_and_its_cost_is_kept() -> None:
    result = complete_with(lambda r: httpx.Response(200, json=ok_body("  ")))
    assert isinstance(result, errors.EmptyAnswer) and result.charged_usd == 0.0001


def test_html_524_from_cloudflare_is_a_timeout() -> None:
    html = "<html><body><h1>524: A timeout occurred</h1></body></html>"
    result = complete_with(lambda r: httpx.Response(524, text=html, headers={"content-type": "text/html"}))
    assert isinstance(result, errors.Timeout) and "non-JSON" in result.message


def test_error_without_code_uses_http_status_field() -> None:
    body = {
        "error": {
            "message": "All providers at capacity",
            "error_type": "rate_limit_exceeded",
            "http_status": 429,
            "availability": {"code": "capacity_exhausted", "retry_after": 40},
        }
    }
    result = complete_with(lambda r: httpx.Response(429, json=body))
    assert isinstance(result, errors.RateLimited) and result.retry_after == 40


def test_code_as_string_is_accepted() -> None:
    result = complete_with(lambda r: httpx.Response(400, json={"error": {"code": "402", "message": "no"}}))
    assert isinstance(result, errors.CreditsError)


def test_502_after_parsing_carries_the_file_annotations() -> None:
    ann = {
        "type": "file",
        "file": {"hash": "cd" * 32, "name": "d.pdf", "content": [{"type": "text", "text": "x"}]},
    }
    body = {
        "error": {
            "code": 502,
            "message": "Provider returned an error",
            "metadata": {"file_annotations": [ann]},
        }
    }
    result = complete_with(lambda r: httpx.Response(502, json=body))
    assert isinstance(result, errors.ServerError) and result.annotations == (ann,)


def test_dropped_connection_and_timeout_are_transient() -> None:
    def drop(request):
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    def slow(request):
        raise httpx.ReadTimeout("timed out", request=request)

    assert isinstance(complete_with(drop), errors.ConnectionFailed)
    assert isinstance(complete_with(slow), errors.Timeout)
    assert complete_with(drop).sent and complete_with(slow).sent  # the request left: it may have been billed


def test_no_connection_means_the_request_was_never_sent() -> None:
    def refused(request):
        raise httpx.ConnectError("All connection attempts failed", request=request)

    def unreachable(request):
        raise httpx.ConnectTimeout("timed out", request=request)

    assert not complete_with(refused).sent and not complete_with(unreachable).sent


def test_non_json_200_is_a_server_error_not_a_crash() -> None:
    assert isinstance(complete_with(lambda r: httpx.Response(200, text="<html>")), errors.ServerError)


def test_key_goes_in_the_header_and_max_tokens_in_the_body() -> None:
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers["authorization"]
        seen["url"] = str(request.url)
        return httpx.Response(200, json=ok_body())

    complete_with(handler)
    assert seen["auth"] == "Bearer sk-or-v1-test" and "sk-or" not in seen["url"]


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        ({"Retry-After": "7"}, 7, 7),
        ({"Retry-After": "1.5"}, 1.5, 1.5),
        ({"Retry-After": format_datetime(NOW + timedelta(seconds=30), usegmt=True)}, 30, 30),
        ({"X-RateLimit-Reset": str(int((NOW.timestamp() + 20) * 1000))}, 20, 20),
        ({"Retry-After": "garbage"}, None, None),
        ({}, None, None),
    ],
)
def test_retry_after_forms(headers: dict, low, high) -> None:
    value = parse_retry_after(httpx.Headers(headers), now=NOW.timestamp)
    if low is None:
        assert value is None
    else:
        assert low <= value <= high


def test_rate_limit_reset_echoed_in_the_body_is_honoured() -> None:
    reset = str(int((NOW.timestamp() + 10) * 1000))
    error = {"code": 429, "metadata": {"headers": {"X-RateLimit-Limit": "50", "X-RateLimit-Reset": reset}}}
    assert parse_retry_after(httpx.Headers({}), error, now=NOW.timestamp) == 10


def test_request_body_is_valid_json() -> None:
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=ok_body())

    complete_with(handler)
    assert bodies[0]["model"] == "m"


CREDITS = "https://openrouter.ai/settings/credits and upgrade to a paid account"
KEYS = "https://openrouter.ai/settings/keys and create a key with a higher monthly limit"


@pytest.mark.parametrize(
    ("said", "advised", "not_advised"),
    [
        (  # the documented text: a shorter answer fits the credits left
            "This request requires more credits, or fewer max_tokens. You requested up to 1024 tokens, but can "
            f"only afford 301. To increase, visit {CREDITS}",
            ["lower --max-tokens (the request asked for up to 1024, the rest covers 301), or add credits"],
            ["--budget", "out of credits"],
        ),
        (  # the same, against a key's monthly limit
            "This request requires more credits, or fewer max_tokens. You requested up to 1024 tokens, but can "
            f"only afford 40. To increase, visit {KEYS}",
            ["lower --max-tokens", "or raise this API key's monthly limit"],
            ["add credits"],
        ),
        (  # nothing left: no answer length fits
            "This request requires more credits, or fewer max_tokens. You requested up to 1024 tokens, but can "
            f"only afford 0. To increase, visit {CREDITS}",
            ["out of credits; add credits, then rerun", "with --budget at most what is left"],
            ["--max-tokens"],
        ),
        (
            "Prompt tokens limit exceeded: 230799 > 91442",
            ["out of credits; add credits, then rerun"],
            ["--max-tokens"],
        ),
        ("Insufficient credits", ["out of credits; add credits"], ["--max-tokens"]),
        (f"Key limit exceeded. Visit {KEYS}", ["key has reached its spending limit; raise this API key's"], []),
    ],
)
def test_402_advice_follows_what_the_api_said(said: str, advised: list[str], not_advised: list[str]) -> None:
    result = complete_with(lambda r: httpx.Response(402, json={"error": {"code": 402, "message": said}}))
    assert isinstance(result, errors.CreditsError)
    assert result.message.endswith(f"(HTTP 402: {said})")  # the API's own words are kept
    advice = result.message.removesuffix(f"(HTTP 402: {said})")
    assert [a for a in advised if a not in advice] == []
    assert [n for n in not_advised if n in advice] == []
