"""The OpenRouter HTTP client: one attempt per call, every failure translated into docrouter.errors.

This is the only module that looks at HTTP statuses and httpx exceptions.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from docrouter import errors

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"

_STATUS_ERRORS: dict[int, type[errors.DocrouterError]] = {
    400: errors.BadRequest,
    401: errors.AuthError,
    402: errors.CreditsError,
    403: errors.Moderation,
    404: errors.NoEndpoint,
    408: errors.Timeout,
    413: errors.PayloadTooLarge,
    422: errors.BadRequest,
    429: errors.RateLimited,
    500: errors.ServerError,
    502: errors.ServerError,
    503: errors.ServerError,
    504: errors.Timeout,
    524: errors.Timeout,
    529: errors.ServerError,
}


@dataclass(frozen=True)
class Completion:
    """A successful chat completion, reduced to what the run records."""

    generation_id: str | None
    model: str
    content: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # money billed (usage.cost; BYOK: plus the upstream cost); None when not said
    provider: str | None = None
    annotations: tuple[dict[str, Any], ...] = field(default=())
    fee_usd: float | None = None  # the part of cost_usd that is not tokens (the OCR fee), when itemised
    reasoning_tokens: int = 0  # usage.completion_tokens_details.reasoning_tokens (part of completion_tokens)
    truncated: bool = False  # cut by the length limit (finish_reason "length"), in this answer or a part's


def error_for_status(status: int) -> type[errors.DocrouterError]:
    """The error type an HTTP status (or an `error.code` inside a body) stands for."""
    if status in _STATUS_ERRORS:
        return _STATUS_ERRORS[status]
    if status >= 500:
        return errors.ServerError
    if status >= 400:
        return errors.BadRequest
    return errors.ServerError


def parse_retry_after(
    headers: httpx.Headers, body_error: dict[str, Any] | None = None, *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date), X-RateLimit-Reset (epoch ms) or the body."""
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now())
            except (TypeError, ValueError):
                pass
    reset = headers.get("x-ratelimit-reset") or _body_header(body_error, "X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) / 1000.0 - now())
        except ValueError:
            pass
    availability = (body_error or {}).get("availability")
    if isinstance(availability, dict) and isinstance(availability.get("retry_after"), int | float):
        return max(0.0, float(availability["retry_after"]))
    return None


def _body_header(body_error: dict[str, Any] | None, name: str) -> str | None:
    metadata = (body_error or {}).get("metadata")
    headers = metadata.get("headers") if isinstance(metadata, dict) else None
    if isinstance(headers, dict) and headers.get(name) is not None:
        return str(headers[name])
    return None


def _error_code(body_error: dict[str, Any], fallback: int) -> int:
    """`error.code`, else `error.http_status`, else the HTTP status (codes may arrive as strings)."""
    for key in ("code", "http_status"):
        try:
            return int(body_error[key])
        except (KeyError, TypeError, ValueError):
            continue
    return fallback


def _file_annotations(body_error: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    metadata = body_error.get("metadata")
    found = metadata.get("file_annotations") if isinstance(metadata, dict) else None
    return tuple(a for a in found or () if isinstance(a, dict))


def error_from_body(body_error: dict[str, Any], status: int, headers: httpx.Headers) -> errors.DocrouterError:
    """Translate an `{"error": {...}}` object (from any status, 200 included) into the error tree."""
    code = _error_code(body_error, status)
    kind = error_for_status(code)
    message = str(body_error.get("message") or f"HTTP {code}")
    metadata = body_error.get("metadata")
    if isinstance(metadata, dict) and metadata.get("raw"):
        message = f"{message}: {str(metadata['raw'])[:200]}"
    if issubclass(kind, errors.Transient):
        return kind(
            message,
            status=code,
            retry_after=parse_retry_after(headers, body_error),
            annotations=_file_annotations(body_error),
        )
    if kind is errors.BadRequest and _over_context(metadata, message):
        kind = errors.ContextExceeded
    return kind(_what_to_do(kind, message, code), status=code)


def _over_context(metadata: Any, message: str) -> bool:
    """The documented error_type, or the API's wording ("maximum context length is N tokens")."""
    typed = isinstance(metadata, dict) and metadata.get("error_type") == "context_length_exceeded"
    return typed or "maximum context length" in message.lower()


# What a person can do about a run-fatal answer (the API's own words are kept in parentheses).
_ADVICE: dict[type[errors.DocrouterError], str] = {
    errors.AuthError: "OpenRouter rejected the API key; check OPENROUTER_API_KEY or the Secret block",
}
# The 402 texts (reference/openrouter-api.md 6.5): "This request requires more credits, or fewer max_tokens.
# You requested up to N tokens, but can only afford M." (credits, or a key's monthly limit: "create a key with
# a higher monthly limit"), and "Prompt tokens limit exceeded: X > Y" (the prompt alone is over what is left).
_AFFORD = re.compile(r"requested up to (\d+) tokens, but can only afford (\d+)")


def _what_to_do(kind: type[errors.DocrouterError], message: str, status: int) -> str:
    advice = credits_advice(message) if kind is errors.CreditsError else _ADVICE.get(kind)
    return f"{advice} (HTTP {status}: {message})" if advice else message


def credits_advice(message: str) -> str:
    """What to do about a 402, from what the API said: a shorter answer fits the money left (lower
    --max-tokens), or nothing does (add credits, or raise the key's limit)."""
    key_limit = "key" in message.lower() and "limit" in message.lower()
    money = "raise this API key's monthly limit in OpenRouter's key settings" if key_limit else "add credits"
    afford = _AFFORD.search(message)
    if "max_tokens" in message and (afford is None or int(afford.group(2)) > 0):
        asked = f" (the request asked for up to {afford.group(1)}, the rest covers {afford.group(2)})" if afford else ""
        return f"the money left cannot cover an answer that long; lower --max-tokens{asked}, or {money}"
    broke = "this API key has reached its spending limit" if key_limit else "the OpenRouter account is out of credits"
    return (
        f"{broke}; {money}, then rerun (with --budget at most what is left, a run stops at its cap instead "
        "and answers the rest later)"
    )


def error_from_response(response: httpx.Response) -> errors.DocrouterError:
    """Translate a non-2xx response, JSON or not (Cloudflare sends HTML 503/524 pages)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return error_from_body(body["error"], response.status_code, response.headers)
    snippet = " ".join(response.text.split())[:120]
    kind = error_for_status(response.status_code)
    message = f"HTTP {response.status_code} (non-JSON body: {snippet!r})"
    if issubclass(kind, errors.Transient):
        return kind(message, status=response.status_code, retry_after=parse_retry_after(response.headers))
    return kind(_what_to_do(kind, message, response.status_code), status=response.status_code)


def parse_completion(body: dict[str, Any], headers: httpx.Headers) -> Completion:
    """A Completion from a 200 body, or the error it hides (no choices, finish_reason error, empty)."""
    if isinstance(body.get("error"), dict) and not body.get("choices"):
        raise error_from_body(body["error"], 200, headers)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise errors.ServerError("HTTP 200 without choices or error", status=200)
    choice = choices[0]
    message: dict[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
    usage: dict[str, Any] = body["usage"] if isinstance(body.get("usage"), dict) else {}
    cost_usd, fee_usd = billed(usage)
    if choice.get("finish_reason") == "error":
        problem: dict[str, Any] = choice["error"] if isinstance(choice.get("error"), dict) else {}
        failure = error_from_body({"code": 502, **problem}, 200, headers)
        if isinstance(failure, errors.Transient):
            failure.charged_usd = cost_usd or 0.0
        raise failure
    content = message.get("content")
    annotations = tuple(a for a in message.get("annotations") or () if isinstance(a, dict))
    cut = choice.get("finish_reason") == "length"  # an empty cut answer is the caller's to retry with more room
    if not cut and (not isinstance(content, str) or not content.strip()):
        raise errors.EmptyAnswer(
            "HTTP 200 with empty content", status=200, charged_usd=cost_usd or 0.0, annotations=annotations
        )
    return Completion(
        generation_id=body.get("id") or headers.get("x-generation-id"),
        model=str(body.get("model") or ""),
        content=content if isinstance(content, str) else "",
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cost_usd=cost_usd,
        provider=body.get("provider"),
        annotations=annotations,
        fee_usd=fee_usd,
        reasoning_tokens=_reasoning_tokens(usage),
        truncated=cut,
    )


def billed(usage: dict[str, Any]) -> tuple[float | None, float | None]:
    """(money billed, its fee part) from `usage`: with BYOK, `cost` is OpenRouter's fee (the OCR fee
    included) and the provider's charge is cost_details.upstream_inference_cost; both are money spent.
    The fee is what is left after the itemised prompt and completion costs (None when not itemised)."""
    cost = _finite(usage.get("cost"))
    details: dict[str, Any] = usage["cost_details"] if isinstance(usage.get("cost_details"), dict) else {}
    if usage.get("is_byok") is True:
        upstream = _finite(details.get("upstream_inference_cost"))
        if upstream is not None:
            cost = (cost or 0.0) + upstream
    prompt = _finite(details.get("upstream_inference_prompt_cost"))
    completion = _finite(details.get("upstream_inference_completions_cost"))
    if cost is None or prompt is None or completion is None:
        return cost, None
    return cost, max(0.0, cost - prompt - completion)


def _finite(value: Any) -> float | None:
    """A finite, non-negative number, else None (a NaN or negative cost is not a bill we can count)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _reasoning_tokens(usage: dict[str, Any]) -> int:
    details = usage.get("completion_tokens_details")
    value = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def translate_transport_error(exc: httpx.TransportError) -> errors.Transient:
    """Timeouts and broken connections are worth another attempt."""
    name = type(exc).__name__
    # No connection, no request: nothing reached the API, so nothing can have been billed.
    sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    if isinstance(exc, httpx.TimeoutException):
        return errors.Timeout(f"request timed out ({name})", sent=sent)
    return errors.ConnectionFailed(f"connection failed ({name}: {exc})", sent=sent)


class OpenRouterClient:
    """Chat completions and the model list over one pooled httpx.AsyncClient (passed in)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        referer: str | None = None,
        title: str | None = None,
        price_capped: bool = False,
    ) -> None:
        self._http = http
        self.price_capped = price_capped  # requests carry provider.max_price: a bare "No endpoints" means price
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        if referer:
            self._headers["HTTP-Referer"] = referer
        if title:
            self._headers["X-OpenRouter-Title"] = title

    async def complete(self, payload: dict[str, Any] | bytes) -> Completion:
        """One POST /chat/completions attempt; raises a docrouter error on any failure."""
        content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {**self._headers, "Content-Type": "application/json"}
        url = f"{self.base_url}/chat/completions"
        try:
            async with self._http.stream("POST", url, content=content, headers=headers) as response:
                await _read_body(response)
        except httpx.TransportError as exc:
            raise translate_transport_error(exc) from None
        try:
            return parse_completion(_json_object(response, "HTTP 200 with"), response.headers)
        except errors.NoEndpoint as exc:
            raise price_refusal(exc) if self.price_capped and _about_price(exc.message) else exc from None

    async def billed_for(self, generation_id: str) -> float | None:
        """What GET /generation says generation `generation_id` cost (BYOK: plus upstream); None if not known."""
        try:
            response = await self._http.get(
                f"{self.base_url}/generation", params={"id": generation_id}, headers=self._headers
            )
            data = _json_object(response, "GET /generation returned").get("data")
        except (httpx.TransportError, errors.DocrouterError):
            return None
        if not isinstance(data, dict):
            return None
        total = _finite(data.get("total_cost"))
        upstream = _finite(data.get("upstream_inference_cost"))
        if total is not None and data.get("is_byok") is True and upstream is not None:
            total += upstream
        return total


async def _read_body(response: httpx.Response) -> None:
    """Read the body; a connection lost after the headers keeps X-Generation-Id for a cost lookup."""
    try:
        await response.aread()
    except httpx.TransportError as exc:
        error = translate_transport_error(exc)
        error.generation_id = response.headers.get("x-generation-id")
        raise error from None


def _about_price(message: str) -> bool:
    """A 404 "No endpoints found" that names no missing capability ("that support image input" ...)."""
    lowered = message.lower()
    return lowered.startswith("no endpoints found") and "support" not in lowered


def price_refusal(exc: errors.NoEndpoint) -> errors.PriceRefused:
    return errors.PriceRefused(
        f"no provider serves the model at or below the max price sent (provider.max_price): prices rose since "
        f"the model list was read; rerun with --refresh-models or a higher --price-headroom ({exc.message})",
        status=exc.status,
    )


def models_fetcher(base_url: str, api_key: str | None, *, timeout_s: float = 20.0) -> Any:
    """A synchronous `fetch(offset, limit) -> dict` for the catalogue, translating failures likewise."""

    def fetch(offset: int, limit: int) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        try:
            with httpx.Client(timeout=timeout_s) as http:
                response = http.get(
                    f"{base_url.rstrip('/')}/models",
                    params={"offset": offset, "limit": limit},
                    headers=headers,
                )
        except httpx.TransportError as exc:
            raise translate_transport_error(exc) from None
        return _json_object(response, "GET /models returned")

    return fetch


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The body of a 200 as a JSON object; the error the response stands for otherwise."""
    if response.status_code != 200:
        raise error_from_response(response)
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise errors.ServerError(f"{what} a body that is not JSON", status=200) from None
    if not isinstance(body, dict):
        raise errors.ServerError(f"{what} a JSON body that is not an object", status=200)
    return body
