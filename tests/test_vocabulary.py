"""The closed vocabularies agree with SPEC section 4, with what the code emits, and with the stored schema."""

from __future__ import annotations

import pyarrow as pa

from docrouter import errors, vocabulary
from docrouter.run import stopping
from docrouter.run.config import ENGINES
from docrouter.store.datasets import ANNOTATIONS_SCHEMA, RESULTS_SCHEMA
from docrouter.vocabulary import ENGINE_CHOICES, ERROR_TYPES, PDF_ENGINES, STATUSES, TERMINAL_ERROR_TYPES

# SPEC section 4: "error_type values include: ..." and "status (ok|failed|skipped|over_budget)".
SPEC_ERROR_TYPES = (
    *("encrypted", "corrupt", "empty", "unsupported", "unreadable", "changed", "too_large", "too_complex"),
    *("rate_limited", "timeout", "server_error", "connection", "bad_request", "auth", "credits", "moderation"),
    *("budget", "price", "truncated", "invalid_output", "unreadable_reply", "not_found", "fetch"),
)
SPEC_STATUSES = ("ok", "failed", "skipped", "over_budget")


def _subclasses(cls: type[errors.DocrouterError]) -> list[type[errors.DocrouterError]]:
    return [cls, *(sub for direct in cls.__subclasses__() for sub in _subclasses(direct))]


def test_every_spec_error_type_and_status_is_in_the_vocabulary() -> None:
    assert set(SPEC_ERROR_TYPES) <= ERROR_TYPES
    assert STATUSES == SPEC_STATUSES  # the report lists statuses in this order


def test_every_error_class_emits_a_type_of_the_vocabulary() -> None:
    emitted = {cls.error_type for cls in _subclasses(errors.DocrouterError)}
    assert stopping.Interrupted.error_type in emitted
    assert emitted <= ERROR_TYPES
    assert TERMINAL_ERROR_TYPES <= ERROR_TYPES


def test_engine_choices_are_auto_and_every_pdf_engine() -> None:
    assert ENGINES == ENGINE_CHOICES == ("auto", "pdf-text", "mistral-ocr", "native", "local-text")  # SPEC section 2
    assert set(ENGINE_CHOICES) == {"auto", *PDF_ENGINES}
    assert (*PDF_ENGINES, "image") == vocabulary.ENGINES  # what a row's engine may name


def test_the_stored_columns_stay_strings() -> None:
    for name in ("engine", "status", "error_type", "sent_as"):
        assert RESULTS_SCHEMA.field(name).type == pa.string()
    assert ANNOTATIONS_SCHEMA.field("engine").type == pa.string()
