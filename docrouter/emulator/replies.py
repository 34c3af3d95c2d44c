"""The shapes the API answers with: completions, stream chunks, error bodies, Cloudflare pages, generations."""

from __future__ import annotations

import json
import random
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from docrouter.emulator.models import EmulatedModel

USER_ID = "user_emulator"
_NATIVE_FINISH = {
    "Google": {"stop": "STOP", "length": "MAX_TOKENS"},
    "Anthropic": {"stop": "end_turn", "length": "max_tokens"},
}
_ALPHANUMERIC = string.ascii_letters + string.digits


def new_generation_id(rng: random.Random) -> str:
    """`gen-<unix seconds>-<20 alphanumerics>`, the documented form."""
    return f"gen-{int(time.time())}-" + "".join(rng.choice(_ALPHANUMERIC) for _ in range(20))


def native_finish_reason(model: EmulatedModel, finish_reason: str) -> str:
    """The provider's own word for the finish reason (Google's STOP, Anthropic's end_turn, ...)."""
    return _NATIVE_FINISH.get(model.provider, {}).get(finish_reason, finish_reason)


def error_body(
    status: int, message: str, *, error_type: str | None = None, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`{"error": {"code", "message", "metadata"}, "user_id"}` as the API sends it."""
    error: dict[str, Any] = {"code": status, "message": message, "metadata": dict(metadata or {})}
    if error_type is not None:
        error["metadata"].setdefault("error_type", error_type)
    return {"error": error, "user_id": USER_ID}


def message_body(content: str, annotations: list[dict[str, Any]], reasoning: str | None = None) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": content,
        "refusal": None,
        "reasoning": reasoning,
        "annotations": annotations,
    }


@dataclass(frozen=True)
class Answer:
    """One generated answer, whether it is sent as JSON or as a stream."""

    generation_id: str
    model: EmulatedModel
    content: str
    finish_reason: str
    annotations: list[dict[str, Any]]
    usage: dict[str, Any]
    error: dict[str, Any] | None = None  # finish_reason "error": in the choice, or a mid-stream error event
    reasoning: str | None = None  # message.reasoning: the model's reasoning text (null when it did not reason)


def completion_body(answer: Answer) -> dict[str, Any]:
    """A full non-streaming chat completion."""
    choice: dict[str, Any] = {
        "logprobs": None,
        "finish_reason": answer.finish_reason,
        "native_finish_reason": native_finish_reason(answer.model, answer.finish_reason),
        "index": 0,
        "message": message_body(answer.content, answer.annotations, answer.reasoning),
    }
    if answer.error is not None:
        choice["error"] = answer.error
    return {
        "id": answer.generation_id,
        "provider": answer.model.provider,
        "model": answer.model.id,
        "object": "chat.completion",
        "created": int(time.time()),
        "system_fingerprint": None,
        "choices": [choice],
        "usage": answer.usage,
    }


def chunk(generation_id: str, model: EmulatedModel, choices: list[dict[str, Any]], **extra: Any) -> str:
    """One SSE `data:` event of a stream."""
    body = {
        "id": generation_id,
        "provider": model.provider,
        "model": model.id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "choices": choices,
        **extra,
    }
    return f"data: {json.dumps(body)}\n\n"


def delta_choice(delta: dict[str, Any], finish_reason: str | None = None, native: str | None = None) -> dict[str, Any]:
    return {
        "index": 0,
        "delta": delta,
        "finish_reason": finish_reason,
        "native_finish_reason": native,
        "logprobs": None,
    }


PROCESSING = ": OPENROUTER PROCESSING\n\n"
DONE = "data: [DONE]\n\n"


def cloudflare_page(status: int) -> str:
    """The HTML page Cloudflare sends instead of JSON (524 timeouts, 503 worker limits)."""
    title = {524: "A timeout occurred", 503: "Worker exceeded resource limits"}.get(status, "Error")
    return (
        "<!DOCTYPE html>\n<html><head><title>openrouter.ai | " + f"{status}: {title}</title></head>\n"
        f'<body><div id="cf-error-details"><h1>{title}</h1><span>Error code {status}</span>'
        "<p>Visit cloudflare.com for more information.</p>"
        "<p>(docrouter emulator: an injected Cloudflare error page)</p></div></body></html>\n"
    )


def generation_data(
    generation_id: str,
    model: EmulatedModel,
    *,
    usage: dict[str, Any],
    finish_reason: str,
    streamed: bool,
    latency_ms: int,
    media: int,
) -> dict[str, Any]:
    """The `data` object of GET /generation for a finished call."""
    return {
        "id": generation_id,
        "upstream_id": None,
        "created_at": datetime.now(UTC).isoformat(),
        "model": model.id,
        "provider_name": model.provider,
        "api_type": "completions",
        "streamed": streamed,
        "cancelled": False,
        "finish_reason": finish_reason,
        "native_finish_reason": native_finish_reason(model, finish_reason),
        "latency": latency_ms,
        "moderation_latency": None,
        "generation_time": latency_ms,
        "tokens_prompt": usage["prompt_tokens"],
        "tokens_completion": usage["completion_tokens"],
        "native_tokens_prompt": usage["prompt_tokens"],
        "native_tokens_completion": usage["completion_tokens"],
        "native_tokens_completion_images": 0,
        "native_tokens_reasoning": usage["completion_tokens_details"]["reasoning_tokens"],
        "native_tokens_cached": 0,
        "num_media_prompt": media,
        "num_media_completion": 0,
        "num_input_audio_prompt": 0,
        "num_search_results": 0,
        "num_fetches": 0,
        "total_cost": usage["cost"],
        "usage": usage["cost"],
        "upstream_inference_cost": usage["cost_details"].get("upstream_inference_cost"),
        "cache_discount": None,
        "is_byok": usage.get("is_byok", False),
        "provider_responses": [
            {
                "endpoint_id": "emulator",
                "is_byok": False,
                "latency": latency_ms,
                "model_permaslug": model.id,
                "provider_name": model.provider,
                "status": 200,
            }
        ],
        "origin": "",
        "app_id": None,
        "external_user": None,
        "session_id": None,
        "router": None,
        "service_tier": None,
    }
