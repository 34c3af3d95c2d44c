"""Result and Annotation rows: what a run records about each document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docrouter.vocabulary import Engine, ErrorType, SentAs
from docrouter.vocabulary import Status as Status  # a row's status, named here too

VALIDITY = ("valid", "repaired", "invalid")  # an answer checked against --schema: as sent, after a repair, never


@dataclass(frozen=True)
class Result:
    """One row of the results dataset; every document yields exactly one per run."""

    run_id: str
    doc_id: str
    path: str
    source_root: str
    size_bytes: int
    mime_type: str
    kind: str | None
    pages: int | None
    engine: Engine | None
    engine_reason: str | None
    model: str
    prompt_sha256: str
    status: Status
    error_type: ErrorType | None
    error_message: str | None
    attempts: int
    est_cost_usd: float
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    generation_id: str | None
    content: str | None
    finish_reason: str | None
    started_at: str  # ISO-8601 UTC
    finished_at: str
    parts: int = 1  # page-range parts answered for this document (map-reduce)
    source_url: str | None = None  # a URL document's URL, query string redacted
    sent_as: SentAs | None = None  # upload (bytes in the request) | url (the API fetched it); None: not sent
    schema_sha256: str | None = None  # the --schema the answer was extracted against
    extraction: str | None = None  # with --schema: valid | repaired (valid after one repair) | invalid
    reasoning_tokens: int | None = 0  # of completion_tokens, spent reasoning (null in folders older than it)
    truncated: bool | None = False  # the answer was cut by the length limit (null in folders older than it)
    answered_model: str | None = None  # the response's `model`: a fallback, or the provider's canonical slug
    provider: str | None = None  # the response's `provider`: who answered


@dataclass(frozen=True)
class Annotation:
    """One file annotation returned by the API (the parsed file, reusable to skip re-parsing)."""

    doc_id: str
    file_hash: str
    name: str
    engine: Engine
    content: str  # the annotation's content parts, as JSON
    run_id: str
    created_at: str


@dataclass(frozen=True)
class Extraction:
    """One row of the extractions dataset: a valid object extracted from a document against a schema."""

    run_id: str
    doc_id: str
    path: str
    model: str
    prompt_sha256: str
    schema_sha256: str
    values: dict[str, Any]  # the validated JSON object; typed into columns when written
