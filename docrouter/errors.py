"""The one error tree of docrouter; the retry decision lives in the type.

    DocrouterError
    ├── RunFatal                  stop sending; finish in-flight work; exit non-zero
    │   ├── ConfigError           bad flags, missing key, unwritable output      (error_type: config)
    │   ├── AuthError             HTTP 401                                       (auth)
    │   └── CreditsError          HTTP 402 "can only afford"                     (credits)
    ├── Transient                 retry with backoff, honouring retry_after
    │   ├── RateLimited           HTTP 429, or 429 inside a 200 body             (rate_limited)
    │   ├── ServerError           HTTP 500/502/503/529, error inside a 200 body  (server_error)
    │   ├── Timeout               HTTP 408/524, read/connect timeouts            (timeout)
    │   ├── ConnectionFailed      refused / dropped connections                  (connection)
    │   ├── EmptyAnswer           200 with empty content                         (empty_answer)
    │   ├── UnreadableReply       a paid reply saying the document cannot be read (unreadable_reply)
    │   ├── Changed               the file changed or vanished after discovery   (changed)
    │   └── PriceRefused          404 "No endpoints found" under provider.max_price (price)
    ├── Truncated                 the answer was cut by the length limit and is  (truncated)
    │                             empty even after one retry with a larger cap: transient in SPEC's
    │                             sense (a rerun with a larger --max-tokens answers it), never retried here
    └── Terminal                  this document fails (a `failed` row); the run goes on
        ├── BadRequest            HTTP 400/422                                   (bad_request)
        │   └── ContextExceeded   400 over the context window; OCR may be billed (bad_request)
        ├── Moderation            HTTP 403                                       (moderation)
        ├── NoEndpoint            HTTP 404 "No endpoints found ..."              (no_endpoint)
        ├── PayloadTooLarge       HTTP 413                                       (too_large)
        ├── OverBudget            the request would cross --budget               (budget)
        ├── InvalidOutput         the answer fails --schema, also after a repair (invalid_output)
        └── DocumentError         the file itself cannot be used
            ├── Encrypted         needs a user password                          (encrypted)
            ├── Corrupt           cannot be parsed                               (corrupt)
            ├── Empty             zero bytes, or no pages                        (empty)
            ├── Unsupported       not a PDF/PNG/JPEG/WebP/GIF                    (unsupported)
            ├── Unreadable        permission denied or an I/O error when read    (unreadable)
            ├── TooLarge          over a size/page/pixel limit or memory bound   (too_large)
            └── TooComplex        local reading overran the per-file time limit  (too_complex)

Changed is transient in SPEC section 4's sense (a property of the moment: the next run reads the new bytes
as a new document), and it is never sent: it comes from reading the file, before any request.

Only docrouter.client translates HTTP statuses and httpx exceptions into this tree.

Across runs, a failed row's error_type says whether a rerun tries again (SPEC section 4): TERMINAL types are
a property of the bytes (a rerun leaves an unchanged file alone unless --retry-failed), every other type is a
property of the moment (rate limits, money, a file that changed...) and is tried again. URL sources add two
row types without exceptions (docrouter.fetching): `not_found` (HTTP 404/410, terminal) and `fetch` (other
statuses, timeouts, broken connections: transient).
"""

from __future__ import annotations

from typing import ClassVar

from docrouter.vocabulary import TERMINAL_ERROR_TYPES as TERMINAL_ERROR_TYPES  # the vocabulary's, named here too
from docrouter.vocabulary import ErrorType


def is_terminal(error_type: str | None) -> bool:
    """Whether a row with this error_type stays failed for the same bytes (transient types and None do not)."""
    return error_type in TERMINAL_ERROR_TYPES


class DocrouterError(Exception):
    """Base of every error docrouter raises on purpose."""

    error_type: ClassVar[ErrorType] = "error"
    retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class RunFatal(DocrouterError):
    """The whole run must stop sending requests."""


class ConfigError(RunFatal):
    error_type = "config"


class AuthError(RunFatal):
    error_type = "auth"


class CreditsError(RunFatal):
    error_type = "credits"


class Transient(DocrouterError):
    """Worth another attempt after a delay."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        charged_usd: float = 0.0,
        annotations: tuple[dict[str, object], ...] = (),
        sent: bool = True,
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after
        self.charged_usd = charged_usd
        self.annotations = annotations
        self.sent = sent  # False when the request never left (no connection): it cannot have been billed
        self.generation_id: str | None = None  # from the response headers when the body was lost


class RateLimited(Transient):
    error_type = "rate_limited"


class ServerError(Transient):
    error_type = "server_error"


class Timeout(Transient):
    error_type = "timeout"


class ConnectionFailed(Transient):
    error_type = "connection"


class EmptyAnswer(Transient):
    error_type = "empty_answer"


class UnreadableReply(Transient):
    """A billed answer that only says the document could not be read (docrouter.nonanswers); the call stage
    tries another engine once instead of sending the same request again."""

    error_type = "unreadable_reply"


class Changed(Transient):
    """The file is no longer what discovery hashed (modified, deleted, replaced by a link or a non-file)."""

    error_type = "changed"

    def __init__(self, message: str) -> None:
        super().__init__(message, sent=False)


class PriceRefused(Transient):
    """No provider serves the model at or below the max price sent: prices rose since the model list."""

    error_type = "price"


class Truncated(DocrouterError):
    """Reasoning (or the answer) used up max_tokens and left no answer; what it cost is billed."""

    error_type = "truncated"


class Terminal(DocrouterError):
    """This document fails; the run goes on."""


class BadRequest(Terminal):
    error_type = "bad_request"


class ContextExceeded(BadRequest):
    """HTTP 400 over the model's context window: refused after the file may have been parsed (and billed)."""


class Moderation(Terminal):
    error_type = "moderation"


class NoEndpoint(Terminal):
    error_type = "no_endpoint"


class PayloadTooLarge(Terminal):
    error_type = "too_large"


class OverBudget(Terminal):
    error_type = "budget"


class InvalidOutput(Terminal):
    error_type = "invalid_output"


class DocumentError(Terminal):
    """The file itself cannot be used as it is."""


class Encrypted(DocumentError):
    error_type = "encrypted"


class Corrupt(DocumentError):
    error_type = "corrupt"


class Empty(DocumentError):
    error_type = "empty"


class Unsupported(DocumentError):
    error_type = "unsupported"


class Unreadable(DocumentError):
    error_type = "unreadable"


class TooLarge(DocumentError):
    error_type = "too_large"


class TooComplex(DocumentError):
    """Reading the file here took longer than the per-file limit: a property of the file, unlike an API timeout."""

    error_type = "too_complex"
