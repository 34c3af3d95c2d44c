"""Reading a chat completions request: validate it the way the API does, into a ChatRequest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from docrouter.emulator import media
from docrouter.emulator.billing import URL_IMAGE_SIZE
from docrouter.emulator.faults import Faults
from docrouter.emulator.models import EmulatedModel
from docrouter.emulator.parsing import ENGINE_ALIASES, ENGINES, clean_text
from docrouter.emulator.structured import schema_in_instructions
from docrouter.emulator.thinking import ReasoningRefused

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
DETAILS = frozenset({"auto", "low", "high", "original"})


class Rejection(Exception):
    """A request the API refuses: HTTP status, message, and the documented error_type."""

    def __init__(self, status: int, message: str, *, error_type: str = "invalid_request", **metadata: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.metadata = metadata


@dataclass(frozen=True)
class ImageInput:
    """One image part: true MIME type and size (an https URL is downloaded before it counts: emulator.remote)."""

    mime: str
    width: int
    height: int
    detail: str
    hash: str
    url: str | None = None


@dataclass(frozen=True)
class FileInput:
    """One file part: a PDF's bytes (downloaded first when it came as an https URL: emulator.remote)."""

    name: str
    hash: str
    data: bytes | None = None
    url: str | None = None


@dataclass(frozen=True)
class ChatRequest:
    """What a valid request asks for."""

    model: EmulatedModel
    text_chars: int  # every text the messages carry (system, user, assistant), for prompt tokens
    question: str  # the last user text
    user_text: str  # all user text, what a text-only request is about
    images: tuple[ImageInput, ...] = ()
    files: tuple[FileInput, ...] = ()
    engine: str | None = None  # the file-parser engine for the files (None without files)
    max_tokens: int | None = None
    stream: bool = False
    reusable: dict[str, dict[str, Any]] = field(default_factory=dict)  # file hash -> annotation "file"
    max_price: dict[str, float] = field(default_factory=dict)  # provider.max_price (prompt/completion per 1M)
    schema: dict[str, Any] | None = None  # a JSON Schema to answer with: response_format's or the instructions'
    structured: bool = False  # the schema came as response_format json_schema (reply with bare JSON)
    reasoning_tokens: int = 0  # what the model will reason, before max_tokens cuts it
    # How the answer was asked for, as sent: temperature, system prompt, `models`, `provider` (for the log).
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def hashes(self) -> tuple[str, ...]:
        """sha256 of every file and image, in order."""
        return tuple(f.hash for f in self.files) + tuple(i.hash for i in self.images)

    @property
    def key(self) -> str:
        """Which document this is, for per-document fault counts: the first file or image, else the text."""
        return self.hashes[0] if self.hashes else hashlib.sha256(self.user_text.encode()).hexdigest()


@dataclass
class _Gathered:
    texts: list[str] = field(default_factory=list)
    user_texts: list[str] = field(default_factory=list)
    images: list[ImageInput] = field(default_factory=list)
    files: list[FileInput] = field(default_factory=list)
    reusable: dict[str, dict[str, Any]] = field(default_factory=dict)


def read_chat(body: bytes, models: dict[str, EmulatedModel], faults: Faults, max_pixels: int) -> ChatRequest:
    """The ChatRequest in `body`, or a Rejection saying what is wrong with it."""
    payload = _json_object(body)
    model = _model(payload, models, faults)
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Rejection(400, "messages: a non-empty array of messages is required")
    gathered = _Gathered()
    for index, message in enumerate(messages):
        _gather(message, index, gathered, max_pixels)
    if gathered.images and not model.info.takes_images:
        raise Rejection(404, "No endpoints found that support image input", error_type="not_found")
    response_schema = _response_schema(payload, model)
    user_text = "\n\n".join(gathered.user_texts)
    return ChatRequest(
        model=model,
        text_chars=sum(len(t) for t in gathered.texts),
        question=gathered.user_texts[-1] if gathered.user_texts else "",
        user_text=user_text,
        images=tuple(gathered.images),
        files=tuple(gathered.files),
        engine=resolve_engine(payload, model, faults) if gathered.files else None,
        max_tokens=_max_tokens(payload),
        stream=payload.get("stream") is True,
        reusable=gathered.reusable,
        max_price=_max_price(payload),
        schema=response_schema if response_schema is not None else schema_in_instructions(user_text),
        structured=response_schema is not None,
        reasoning_tokens=_reasoning_tokens(payload, model),
        options=_options(payload, messages),
    )


def _max_price(payload: dict[str, Any]) -> dict[str, float]:
    """provider.max_price as numbers (the OAS types them as strings); 400 for one that is not a number."""
    provider = payload.get("provider")
    limits = provider.get("max_price") if isinstance(provider, dict) else None
    if limits is None:
        return {}
    if not isinstance(limits, dict):
        raise Rejection(400, "provider.max_price must be an object")
    try:
        return {str(name): float(value) for name, value in limits.items()}
    except (TypeError, ValueError):
        raise Rejection(400, "provider.max_price values must be numbers") from None


