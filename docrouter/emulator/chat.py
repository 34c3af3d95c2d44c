"""POST /chat/completions: key, intake, faults, file parsing, the credit check, billing, the answer."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from docrouter.emulator import billing
from docrouter.emulator.answers import compose, describe_image
from docrouter.emulator.failures import DroppedResponse, gateway_failure, upstream_failure
from docrouter.emulator.faults import GATEWAY_FAULTS, UPSTREAM_FAULTS, Faults
from docrouter.emulator.intake import ChatRequest, FileInput, Rejection, read_chat
from docrouter.emulator.parsing import PARSING_ENGINES, PageText, ParsedFile, ParseFailure, parse, reuse
from docrouter.emulator.records import RequestRecord
from docrouter.emulator.remote import downloaded
from docrouter.emulator.replies import Answer, completion_body, error_body, generation_data
from docrouter.emulator.routing import routed
from docrouter.emulator.state import EmulatorState
from docrouter.emulator.streams import streamed_answer
from docrouter.emulator.structured import reply as structured_reply
from docrouter.emulator.thinking import split_output

# A recorded real reply (tests/fixtures/recorded/pdf_unreadable_reply.json), sent while the parse was attached.
UNREADABLE_REPLY = "I'm sorry, but I can't access or view the contents of the PDF file."
STREAMED_ERRORS = frozenset({"5xx", "502_with_annotations", "200_error_body"})  # mid-stream when streaming


@dataclass
class Trace:
    """A request's record while it is being answered."""

    time: float
    path: str
    in_flight_at_start: int
    status: int = 200
    model: str | None = None
    engine: str | None = None
    fault: str | None = None
    billed_usd: float = 0.0
    ocr_pages_billed: int = 0
    file_hashes: tuple[str, ...] = ()
    body_bytes: int = 0
    data_urls: int = 0
    url_parts: tuple[str, ...] = ()
    reused_hashes: tuple[str, ...] = ()
    generation_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    stream: bool = False
    error: str | None = None
    max_price: dict[str, float] | None = None
    schema: str | None = None
    invalid_json: bool = False
    provider: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def freeze(self) -> RequestRecord:
        return RequestRecord(**asdict(self))


async def chat_completions(request: Request) -> Response:
    """The endpoint: every request, whatever happens to it, ends up in the log."""
    state: EmulatorState = request.app.state.emulator
    trace = Trace(time=time.time(), path=request.url.path, in_flight_at_start=state.ledger.begin())
    try:
        response = await _handle(request, state, trace)
    except Rejection as exc:
        response = rejected(exc)
        trace.status, trace.error = exc.status, exc.message
    finally:
        state.ledger.end()
    if isinstance(response, DroppedResponse):
        trace.status = 0
    state.record(trace.freeze())
    return response


def rejected(exc: Rejection) -> JSONResponse:
    """The error response for a refused request (`availability` sits beside `metadata`, as documented)."""
    metadata = dict(exc.metadata)
    availability = metadata.pop("availability", None)
    body = error_body(exc.status, exc.message, error_type=exc.error_type, metadata=metadata)
    if availability is not None:
        body["error"]["availability"] = availability
    return JSONResponse(body, status_code=exc.status)


def check_key(request: Request, state: EmulatorState) -> None:
    """`Authorization: Bearer <the emulator's key>`, else 401 as the API words it."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if not header:
        raise Rejection(401, "No auth credentials found", error_type="authentication")
    if scheme.lower() != "bearer" or key.strip() != state.settings.api_key or state.picker.faults.fail_401:
        raise Rejection(401, "User not found.", error_type="authentication")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read to the end even when too large (so the client reads the 413 rather than a reset)."""
    size, chunks = 0, []
    async for piece in request.stream():
        size += len(piece)
        if size <= limit:
            chunks.append(piece)
        else:
            chunks.clear()
    if size > limit:
        raise Rejection(
            413,
            f"Request payload too large: {size} bytes, over the limit of {limit} bytes",
            error_type="payload_too_large",
        )
    return b"".join(chunks)


