"""One document's way through the call stage, ending in exactly one Result row."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docrouter import errors
from docrouter.catalogue import ModelInfo
from docrouter.dispatch import Attempted, Dispatcher
from docrouter.documents import Document
from docrouter.images import PreparedImage, prepare_image
from docrouter.inspection import Inspection, extract_text
from docrouter.payloads import PARSING_ENGINES, RequestOptions, image_request, pdf_request, text_request
from docrouter.pricing import PriceBook, estimate
from docrouter.results import Annotation, Result, Status
from docrouter.routing import Route


@dataclass(frozen=True)
class Job:
    """A document with what inspection and routing decided about it."""

    document: Document
    inspection: Inspection | None
    route: Route | None


@dataclass
class JobContext:
    """What every job of a run shares."""

    run_id: str
    options: RequestOptions
    prompt_sha256: str
    model: ModelInfo
    prices: PriceBook
    dispatcher: Dispatcher
    stored_annotations: Callable[[str], Sequence[Annotation]]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def row(job: Job, ctx: JobContext, status: Status, started_at: str, **fields: Any) -> Result:
    """A Result row for `job` with the run's shared columns filled in."""
    doc, inspection, route = job.document, job.inspection, job.route
    values: dict[str, Any] = {
        "run_id": ctx.run_id,
        "doc_id": doc.doc_id,
        "path": doc.rel_path,
        "source_root": doc.source_root,
        "size_bytes": doc.size_bytes,
        "mime_type": doc.mime_type,
        "kind": doc.kind,
        "pages": inspection.pages if inspection and inspection.ok else None,
        "engine": route.engine if route else None,
        "engine_reason": route.reason if route else None,
        "model": ctx.options.model,
        "prompt_sha256": ctx.prompt_sha256,
        "status": status,
        "error_type": None,
        "error_message": None,
        "attempts": 0,
        "est_cost_usd": route.estimate.expected_usd if route and route.estimate else 0.0,
        "cost_usd": 0.0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "generation_id": None,
        "content": None,
        "finish_reason": None,
        "started_at": started_at,
        "finished_at": now_iso(),
    }
    values.update(fields)
    return Result(**values)


def unsent_row(job: Job, ctx: JobContext) -> Result | None:
    """The row for a document that is decided before any call (skipped or failed), else None."""
    started = now_iso()
    doc, inspection, route = job.document, job.inspection, job.route
    if doc.kind is None:
        error_type = "empty" if doc.size_bytes == 0 else "unsupported"
        message = (
            "empty file (0 bytes)"
            if doc.size_bytes == 0
            else f"unsupported file type {doc.mime_type}: docrouter reads PDF, PNG, JPEG, WebP and GIF"
        )
        return row(job, ctx, "skipped", started, error_type=error_type, error_message=message)
    if inspection is not None and not inspection.ok:
        return row(
            job,
            ctx,
            "failed",
            started,
            error_type=inspection.error_type,
            error_message=inspection.error_message,
        )
    if route is None or route.engine is None or route.estimate is None:
        return row(
            job,
            ctx,
            "failed",
            started,
            error_type=route.error_type if route else "unroutable",
            error_message=route.error_message if route else "no route was chosen for this document",
        )
    return None


async def answer(job: Job, ctx: JobContext) -> tuple[Result, list[Annotation]]:
    """Send one routed document and turn what came back into its row and its annotations."""
    started = now_iso()
    assert job.route is not None and job.route.engine is not None and job.inspection is not None
    try:
        image = None
        if job.document.kind == "image":
            image = await asyncio.to_thread(_prepared_image, job.document)
            if image.note:
                job = dataclasses.replace(
                    job, route=dataclasses.replace(job.route, reason=f"{job.route.reason}; {image.note}")
                )
        attempted = await _send(job, job.route.engine, ctx, image)
        if _parse_failed(job.route.engine, attempted) and job.inspection.text_chars > 0:
            # The free server-side parser is known to fail on whole classes of PDFs; our own text is adequate.
            fallback = dataclasses.replace(
                job.route,
                engine="local-text",
                reason=f"{job.route.reason}; pdf-text parse failed -> local-text",
            )
            job = dataclasses.replace(job, route=fallback)
            retried = await _send(job, "local-text", ctx)
            attempted = dataclasses.replace(
                retried,
                attempts=attempted.attempts + retried.attempts,
                cost_usd=attempted.cost_usd + retried.cost_usd,
            )
    except errors.DocumentError as exc:
        return row(job, ctx, "failed", started, error_type=exc.error_type, error_message=exc.message), []
    return _result(job, ctx, attempted, started), _annotations(job, ctx, attempted)


