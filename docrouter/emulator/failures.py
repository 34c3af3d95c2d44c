"""Injected failures as the API (or Cloudflare in front of it) really sends them."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from docrouter.emulator.faults import FaultPicker, Faults
from docrouter.emulator.models import EmulatedModel
from docrouter.emulator.replies import cloudflare_page, error_body

RATE_LIMIT = 20  # requests per window, for the X-RateLimit-Limit header


class ConnectionDropped(Exception):
    """Raised after a partial response so that uvicorn closes the connection (an emulated drop)."""


class DroppedResponse(Response):
    """Headers and a few bytes of body, then the connection dies."""

    def __init__(self, generation_id: str | None = None) -> None:
        super().__init__(status_code=200)
        self.generation_id = generation_id  # sent as X-Generation-Id when the answer was billed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
        if self.generation_id:
            headers.append((b"x-generation-id", self.generation_id.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"id": "gen-', "more_body": True})
        raise ConnectionDropped("emulated dropped connection")


class _HideDroppedConnections(logging.Filter):
    """uvicorn logs an app exception as an error; an emulated drop is not one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def quiet_dropped_connections() -> None:
    """Install the filter on uvicorn's error logger once."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDroppedConnections) for f in logger.filters):
        logger.addFilter(_HideDroppedConnections())


def json_error(
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    metadata: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    http_status: int | None = None,
) -> JSONResponse:
    """An error body; `http_status` differs from `status` for errors inside an HTTP 200."""
    body = error_body(status, message, error_type=error_type, metadata=metadata)
    return JSONResponse(body, status_code=http_status or status, headers=headers)


def _rate_limit_headers(retry_after: float) -> dict[str, str]:
    reset_ms = int((time.time() + retry_after) * 1000)
    return {"X-RateLimit-Limit": str(RATE_LIMIT), "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_ms)}


def gateway_failure(kind: str, faults: Faults, model: EmulatedModel) -> Response:
    """A failure before anything was parsed or billed."""
    if kind in ("429", "429_no_retry_after"):
        limits = _rate_limit_headers(faults.retry_after)
        headers = {**limits, "Retry-After": f"{faults.retry_after:g}"} if kind == "429" else limits
        message = "Rate limit exceeded: emulated limit of 20 requests per minute"
        meta: dict[str, Any] = {"headers": limits, "provider_name": None}
        return json_error(429, message, error_type="rate_limit_exceeded", metadata=meta, headers=headers)
    if kind == "429_bare":
        meta = {"raw": f"{model.id} is temporarily rate-limited upstream (emulated)", "provider_name": model.provider}
        return json_error(429, "Provider returned error", metadata=meta)
    if kind == "403":
        message = f'{model.id} requires moderation on {model.provider}. Your input was flagged for "emulated".'
        meta = {"reasons": ["emulated"], "flagged_input": "...", "provider_name": model.provider}
        meta["model_slug"] = model.id
        return json_error(403, message, error_type="content_policy_violation", metadata=meta)
    if kind == "drop_connection":
        return DroppedResponse()
    raise ValueError(f"not a gateway fault: {kind}")


def upstream_failure(
    kind: str, faults: Faults, picker: FaultPicker, model: EmulatedModel, annotations: list[dict[str, Any]]
) -> Response:
    """A failure after the files were parsed (their parse fee is billed by the caller)."""
    if kind == "5xx":
        return server_error(picker.choose((500, 502, 503, 529)), faults, model)
    if kind == "502_with_annotations":
        meta: dict[str, Any] = {"provider_name": model.provider, "file_annotations": annotations}
        return json_error(502, "Provider returned error", error_type="provider_unavailable", metadata=meta)
    if kind == "408":
        return json_error(408, "Request timed out", error_type="timeout")
    if kind == "524":
        return json_error(524, "Request timed out. Please try again later.")
    if kind in ("524_html", "503_html"):
        status = 524 if kind == "524_html" else 503
        return HTMLResponse(cloudflare_page(status), status_code=status, headers={"Server": "cloudflare"})
    if kind == "200_error_body":
        return json_error(500, "Internal Server Error", http_status=200)
    raise ValueError(f"not an upstream fault: {kind}")


def server_error(status: int, faults: Faults, model: EmulatedModel) -> JSONResponse:
    """500, 502, 503 or 529 with the body each one has."""
    if status == 502:
        meta = {"provider_name": model.provider, "raw": "upstream connection reset (emulated)"}
        return json_error(502, "Provider returned error", error_type="provider_unavailable", metadata=meta)
    if status == 503:
        headers = {"Retry-After": f"{faults.retry_after:g}"}
        message = f"No instances available for {model.id} right now (emulated)"
        return json_error(503, message, error_type="provider_overloaded", headers=headers)
    if status == 529:
        return json_error(529, "Provider overloaded (emulated)", error_type="provider_overloaded")
    return json_error(500, "Internal Server Error", error_type="server")