async def _handle(request: Request, state: EmulatorState, trace: Trace) -> Response:
    check_key(request, state)
    faults = state.picker.faults
    body = await read_body(request, state.settings.max_body_bytes)
    trace.body_bytes, trace.data_urls = len(body), body.count(b";base64,")
    chat = await asyncio.to_thread(read_chat, body, state.models, faults, state.settings.max_image_pixels)
    trace.url_parts = tuple(i.url for i in chat.images if i.url) + tuple(f.url for f in chat.files if f.url)
    chat = await downloaded(chat, state.settings.max_image_pixels)
    trace.options = chat.options
    chat = routed(chat)
    trace.model, trace.engine, trace.stream = chat.model.id, chat.engine, chat.stream
    if chat.schema is not None:
        trace.schema = "response_format" if chat.structured else "instructions"
    trace.file_hashes, trace.max_price = chat.hashes, chat.max_price or None
    if billing.over_max_price(billing.billed_prices(chat.model.info, state.settings.price_multiplier), chat.max_price):
        raise Rejection(404, billing.NO_ENDPOINT_AT_PRICE, error_type="not_found")
    trace.provider = chat.model.provider
    fault = trace.fault = state.picker.pick(chat.key)
    await asyncio.sleep(state.latency)
    if fault == "slow" and not chat.stream:
        await asyncio.sleep(faults.slow_seconds)
    if fault in GATEWAY_FAULTS:
        response = gateway_failure(fault, faults, chat.model)
        trace.status = response.status_code
        return response
    files = await asyncio.to_thread(parse_files, chat, state, faults)
    trace.reused_hashes = tuple(f.hash for f in files if f.reused)
    return _billed(Turn(chat, files, fault, faults, state, trace))


def parse_files(chat: ChatRequest, state: EmulatorState, faults: Faults) -> tuple[ParsedFile, ...]:
    """Each file as the model gets it: reused from annotations, parsed by the engine, or native."""
    engine = chat.engine or "native"
    parsed = []
    for file in chat.files:
        known = chat.reusable.get(file.hash) if engine in PARSING_ENGINES else None
        if known is not None:
            parsed.append(reuse(engine, file.hash, str(known.get("name") or file.name), known["content"]))
            continue
        if engine == "cloudflare-ai" and faults.cloudflare_fails:
            raise Rejection(400, "Failed to parse", error_type="invalid_request")
        parsed.append(parse(engine, file.hash, file.name, _pages(file, state), image_parts=faults.ocr_image_parts))
    return tuple(parsed)


def _pages(file: FileInput, state: EmulatorState) -> tuple[PageText, ...]:
    if file.data is None:  # emulator.remote downloads every URL first; never invent content
        raise Rejection(400, f"{file.name or 'the file'}: its URL was not downloaded")
    try:
        return state.pages.pages(file.hash, file.data)
    except ParseFailure as exc:
        raise Rejection(400, f"Failed to parse {file.name or 'the file'}: {exc}") from None


def prompt_tokens(chat: ChatRequest, files: tuple[ParsedFile, ...]) -> int:
    """Text at 4 characters a token, native PDF pages and images by the model family's table."""
    model = chat.model.info
    tokens = billing.text_tokens(chat.text_chars)
    for file in files:
        if file.engine == "native":
            tokens += billing.native_pdf_tokens(model, file.pages_with_text)
        else:
            tokens += billing.text_tokens(sum(len(str(p.get("text", ""))) for p in file.content))
    return tokens + sum(billing.image_tokens(model, i.width, i.height) for i in chat.images)


