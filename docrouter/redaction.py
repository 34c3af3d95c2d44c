"""Defence in depth for the API key: a logging filter that replaces it wherever a log line would carry it.

The key is never put into messages on purpose; this catches what a library might echo (a header in an
exception, a repr in a traceback). `protect(key)` installs the filter on every handler that exists
(docrouter's, Prefect's console and API handlers, the root's and logging's last resort).
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterable
from types import TracebackType

MASK = "[REDACTED]"
_SECRETS: set[str] = set()


def redacted(text: str) -> str:
    """`text` with every protected secret replaced by the mask."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record whose message or traceback contains a protected secret (never drops it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _SECRETS:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        if redacted(message) != message:
            record.msg, record.args = redacted(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and redacted(record.exc_text) != record.exc_text:
            # Handlers that render exc_info themselves would show the original: keep only the text.
            record.exc_text, record.exc_info = redacted(record.exc_text), None
        return True


_FILTER = RedactSecrets()


def protect(secret: str) -> None:
    """Redact `secret` from everything logged from now on, by every handler there is."""
    protect_all([secret])


def protect_all(secrets: Iterable[str]) -> None:
    """Redact every one of `secrets` (signed URLs' query strings, say) from everything logged from now on."""
    _SECRETS.update(secret for secret in secrets if len(secret) >= 4)
    for handler in _all_handlers():
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    if sys.excepthook is not _redacting_excepthook:
        sys.excepthook = _redacting_excepthook


def _redacting_excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    """An uncaught exception's traceback, redacted (a crash must not print the key either)."""
    sys.stderr.write(redacted("".join(traceback.format_exception(kind, value, tb))))


def _all_handlers() -> list[logging.Handler]:
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)]
    handlers = [h for logger in loggers for h in logger.handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    return list(dict.fromkeys(handlers))
