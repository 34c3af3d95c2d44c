"""The emulator's routes: the OpenRouter API under /api/v1 (and /v1), and /_emulator/ admin endpoints."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from docrouter.emulator.chat import chat_completions, check_key, rejected
from docrouter.emulator.faults import Faults
from docrouter.emulator.intake import Rejection
from docrouter.emulator.models import models_page
from docrouter.emulator.records import RequestRecord
from docrouter.emulator.replies import error_body
from docrouter.emulator.state import EmulatorState

API_PREFIXES = ("/api/v1", "/v1")
UNLIMITED_CREDITS = 1_000_000.0  # what /credits reports for an emulator without a credit limit


Endpoint = Callable[[Request], Awaitable[Response]]


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _logged(endpoint: Endpoint, *, authorised: bool = True) -> Endpoint:
    """Wrap an API endpoint: check the key if it needs one (a Rejection becomes its error), log the call."""

    async def wrapped(request: Request) -> Response:
        state = _state(request)
        arrived = time.time()
        try:
            if authorised:
                check_key(request, state)
            response = await endpoint(request)
        except Rejection as exc:
            response = rejected(exc)
        state.record(RequestRecord(time=arrived, path=request.url.path, status=response.status_code))
        return response

    return wrapped


def _int_param(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        raise Rejection(400, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise Rejection(400, f"{name} must be between {low} and {high}")
    return value


async def list_models(request: Request) -> Response:
    """GET /models: public, paginated, prices as decimal strings."""
    offset = _int_param(request, "offset", 0, low=0, high=10**9)
    limit = _int_param(request, "limit", 500, low=1, high=1000)
    wanted = request.query_params.get("input_modalities", "")
    modalities = frozenset(m.strip() for m in wanted.split(",") if m.strip())
    prefix = request.url.path.rsplit("/models", 1)[0]
    page = models_page(_state(request).models, offset=offset, limit=limit, input_modalities=modalities, prefix=prefix)
    return JSONResponse(page, headers={"Cache-Control": "public, max-age=300, stale-while-revalidate=3600"})


async def generation(request: Request) -> Response:
    """GET /generation?id=: the call's cost, after an optional 404 window."""
    state = _state(request)
    generation_id = request.query_params.get("id", "")
    data = state.generations.get(generation_id, state.picker.faults.generation_404_seconds)
    if data is None:
        return JSONResponse(error_body(404, f"Generation {generation_id} not found"), status_code=404)
    return JSONResponse({"data": data})


def _key_data(state: EmulatorState) -> dict[str, Any]:
    ledger = state.ledger
    used = ledger.billed_usd
    key = state.settings.api_key
    return {
        "label": f"{key[:12]}...{key[-3:]}",
        "limit": ledger.credits_usd,
        "limit_reset": None,
        "limit_remaining": ledger.remaining_usd,
        "include_byok_in_limit": False,
        "usage": used,
        "usage_daily": used,
        "usage_weekly": used,
        "usage_monthly": used,
        "byok_usage": 0.0,
        "byok_usage_daily": 0.0,
        "byok_usage_weekly": 0.0,
        "byok_usage_monthly": 0.0,
        "is_free_tier": False,
        "is_management_key": False,
        "is_provisioning_key": False,
        "creator_user_id": "user_emulator",
        "expires_at": None,
        "rate_limit": {"requests": -1, "interval": "10s", "note": "This field is deprecated and safe to ignore."},
    }


async def key(request: Request) -> Response:
    """GET /key: the key's limit, usage and limit_remaining (null: unlimited)."""
    return JSONResponse({"data": _key_data(_state(request))})


async def legacy_key(request: Request) -> Response:
    """GET /auth/key: the older, shorter form."""
    data = _key_data(_state(request))
    fields = ("label", "usage", "limit", "limit_remaining", "is_free_tier", "rate_limit")
    return JSONResponse({"data": {name: data[name] for name in fields}})


async def credits(request: Request) -> Response:
    """GET /credits: total credits and usage (403 when modelled as management-key only)."""
    state = _state(request)
    if state.picker.faults.credits_need_management_key:
        return JSONResponse(error_body(403, "Only management keys can perform this operation"), status_code=403)
    total = state.ledger.credits_usd
    data = {"total_credits": UNLIMITED_CREDITS if total is None else total, "total_usage": state.ledger.billed_usd}
    return JSONResponse({"data": data})


async def admin_records(request: Request) -> Response:
    """GET /_emulator/records: the request log."""
    return JSONResponse({"records": [dataclasses.asdict(r) for r in _state(request).ledger.records]})


async def admin_stats(request: Request) -> Response:
    """GET /_emulator/stats: billed_usd, max_in_flight, counts by status and fault."""
    return JSONResponse(_state(request).ledger.stats())


async def admin_faults(request: Request) -> Response:
    """GET/POST /_emulator/faults: read or replace the knobs (JSON of Faults fields, plus `latency`)."""
    state = _state(request)
    if request.method == "POST":
        try:
            values = json.loads(await request.body() or b"{}")
            latency = values.pop("latency", None) if isinstance(values, dict) else None
            faults = Faults.from_mapping(values)
            if latency is not None:
                state.set_latency(float(latency))
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse(error_body(400, f"bad faults: {exc}"), status_code=400)
        state.picker.set(faults)
    return JSONResponse({**dataclasses.asdict(state.picker.faults), "latency": state.latency})


async def admin_credits(request: Request) -> Response:
    """POST /_emulator/credits: set the balance ({"credits_usd": 1.5} or null for unlimited)."""
    try:
        value = json.loads(await request.body() or b"{}").get("credits_usd")
        _state(request).ledger.set_credits(None if value is None else float(value))
    except (ValueError, TypeError, AttributeError) as exc:
        return JSONResponse(error_body(400, f"bad credits: {exc}"), status_code=400)
    return JSONResponse(_state(request).ledger.stats())


async def _not_found(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in the API's JSON error shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    return JSONResponse(error_body(status, f"{request.method} {request.url.path}: not found"), status_code=status)


def build_app(state: EmulatorState) -> Starlette:
    """The Starlette application serving `state`."""
    routes = []
    for prefix in API_PREFIXES:
        routes += [
            Route(f"{prefix}/chat/completions", chat_completions, methods=["POST"]),
            Route(f"{prefix}/models", _logged(list_models, authorised=False), methods=["GET"]),
            Route(f"{prefix}/generation", _logged(generation), methods=["GET"]),
            Route(f"{prefix}/key", _logged(key), methods=["GET"]),
            Route(f"{prefix}/auth/key", _logged(legacy_key), methods=["GET"]),
            Route(f"{prefix}/credits", _logged(credits), methods=["GET"]),
        ]
    routes += [
        Route("/_emulator/records", admin_records, methods=["GET"]),
        Route("/_emulator/stats", admin_stats, methods=["GET"]),
        Route("/_emulator/faults", admin_faults, methods=["GET", "POST"]),
        Route("/_emulator/credits", admin_credits, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
    app.state.emulator = state
    return app