@dataclass
class Turn:
    """One chat request being answered: what it asks, its parsed files, its fault, the shared state."""

    chat: ChatRequest
    files: tuple[ParsedFile, ...]
    fault: str | None
    faults: Faults
    state: EmulatorState
    trace: Trace
    reasoning_tokens: int = 0  # spent by the answer (out of max_tokens first)

    @property
    def annotations(self) -> list[dict[str, Any]]:
        """File annotations: only the parsing engines produce them."""
        return [f.annotation() for f in self.files if f.engine in PARSING_ENGINES]

    def charge(self, prompt_tokens: int, completion_tokens: int, ocr_pages: int) -> billing.Charge:
        """What these counts cost on the requested model."""
        settings = self.state.settings
        return billing.charge(
            billing.billed_prices(self.chat.model.info, settings.price_multiplier),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            images=len(self.chat.images),
            ocr_pages=ocr_pages,
            ocr_fee=self.ocr_fee,
        )

    @property
    def ocr_fee(self) -> float:
        """The OCR page fee billed today."""
        return self.state.settings.ocr_fee_per_page * self.state.settings.ocr_fee_multiplier


def _billed(turn: Turn) -> Response:
    """Hold the worst case against the credits (402 if it does not fit), answer, bill what it cost."""
    chat, ledger = turn.chat, turn.state.ledger
    model = chat.model.info
    tokens = prompt_tokens(chat, turn.files)
    ocr_pages = sum(f.ocr_pages for f in turn.files)
    _check_context(turn, tokens, ocr_pages)
    reserved_output = chat.max_tokens or model.max_completion_tokens or 0
    worst = turn.charge(tokens, reserved_output, ocr_pages)
    if not ledger.reserve(worst.total):
        message = billing.unaffordable_message(worst, model, reserved_output, ledger.remaining_usd or 0.0)
        raise Rejection(402, message, error_type="payment_required", provider_name=None)
    bill = billing.parse_fee_only(model, ocr_pages, turn.ocr_fee)
    try:
        response, bill = _respond(turn, tokens, bill)
    finally:
        ledger.settle(worst.total, bill.total)
    turn.trace.billed_usd, turn.trace.ocr_pages_billed = bill.total, bill.ocr_pages
    return response


def _check_context(turn: Turn, tokens: int, ocr_pages: int) -> None:
    """400 when prompt plus max_tokens exceed what the provider serves (the smaller of the two context lengths).

    With the `context_refusal_bills_ocr` knob, the OCR done before the refusal is billed, as the API may.
    """
    chat = turn.chat
    context, output = chat.model.info.usable_context, chat.max_tokens or 0
    if context and tokens + output > context:
        if turn.faults.context_refusal_bills_ocr and ocr_pages:
            fee = billing.parse_fee_only(chat.model.info, ocr_pages, turn.state.settings.ocr_fee_per_page)
            turn.state.ledger.bill(fee.total)
            turn.trace.billed_usd, turn.trace.ocr_pages_billed = fee.total, ocr_pages
        raise Rejection(
            400,
            f"This endpoint's maximum context length is {context} tokens. However, you requested "
            f"about {tokens + output} tokens ({tokens} of text input, {output} in the output).",
            error_type="context_length_exceeded",
        )


