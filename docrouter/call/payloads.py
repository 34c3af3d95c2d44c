"""Chat completion request bodies: a PDF as a file part, an image as an image_url, or local text."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from docrouter.vocabulary import Engine

# Our engine names -> the file-parser plugin's wire names. OpenRouter renamed pdf-text to
# cloudflare-ai (the old name is a deprecated alias), so the wire name is configurable.
DEFAULT_WIRE_NAMES: dict[Engine, str] = {"pdf-text": "cloudflare-ai", "mistral-ocr": "mistral-ocr", "native": "native"}


@dataclass(frozen=True)
class RequestOptions:
    """What every request of a run shares."""

    model: str
    prompt: str
    max_tokens: int  # what is sent: the answer cap plus the reasoning budget (docrouter.reasoning)
    wire_names: dict[Engine, str] = field(default_factory=lambda: dict(DEFAULT_WIRE_NAMES))
    temperature: float | None = 0.0
    max_price: dict[str, float] | None = None  # provider.max_price: the most the run pays (budget.py)
    response_format: dict[str, Any] | None = None  # with --schema, for a model with structured outputs

    @property
    def instruction_chars(self) -> int:
        """What every request adds to its document: the prompt and any response_format (input tokens both)."""
        return len(self.prompt) + (len(json.dumps(self.response_format)) if self.response_format else 0)

    reasoning: dict[str, Any] | None = None  # OpenRouter's `reasoning` parameter; None: not sent
    system_prompt: str | None = None
    provider: dict[str, Any] = field(default_factory=dict)  # OpenRouter's provider preferences (order, zdr...)
    fallback_models: tuple[str, ...] = ()  # sent as `models`, after the model itself


def data_url(mime_type: str, data: bytes) -> str:
    """A base64 data URL, the form OpenRouter accepts for files and images."""
    return f"data:{mime_type};base64,{base64.b64encode(data).decode('ascii')}"


def _body(options: RequestOptions, messages: list[dict[str, Any]]) -> dict[str, Any]:
    if options.system_prompt:
        messages = [{"role": "system", "content": options.system_prompt}, *messages]
    body: dict[str, Any] = {
        "model": options.model,
        "messages": messages,
        "max_tokens": options.max_tokens,  # always sent: without it the 402 pre-check assumes the maximum
        "usage": {"include": True},  # a no-op today, harmless, and needed by older deployments
    }
    if options.temperature is not None:
        body["temperature"] = options.temperature
    if options.fallback_models:
        body["models"] = [options.model, *options.fallback_models]  # tried in this order
    provider = dict(options.provider)
    if options.max_price is not None:
        provider["max_price"] = options.max_price
    if provider:
        body["provider"] = provider
    if options.response_format is not None:
        body["response_format"] = options.response_format
    if options.reasoning is not None:
        body["reasoning"] = dict(options.reasoning)
    return body


def pdf_request(
    options: RequestOptions,
    pdf: bytes,
    filename: str,
    engine: Engine,
    annotations: tuple[dict[str, Any], ...] = (),
    *,
    url: str | None = None,
) -> dict[str, Any]:
    """A PDF sent as a `file` part (its bytes, or `url` for the API to fetch), parsed by `engine`; stored
    annotations skip the parse fee."""
    file_part = {
        "type": "file",
        "file": {"filename": filename, "file_data": url or data_url("application/pdf", pdf)},
    }
    body_plugins = [{"id": "file-parser", "pdf": {"engine": options.wire_names.get(engine, engine)}}]
    if not annotations:
        messages = [{"role": "user", "content": [{"type": "text", "text": options.prompt}, file_part]}]
    else:
        # The documented reuse pattern: the file part stays, and an assistant turn carries the annotations.
        messages = [
            {"role": "user", "content": [{"type": "text", "text": "Here is the document."}, file_part]},
            {"role": "assistant", "content": "Document received.", "annotations": list(annotations)},
            {"role": "user", "content": options.prompt},
        ]
    body = _body(options, messages)
    body["plugins"] = body_plugins
    return body


def image_request(options: RequestOptions, image: bytes, mime_type: str, *, url: str | None = None) -> dict[str, Any]:
    """An image sent as an `image_url` data URL with its true MIME type, or as `url` for the API to fetch
    (text first, as the docs advise)."""
    part = {"type": "image_url", "image_url": {"url": url or data_url(mime_type, image)}}
    messages = [{"role": "user", "content": [{"type": "text", "text": options.prompt}, part]}]
    return _body(options, messages)


def text_request(options: RequestOptions, text: str, name: str) -> dict[str, Any]:
    """Text extracted here (local-text): works with text-only models and costs no parse fee."""
    content = f"{options.prompt}\n\n<document name={json.dumps(name)}>\n{text}\n</document>"
    return _body(options, [{"role": "user", "content": content}])


def combine_request(options: RequestOptions, partials: list[tuple[str, str]]) -> dict[str, Any]:
    """The reduce step for a document answered in page ranges: one answer from the partial answers."""
    sections = "\n\n".join(f"<part pages={json.dumps(label)}>\n{answer}\n</part>" for label, answer in partials)
    content = (
        f"{options.prompt}\n\nThe document was too long to read at once. Below are answers to the request "
        f"above for consecutive page ranges of it. Combine them into one answer for the whole document.\n\n"
        f"{sections}"
    )
    return message_request(options, content)


def message_request(options: RequestOptions, content: str) -> dict[str, Any]:
    """A request of one user message and no document (a combine or a repair request)."""
    return _body(options, [{"role": "user", "content": content}])


def request_size(empty: dict[str, Any], data_bytes: int) -> int:
    """The encoded size of a body built with b"" in place of `data_bytes` bytes of data (base64 needs no escaping)."""
    return len(encode(empty)) + 4 * ((data_bytes + 2) // 3)


def encode(body: dict[str, Any]) -> bytes:
    """The request body as JSON bytes (built once, reused across retries)."""
    return json.dumps(body, separators=(",", ":")).encode()
