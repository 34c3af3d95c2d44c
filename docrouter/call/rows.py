"""Result and Annotation rows: every outcome of a document, paid or not, as one row."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from docrouter import errors
from docrouter.call.dispatch import Attempted
from docrouter.discover.documents import SKIPPED_ERRORS, Document, skip_reason
from docrouter.discover.urls import redact
from docrouter.inspect.inspection import Inspection
from docrouter.results import Annotation, Result
from docrouter.route.routing import NotSent, Route
from docrouter.vocabulary import Engine, ErrorType, SentAs, Status


@dataclass(frozen=True)
class Job:
    """A routed document: what inspection found and the engine routing chose for it."""

    document: Document
    inspection: Inspection
    route: Route
    sent_as: SentAs = "upload"  # how the request carries the document: upload | url


@dataclass(frozen=True)
class Unsent:
    """A document decided before any call: skipped, failed inspection, or refused by routing (`route`)."""

    document: Document
    inspection: Inspection | None
    route: NotSent | None


def job_for(document: Document, inspection: Inspection | None, route: Route | NotSent | None) -> Job | Unsent:
    """A Job when routing chose an engine for an inspected, supported document, else Unsent."""
    if isinstance(route, Route) and inspection is not None and document.kind is not None:
        return Job(document, inspection, route)
    return Unsent(document, inspection, route if isinstance(route, NotSent) else None)


@dataclass(frozen=True)
class RunColumns:
    """The columns every row of one run shares."""

    run_id: str
    model: str
    prompt_sha256: str
    schema_sha256: str | None = None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def row(job: Job | Unsent, run: RunColumns, status: Status, started_at: str, **fields: Any) -> Result:
    """A Result row for `job` with the run's shared columns filled in."""
    doc, inspection = job.document, job.inspection
    routed = job.route if isinstance(job, Job) else None
    values: dict[str, Any] = {
        "run_id": run.run_id,
        "doc_id": doc.doc_id,
        "path": doc.rel_path,
        "source_root": doc.source_root,
        "size_bytes": doc.size_bytes,
        "mime_type": doc.mime_type,
        "kind": doc.kind,
        "pages": inspection.pages if inspection and inspection.ok else None,
        "engine": routed.engine if routed else None,
        "engine_reason": job.route.reason if job.route else None,
        "model": run.model,
        "prompt_sha256": run.prompt_sha256,
        "status": status,
        "error_type": None,
        "error_message": None,
        "attempts": 0,
        "est_cost_usd": routed.estimate.expected_usd if routed else 0.0,
        "cost_usd": 0.0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "generation_id": None,
        "content": None,
        "finish_reason": None,
        "started_at": started_at,
        "finished_at": now_iso(),
        "source_url": redact(doc.remote.url) if doc.remote else None,
        "schema_sha256": run.schema_sha256,
    }
    values.update(fields)
    return Result(**values)


def unsent_row(job: Unsent, run: RunColumns) -> Result:
    """The row for a document decided before any call: skipped, or failed inspection or routing."""
    started = now_iso()
    doc, inspection, route = job.document, job.inspection, job.route
    if doc.kind is None:
        error_type, message = skip_reason(doc)
        status: Status = "skipped" if error_type in SKIPPED_ERRORS else "failed"
        return row(job, run, status, started, error_type=error_type, error_message=message)
    if inspection is not None and not inspection.ok:
        fields = {"error_type": inspection.error_type, "error_message": inspection.error_message}
        return row(job, run, "failed", started, **fields)
    unroutable: ErrorType = "unroutable"
    return row(
        job,
        run,
        "failed",
        started,
        error_type=route.error_type if route else unroutable,
        error_message=route.error_message if route else "no route was chosen for this document",
    )


def attempted_row(
    job: Job, run: RunColumns, attempted: Attempted, started: str, parts: int = 1, extraction: str | None = None
) -> Result:
    """The row for a document that was sent: its answer, or the error that ended its attempts (with the
    reply kept, when one was paid for); `extraction` is its validity against --schema."""
    common = {
        "attempts": attempted.attempts,
        "cost_usd": attempted.cost_usd,
        "parts": parts,
        "sent_as": job.sent_as if attempted.attempts else None,
        "extraction": extraction,
    }
    completion, error = attempted.completion, attempted.error
    if completion is not None:
        return row(
            job,
            run,
            "ok",
            started,
            **common,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            generation_id=completion.generation_id,
            content=completion.content,
            finish_reason=completion.finish_reason,
            reasoning_tokens=completion.reasoning_tokens,
            truncated=completion.truncated,
            answered_model=completion.model or None,
            provider=completion.provider,
        )
    assert error is not None
    status: Status = "over_budget" if isinstance(error, errors.OverBudget) else "failed"
    failure = {"error_type": error.error_type, "error_message": error.message, "content": attempted.reply}
    return row(job, run, status, started, **common, **failure)


def error_row(job: Job, run: RunColumns, error: errors.DocrouterError, started: str, cost_usd: float = 0.0) -> Result:
    """The row for a document whose request could not even be built (unreadable pages, too large)."""
    return row(job, run, "failed", started, error_type=error.error_type, error_message=error.message, cost_usd=cost_usd)


def annotation_rows(
    job: Job | Unsent, run: RunColumns, found: tuple[dict[str, Any], ...], engine: Engine
) -> list[Annotation]:
    """The file annotations of a response (or of an error body), one row each."""
    created = now_iso()
    rows = []
    for item in found:
        file = item.get("file") if isinstance(item, dict) else None
        if item.get("type") != "file" or not isinstance(file, dict) or not file.get("hash"):
            continue
        rows.append(
            Annotation(
                doc_id=job.document.doc_id,
                file_hash=str(file["hash"]),
                name=str(file.get("name") or ""),
                engine=engine,
                content=json.dumps(file.get("content") or []),
                run_id=run.run_id,
                created_at=created,
            )
        )
    return rows


def as_message_annotation(annotation: Annotation) -> dict[str, Any]:
    """A stored annotation back in the shape the API returned it (for the reuse pattern)."""
    parts = json.loads(annotation.content)
    return {"type": "file", "file": {"hash": annotation.file_hash, "name": annotation.name, "content": parts}}


def copy_row(original: Result, document: Document, run_id: str) -> Result:
    """The row for another path with the same bytes, in run `run_id`: same answer, not paid again."""
    return dataclasses.replace(
        original,
        run_id=run_id,
        path=document.rel_path,
        source_root=document.source_root,
        source_url=redact(document.remote.url) if document.remote else None,
        cost_usd=0.0,
        est_cost_usd=0.0,
        attempts=0,
        started_at=now_iso(),
        finished_at=now_iso(),
    )