def _parse_failed(engine: str, attempted: Attempted) -> bool:
    return engine == "pdf-text" and isinstance(attempted.error, errors.BadRequest)


def _prepared_image(doc: Document) -> PreparedImage:
    return prepare_image(Path(doc.path).read_bytes(), doc.mime_type)


async def _send(job: Job, engine: str, ctx: JobContext, image: PreparedImage | None = None) -> Attempted:
    doc, inspection = job.document, job.inspection
    assert inspection is not None
    stored = (
        tuple(_as_message_annotation(a) for a in ctx.stored_annotations(doc.doc_id))
        if engine in PARSING_ENGINES
        else ()
    )
    name = Path(doc.rel_path).name
    prompt_chars = len(ctx.options.prompt)
    text_chars: int | None = None
    if engine == "local-text":
        text = await asyncio.to_thread(_local_text, doc.path)
        text_chars = len(text)

        def build(_: tuple[dict[str, Any], ...]) -> dict[str, Any]:
            return text_request(ctx.options, text, name)

    elif image is not None:

        def build(_: tuple[dict[str, Any], ...]) -> dict[str, Any]:
            return image_request(ctx.options, image.data, image.mime_type)

    else:
        data = await asyncio.to_thread(Path(doc.path).read_bytes)

        def build(annotations: tuple[dict[str, Any], ...]) -> dict[str, Any]:
            return pdf_request(ctx.options, data, name, engine, annotations or stored)

    def bound(reusing: bool) -> float:
        return estimate(
            engine,
            inspection,
            ctx.model,
            ctx.prices,
            prompt_chars=prompt_chars,
            max_tokens=ctx.options.max_tokens,
            text_chars=text_chars,
            reuse_annotations=reusing or bool(stored),
        ).max_usd

    def failure_charge(reusing: bool) -> float:
        if engine != "mistral-ocr" or reusing or stored:
            return 0.0
        return inspection.pages * ctx.prices.ocr_fee_per_page

    return await ctx.dispatcher.send(build, max_usd=bound, failure_charge_usd=failure_charge)


def _local_text(path: str) -> str:
    pages = extract_text(path)
    text = "\n\n".join(f"[page {i + 1}]\n{t.strip()}" for i, t in enumerate(pages) if t and t.strip())
    if not text:
        raise errors.Empty("no text could be extracted locally; route this document to OCR or native")
    return text


def _result(job: Job, ctx: JobContext, attempted: Attempted, started: str) -> Result:
    common = {"attempts": attempted.attempts, "cost_usd": attempted.cost_usd}
    completion, error = attempted.completion, attempted.error
    if completion is not None:
        return row(
            job,
            ctx,
            "ok",
            started,
            **common,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            generation_id=completion.generation_id,
            content=completion.content,
            finish_reason=completion.finish_reason,
        )
    assert error is not None
    status: Status = "over_budget" if isinstance(error, errors.OverBudget) else "failed"
    return row(job, ctx, status, started, **common, error_type=error.error_type, error_message=error.message)


def _annotations(job: Job, ctx: JobContext, attempted: Attempted) -> list[Annotation]:
    created = now_iso()
    engine = job.route.engine if job.route else ""
    found = []
    for item in attempted.annotations:
        file = item.get("file") if isinstance(item, dict) else None
        if item.get("type") != "file" or not isinstance(file, dict) or not file.get("hash"):
            continue
        found.append(
            Annotation(
                doc_id=job.document.doc_id,
                file_hash=str(file["hash"]),
                name=str(file.get("name") or ""),
                engine=engine or "",
                content=json.dumps(file.get("content") or []),
                run_id=ctx.run_id,
                created_at=created,
            )
        )
    return found


def _as_message_annotation(annotation: Annotation) -> dict[str, Any]:
    """A stored annotation back in the shape the API returned it (for the reuse pattern)."""
    parts = json.loads(annotation.content)
    return {"type": "file", "file": {"hash": annotation.file_hash, "name": annotation.name, "content": parts}}


def copy_row(original: Result, job: Job, ctx: JobContext) -> Result:
    """The row for another path with the same bytes: same answer, not paid again."""
    return dataclasses.replace(
        original,
        path=job.document.rel_path,
        source_root=job.document.source_root,
        cost_usd=0.0,
        est_cost_usd=0.0,
        attempts=0,
        error_message=original.error_message,
        started_at=now_iso(),
        finished_at=now_iso(),
    )