def _response_schema(payload: dict[str, Any], model: EmulatedModel) -> dict[str, Any] | None:
    """The schema of `response_format: {type: json_schema, ...}`; a model without structured outputs has
    no endpoint for it (the API routes only to providers that support the parameters it is given)."""
    response_format = payload.get("response_format")
    if response_format is None:
        return None
    if not isinstance(response_format, dict) or response_format.get("type") not in (
        "json_schema",
        "json_object",
        "text",
    ):
        raise Rejection(400, "response_format.type must be one of text, json_object, json_schema")
    if response_format["type"] != "json_schema":
        return None
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict) or not spec.get("name"):
        raise Rejection(400, "response_format.json_schema needs a name and a schema object")
    if not model.info.structured_outputs:
        raise Rejection(404, "No endpoints found that can handle the requested parameters.", error_type="not_found")
    schema: dict[str, Any] = spec["schema"]
    return schema


def _options(payload: dict[str, Any], messages: list[Any]) -> dict[str, Any]:
    """The request's answer and routing options, as sent (absent ones left out)."""
    options: dict[str, Any] = {k: payload[k] for k in ("temperature", "models", "provider") if k in payload}
    system = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    if system:
        options["system"] = system
    return options


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Rejection(400, "the request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise Rejection(400, "the request body must be a JSON object")
    return payload


def _model(payload: dict[str, Any], models: dict[str, EmulatedModel], faults: Faults) -> EmulatedModel:
    """The requested model, or the first available one of the `models` fallback list, tried in order."""
    fallbacks = payload.get("models") or []
    if not isinstance(fallbacks, list) or not all(isinstance(m, str) for m in fallbacks):
        raise Rejection(400, "models: an array of model IDs is expected")
    candidates = [payload.get("model"), *fallbacks]
    down = {m.strip() for m in faults.unavailable_models.split(",") if m.strip()}
    for name in candidates:
        if isinstance(name, str) and name in models and name not in down:
            return models[name]
    named = next((c for c in candidates if c), None)
    if named is None:
        raise Rejection(400, "model: a model ID is required")
    if named in down:
        raise Rejection(503, f"No endpoints available for {named} (emulated outage)", error_type="provider_unavailable")
    raise Rejection(
        400,
        f"{named} is not a valid model ID",
        error_type="invalid_request",
        availability={"code": "model_not_found", "retryable": False, "requested_models": [str(named)]},
    )


def _reasoning_tokens(payload: dict[str, Any], model: EmulatedModel) -> int:
    """The model's reasoning for this request's `reasoning` parameter; 400 for turning off mandatory reasoning."""
    if model.reasoning is None:
        return 0
    try:
        return model.reasoning.spent(payload.get("reasoning"))
    except ReasoningRefused as exc:
        raise Rejection(400, str(exc), error_type="invalid_request") from None


def _max_tokens(payload: dict[str, Any]) -> int | None:
    value = payload.get("max_completion_tokens", payload.get("max_tokens"))
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise Rejection(400, f"max_tokens must be a positive integer, not {value!r}")
    return value


def _gather(message: Any, index: int, into: _Gathered, max_pixels: int) -> None:
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise Rejection(400, f"messages[{index}]: each message needs a role among {', '.join(sorted(ROLES))}")
    role, content = message["role"], message.get("content")
    if role == "assistant":
        _gather_annotations(message.get("annotations"), into)
    if content is None and role in ("assistant", "tool"):
        return
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(parts, list):
        raise Rejection(400, f"messages[{index}].content must be a string or an array of content parts")
    for number, part in enumerate(parts):
        _gather_part(part, f"messages[{index}].content[{number}]", role, into, max_pixels)


def _gather_part(part: Any, where: str, role: str, into: _Gathered, max_pixels: int) -> None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        text = clean_text(part["text"])  # JSON may carry lone surrogates; answers must encode as UTF-8
        into.texts.append(text)
        if role == "user":
            into.user_texts.append(text)
    elif kind == "image_url":
        into.images.append(read_image(part.get("image_url"), where, max_pixels))
    elif kind == "file":
        into.files.append(read_file(part.get("file"), where))
    else:
        raise Rejection(400, f"{where}: unsupported content part {kind!r} (expected text, image_url or file)")


def _gather_annotations(annotations: Any, into: _Gathered) -> None:
    """File annotations sent back on an assistant turn: parses the request may reuse."""
    for annotation in annotations if isinstance(annotations, list) else ():
        file = annotation.get("file") if isinstance(annotation, dict) else None
        if isinstance(file, dict) and annotation.get("type") == "file" and isinstance(file.get("content"), list):
            into.reusable[str(file.get("hash"))] = file


def read_image(image_url: Any, where: str, max_pixels: int) -> ImageInput:
    """An image part checked like the API does: supported type, MIME matching the bytes, size limit."""
    url = image_url.get("url") if isinstance(image_url, dict) else None
    detail = image_url.get("detail", "auto") if isinstance(image_url, dict) else "auto"
    if not isinstance(url, str) or not url:
        raise Rejection(400, f"{where}: image_url.url is required", error_type="invalid_image")
    if detail not in DETAILS:
        raise Rejection(400, f"{where}: image_url.detail must be one of {', '.join(sorted(DETAILS))}")
    if url.startswith(("https://", "http://")):
        width, height = URL_IMAGE_SIZE
        return ImageInput("image/jpeg", width, height, detail, hashlib.sha256(url.encode()).hexdigest(), url=url)
    decoded = _decode(url, where, "invalid_image")
    if decoded.mime not in media.IMAGE_MIME_TYPES:
        raise Rejection(
            400,
            f"{where}: {decoded.mime or 'no MIME type'} is not a supported image type "
            f"({', '.join(media.IMAGE_MIME_TYPES)})",
            error_type="unsupported_image_format",
        )
    _check_sniffed(decoded, where, "invalid_image")
    return image_input(decoded.data, decoded.mime, detail, where, max_pixels)


def image_input(data: bytes, mime: str, detail: str, where: str, max_pixels: int, url: str | None = None) -> ImageInput:
    """An image of a supported type, its size read from its header and checked against the pixel limit."""
    try:
        width, height = media.image_size(data, mime)
    except media.MediaError as exc:
        raise Rejection(400, f"{where}: {exc}", error_type="invalid_image") from None
    if width * height > max_pixels:
        raise Rejection(
            400,
            f"{where}: the image is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
            f"the limit is {max_pixels / 1e6:.1f} megapixels",
            error_type="image_too_large",
        )
    return ImageInput(mime, width, height, detail, hashlib.sha256(data).hexdigest(), url=url)


def read_file(file: Any, where: str) -> FileInput:
    """A file part: a PDF data URL whose bytes are a PDF, or an https URL (downloaded later: emulator.remote)."""
    if not isinstance(file, dict):
        raise Rejection(400, f"{where}: a file part needs a `file` object")
    name = clean_text(str(file.get("filename") or ""))
    file_data = file.get("file_data")
    if file.get("file_id") and not file_data:
        raise Rejection(400, f"{where}: file_id (the Files API) is not supported by the docrouter emulator")
    if not isinstance(file_data, str) or not file_data:
        raise Rejection(400, f"{where}: file.file_data is required (a data URL or an https URL)")
    if file_data.startswith(("https://", "http://")):
        return FileInput(
            name or file_data.rsplit("/", 1)[-1], hashlib.sha256(file_data.encode()).hexdigest(), url=file_data
        )
    decoded = _decode(file_data, where, "invalid_request")
    if decoded.mime != media.PDF_MIME:
        raise Rejection(
            400,
            f"{where}: file parts must be PDFs (data:application/pdf;base64,...), not {decoded.mime or 'no MIME type'}",
        )
    _check_sniffed(decoded, where, "invalid_request")
    return FileInput(name, file_hash(file_data), data=decoded.data)


def file_hash(file_data: str) -> str:
    """An annotation's `file.hash` as recorded: sha256 of the base64 text after the data URL's comma (not of
    the PDF bytes), so the same bytes encoded differently would be another file."""
    return hashlib.sha256(file_data.partition(",")[2].encode("ascii", "replace")).hexdigest()


def _decode(url: str, where: str, error_type: str) -> media.DataUrl:
    try:
        return media.decode_data_url(url)
    except media.MediaError as exc:
        raise Rejection(400, f"{where}: {exc}", error_type=error_type) from None


def _check_sniffed(decoded: media.DataUrl, where: str, error_type: str) -> None:
    actual = media.sniff_mime(decoded.data)
    if actual != decoded.mime:
        raise Rejection(
            400,
            f"{where}: the data URL says {decoded.mime} but the bytes are {media.describe_mime(actual)}",
            error_type=error_type,
        )


def _file_parser_plugin(payload: dict[str, Any]) -> dict[str, Any]:
    """The request's `file-parser` plugin object ({} when there is none)."""
    plugins = payload.get("plugins")
    for plugin in plugins if isinstance(plugins, list) else []:
        if isinstance(plugin, dict) and plugin.get("id") == "file-parser":
            return plugin
    return {}


def resolve_engine(payload: dict[str, Any], model: EmulatedModel, faults: Faults) -> str:
    """The file-parser engine: the plugin's, else native when the model reads files, else mistral-ocr."""
    plugin = _file_parser_plugin(payload)
    disabled = plugin.get("enabled") is False
    pdf = plugin.get("pdf")
    requested = pdf.get("engine") if isinstance(pdf, dict) and not disabled else None
    if requested is None:
        if model.info.takes_files or not disabled:
            return "native" if model.info.takes_files else "mistral-ocr"
        requested = "native"  # parsing switched off: only a model that reads files can take a PDF
    if requested == "pdf-text" and faults.pdf_text_rejected:
        raise Rejection(400, 'The "pdf-text" engine is no longer available; use "cloudflare-ai"')
    engine = ENGINE_ALIASES.get(requested, requested)
    if engine not in ENGINES:
        raise Rejection(
            400,
            f"plugins: unknown file-parser engine {requested!r}; "
            f"expected one of {', '.join([*ENGINES, *ENGINE_ALIASES])}",
        )
    if engine == "native" and not model.info.takes_files:
        raise Rejection(404, "No endpoints found that support file input", error_type="not_found")
    return engine
