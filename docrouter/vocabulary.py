"""docrouter's closed vocabularies: the names of engines, statuses and error types every stage shares.

Each is a `Literal` type, and each runtime set or tuple is derived from it (typing.get_args), so there is one
list. The Parquet schemas store them as strings (SPEC section 4).
Imports nothing from docrouter: every stage, the store and the emulator may import it.
"""

from __future__ import annotations

from typing import Literal, get_args

# The PDF engines, in routing's tie-break order (the cheaper wins a tie; local-text first).
PdfEngine = Literal["local-text", "pdf-text", "native", "mistral-ocr"]
# What a results row's `engine` names: a PDF engine, or an image sent as an image.
Engine = Literal[PdfEngine, "image"]
# What --engine accepts: auto (routing chooses) or one PDF engine.
EngineChoice = Literal["auto", PdfEngine]
# A results row's status (SPEC section 4).
Status = Literal["ok", "failed", "skipped", "over_budget"]
# How a sent request carried the document: its bytes, or a URL the API fetched.
SentAs = Literal["upload", "url"]

# Why a document is not a document at all: a `skipped` row (other refusals are `failed`).
SkipErrorType = Literal["empty", "unsupported"]
# A property of the bytes: a rerun leaves an unchanged file alone unless --retry-failed (SPEC section 4).
TerminalErrorType = Literal[
    SkipErrorType,
    "encrypted",
    "corrupt",
    "unreadable",
    "too_large",
    "too_complex",
    "bad_request",
    "invalid_output",
    "not_found",
]
# A property of the moment: a rerun tries again. SPEC section 4's list, then the types it leaves open:
# error (no one foresaw it), config, empty_answer, no_endpoint, interrupted (a signal) and unroutable.
TransientErrorType = Literal[
    "changed",
    "rate_limited",
    "timeout",
    "server_error",
    "connection",
    "auth",
    "credits",
    "moderation",
    "budget",
    "price",
    "truncated",
    "unreadable_reply",
    "fetch",
    "error",
    "config",
    "empty_answer",
    "no_endpoint",
    "interrupted",
    "unroutable",
]
# A results row's error_type.
ErrorType = Literal[TerminalErrorType, TransientErrorType]

PDF_ENGINES: tuple[PdfEngine, ...] = get_args(PdfEngine)  # also the tie-break order
IMAGE_ENGINE: Engine = "image"
ENGINES: tuple[Engine, ...] = get_args(Engine)
# What --engine accepts, in the order --help (and SPEC section 2) shows them.
ENGINE_CHOICES: tuple[EngineChoice, ...] = ("auto", "pdf-text", "mistral-ocr", "native", "local-text")
STATUSES: tuple[Status, ...] = get_args(Status)
ERROR_TYPES: frozenset[ErrorType] = frozenset(get_args(ErrorType))
TERMINAL_ERROR_TYPES: frozenset[ErrorType] = frozenset(get_args(TerminalErrorType))
SKIPPED_ERRORS: frozenset[ErrorType] = frozenset(get_args(SkipErrorType))
# Engines that read the text layer (ours or the server's): they cannot read a page that needs OCR.
TEXT_ENGINES: frozenset[PdfEngine] = frozenset({"local-text", "pdf-text"})
# Engines that return a reusable parse (file annotations): resending it skips the parse fee.
PARSING_ENGINES: frozenset[Engine] = frozenset({"pdf-text", "mistral-ocr"})