def _respond(turn: Turn, tokens: int, fee: billing.Charge) -> tuple[Response, billing.Charge]:
    """The answer (or the injected failure) and what it costs; a failure after parsing costs the fee."""
    chat, fault = turn.chat, turn.fault
    streamed_error = chat.stream and fault in STREAMED_ERRORS
    if fault in UPSTREAM_FAULTS and not streamed_error:
        response = upstream_failure(fault, turn.faults, turn.state.picker, chat.model, turn.annotations)
        turn.trace.status = response.status_code
        return response, fee
    sources = [f.text for f in turn.files] + [describe_image(i) for i in chat.images]
    turn.reasoning_tokens, room = split_output(chat.reasoning_tokens, chat.max_tokens)
    content, finish = compose(chat.model.id, sources or [chat.user_text], room)
    if chat.schema is not None:
        broken = turn.trace.invalid_json = turn.state.picker.take_invalid_json()
        text = "\n\n".join(sources or [chat.user_text])
        content = structured_reply(chat.schema, text, structured=chat.structured, broken=broken)
    if fault == "200_finish_error":
        content, finish = content[: len(content) // 2], "error"
    elif fault == "empty_content" or streamed_error:
        content = ""
    elif fault == "unreadable_reply":
        content = UNREADABLE_REPLY
    # Zero completion insurance: a finish_reason "error" (or an error mid-stream) bills no tokens, only the parse.
    unbilled = streamed_error or finish == "error"
    output = turn.reasoning_tokens + billing.text_tokens(len(content))
    bill = fee if unbilled else turn.charge(tokens, output, fee.ocr_pages)
    return _answer(turn, content, finish, bill), bill


def _answer(turn: Turn, content: str, finish: str, bill: billing.Charge) -> Response:
    """A 200: JSON or a stream, with X-Generation-Id (or the connection drops after billing)."""
    chat = turn.chat
    error = _choice_error(turn)
    reasoning = min(turn.reasoning_tokens, bill.completion_tokens)  # a failure bills no answer tokens
    usage = billing.usage_body(bill, byok=turn.state.settings.byok, reasoning=reasoning)
    generation_id = _remember(turn, "error" if error else finish, usage, bill)
    if turn.fault == "drop_after_billing":
        return DroppedResponse(generation_id)
    headers = {
        "X-Generation-Id": generation_id,
        "X-Provider-Name": chat.model.provider,
        "Access-Control-Expose-Headers": "X-Generation-Id,X-Provider-Name",
    }
    thought = f"(emulated reasoning: {reasoning} tokens)" if reasoning else None
    outcome = "error" if error else finish
    answer = Answer(generation_id, chat.model, content, outcome, turn.annotations, usage, error, reasoning=thought)
    if chat.stream:
        slow = turn.faults.slow_seconds if turn.fault == "slow" else 0.0
        return streamed_answer(answer, headers=headers, slow_seconds=slow)
    return JSONResponse(completion_body(answer), headers=headers)


def _remember(turn: Turn, finish: str, usage: dict[str, Any], bill: billing.Charge) -> str:
    """A new generation id, stored for GET /generation and noted in the request's record."""
    chat, state, trace = turn.chat, turn.state, turn.trace
    generation_id = state.new_generation_id()
    latency_ms = int((time.time() - trace.time) * 1000)
    data = generation_data(
        generation_id,
        chat.model,
        usage=usage,
        finish_reason=finish,
        streamed=chat.stream,
        latency_ms=latency_ms,
        media=len(chat.files) + len(chat.images),
    )
    state.generations.add(generation_id, data)
    trace.generation_id = generation_id
    trace.prompt_tokens, trace.completion_tokens = bill.prompt_tokens, bill.completion_tokens
    return generation_id


def _choice_error(turn: Turn) -> dict[str, Any] | None:
    """The error a 200 carries: in the choice (finish_reason "error") or as a mid-stream error event."""
    provider = turn.chat.model.provider
    if turn.fault == "200_finish_error":
        meta: dict[str, Any] = {"error_type": "provider_unavailable", "provider_name": provider}
        return {"code": 502, "message": "Provider returned error", "metadata": meta}
    if turn.fault == "5xx":
        status = turn.state.picker.choose((500, 502, 503, 529))
        return {"code": status, "message": "Provider returned error", "metadata": {"error_type": "server"}}
    if turn.fault == "502_with_annotations":
        meta = {"error_type": "provider_unavailable", "file_annotations": turn.annotations}
        return {"code": 502, "message": "Provider returned error", "metadata": meta}
    if turn.fault == "200_error_body":
        return {"code": 500, "message": "Internal Server Error", "metadata": {"error_type": "server"}}
    return None
