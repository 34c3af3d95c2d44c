"""One document's way through the call stage: one request, or page ranges and a combining request."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docrouter import errors
from docrouter.budget import Bound
from docrouter.call.client import Completion
from docrouter.call.dispatch import Attempted, Dispatcher
from docrouter.call.extracting import Extracted, added, checked_answer, merged_parts
from docrouter.call.extraction import Extracting
from docrouter.call.nonanswers import judged, other_engine
from docrouter.call.payloads import (
    RequestOptions,
    combine_request,
    encode,
    image_request,
    pdf_request,
    request_size,
    text_request,
)
from docrouter.call.reading import check_unchanged, read_verified, verified_file
from docrouter.call.rows import (
    Job,
    RunColumns,
    annotation_rows,
    as_message_annotation,
    attempted_row,
    error_row,
    now_iso,
)
from docrouter.catalogue import ModelInfo
from docrouter.discover.documents import Document
from docrouter.discover.fetching import Fetcher
from docrouter.discover.urls import url_filename
from docrouter.inspect.images import ImageDecoder, PreparedImage
from docrouter.inspect.inspection import Inspection, extract_text
from docrouter.results import Annotation, Result
from docrouter.route.pricing import Estimate, PriceBook, estimate
from docrouter.route.splitting import Part, SplitLimits, check_body, part_labels, pdf_subset, plan_parts, split_to_fit
from docrouter.vocabulary import PARSING_ENGINES, Engine, PdfEngine

Body = Callable[[tuple[dict[str, Any], ...]], dict[str, Any]]
BoundAt = Callable[[bool, int], Bound]  # (reusing a parse, max_tokens) -> the cost bound a request reserves
# What ends one document without a request: the file cannot be used, or is no longer what discovery hashed.
UNSENDABLE = (errors.DocumentError, errors.Changed)


@dataclass
class JobContext:
    """What every job of a run shares."""

    run: RunColumns
    options: RequestOptions
    model: ModelInfo
    prices: PriceBook
    dispatcher: Dispatcher
    stored_annotations: Callable[[str], Sequence[Annotation]]
    bodies_in_memory: int  # documents whose bytes are read, encoded and held at once (Concurrency.bodies_in_memory)
    limits: SplitLimits = field(default_factory=SplitLimits)
    images: ImageDecoder = field(default_factory=ImageDecoder)
    named_files: frozenset[str] = frozenset()  # files named as sources: their symlinks are followed anywhere
    # Per-page text for local-text: the run passes bounded worker processes (pdfwork.TextWorkers.extract).
    read_text: Callable[[str, Sequence[int] | None], list[str]] = extract_text
    fetcher: Fetcher | None = None  # URL documents: sent by URL (--send-urls auto) after its re-check
    extracting: Extracting | None = None  # with --schema: answers are checked (and repaired) against it
    engine_forced: bool = False  # --engine chose the PDF engine: an unreadable reply is not retried elsewhere
    bodies: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.bodies = asyncio.Semaphore(self.bodies_in_memory)


async def answer(job: Job, ctx: JobContext) -> tuple[Result, list[Annotation]]:
    """Send one routed document and turn what came back into its row and its annotations.

    Never raises for anything the document does: an error no one foresaw is its row (error_type "error"),
    so one file cannot end its batch.
    """
    started = now_iso()
    try:
        return await _answer(job, ctx, started)
    except MemoryError:
        failure: errors.DocrouterError = errors.TooLarge("preparing this file needed more memory than exists")
    except Exception as exc:  # a library error on strange bytes, or a bug: this document's row, not the batch's end
        failure = errors.DocrouterError(f"failed unexpectedly ({type(exc).__name__}: {exc})"[:500])
    return error_row(job, ctx.run, failure, started), []


async def _answer(job: Job, ctx: JobContext, started: str) -> tuple[Result, list[Annotation]]:
    route, inspection = job.route, job.inspection
    parts = plan_parts(inspection, route.engine, job.document.size_bytes, ctx.limits) if inspection.pages else []
    try:
        parts = split_to_fit(parts, lambda p: _prompt_upper(ctx, p.engine, _scoped(inspection, p)), _room(ctx))
        if len(parts) > 1:
            extracted, parts = await _answer_parts(job, ctx, parts)
            job = _with_reason(job, part_labels(parts))
        else:
            job, extracted, parts = await _answer_whole_or_halves(job, ctx, parts)
    except UNSENDABLE as exc:
        return error_row(job, ctx.run, exc, started), []
    attempted = extracted.attempted
    found = annotation_rows(job, ctx.run, attempted.annotations, job.route.engine)
    row = attempted_row(job, ctx.run, attempted, started, parts=max(1, len(parts)), extraction=extracted.validity)
    return row, found


async def _answer_whole_or_halves(job: Job, ctx: JobContext, parts: list[Part]) -> tuple[Job, Extracted, list[Part]]:
    """The document in one request; a PDF that is over the byte limit after all goes in halves instead."""
    try:
        async with ctx.bodies:
            job, attempted = await _answer_whole(job, ctx)
        return job, await _checked(job, ctx, attempted), parts
    except errors.TooLarge:
        if len(parts) != 1 or parts[0].pages == 1:
            raise
    # Heavier than its page average promised (a few huge pages): halve it until the pieces fit.
    extracted, parts = await _answer_parts(job, ctx, _halves(parts[0]))
    return _with_reason(job, part_labels(parts)), extracted, parts


async def _answer_whole(job: Job, ctx: JobContext) -> tuple[Job, Attempted]:
    route, inspection = job.route, job.inspection
    image = None
    if job.document.kind == "image":
        data = await asyncio.to_thread(read_verified, job.document, ctx.named_files)
        image = await ctx.images.prepare(data, job.document.mime_type)
        if image.note:
            job = _with_reason(job, image.note)
    url = await _by_url(job, ctx, route.engine, image)
    job = dataclasses.replace(job, sent_as="url" if url else "upload")
    attempted = judged(await _send(job, route.engine, ctx, image=image, url=url))
    if route.engine == "pdf-text" and isinstance(attempted.error, errors.BadRequest) and inspection.text_chars:
        # The free server-side parser has failed on whole classes of PDFs; our own text layer is adequate.
        return await _instead(job, attempted, "local-text", "pdf-text parse failed -> local-text", ctx)
    other = other_engine(inspection, ctx.model, route.engine) if job.document.kind == "pdf" else None
    if isinstance(attempted.error, errors.UnreadableReply) and other and not ctx.engine_forced:
        return await _instead(job, attempted, other, f"reply said it could not read the file -> {other}", ctx)
    return job, attempted


async def _by_url(job: Job, ctx: JobContext, engine: Engine, image: PreparedImage | None) -> str | None:
    """The URL to send instead of the bytes: an image as it is, or a PDF for a server-side parser, and only
    when its server says it has not changed since it was hashed (the API fetches what it then serves)."""
    doc = job.document
    if doc.remote is None or ctx.fetcher is None:
        return None
    if (image.note if image is not None else engine not in PARSING_ENGINES) or doc.kind not in ("image", "pdf"):
        return None
    return doc.remote.url if await ctx.fetcher.unchanged(doc) else None


async def _instead(job: Job, first: Attempted, engine: PdfEngine, note: str, ctx: JobContext) -> tuple[Job, Attempted]:
    """The document sent once more through `engine`; the row counts both requests' attempts and cost.

    When the budget cannot take the second request, the first outcome stands (nothing more was sent).
    """
    sent = dataclasses.replace(job, route=dataclasses.replace(job.route, engine=engine), sent_as="upload")
    moved = _with_reason(sent, note)
    retried = judged(await _send(moved, engine, ctx))
    if isinstance(retried.error, errors.OverBudget) and not retried.attempts:
        return _with_reason(job, f"no budget left to try {engine}"), first
    total = dataclasses.replace(
        retried, attempts=first.attempts + retried.attempts, cost_usd=first.cost_usd + retried.cost_usd
    )
    return moved, total


def _with_reason(job: Job, note: str) -> Job:
    return dataclasses.replace(job, route=dataclasses.replace(job.route, reason=f"{job.route.reason}; {note}"))


async def _checked(job: Job, ctx: JobContext, attempted: Attempted) -> Extracted:
    """The answer checked against --schema (one repair request if invalid); as it is without a schema."""
    if ctx.extracting is None:
        return Extracted(attempted)
    schema = ctx.extracting.schema
    return await checked_answer(ctx.extracting, schema, ctx.options, attempted, ctx.dispatcher, _text_bound(job, ctx))


def _text_bound(job: Job, ctx: JobContext) -> Callable[[int], Bound]:
    """The most a request of so many characters of text (a combine or repair request) may cost."""
    inspection = job.inspection
    return lambda chars: _bound(
        ctx, "local-text", inspection, text_chars=chars, reusing=True, max_tokens=ctx.options.max_tokens
    )


async def _extracted_parts(
    job: Job, ctx: JobContext, extracting: Extracting, parts: list[Part], outcomes: list[Attempted]
) -> Extracted:
    """Every range's object checked (and repaired), then merged by the schema's rule; one invalid range makes
    the document invalid."""
    checked = await asyncio.gather(*(_checked(job, ctx, outcome) for outcome in outcomes))
    invalid = next((c for c in checked if c.value is None), None)
    if invalid is not None:
        result = invalid.attempted
        merged = Extracted(result, None, invalid.validity)
    else:
        labelled = [(p.label, c) for p, c in zip(parts, checked, strict=True)]
        merged = await merged_parts(extracting, ctx.options, labelled, ctx.dispatcher, _text_bound(job, ctx))
    total = merged.attempted
    for other in checked:
        if other is not invalid:
            total = added(other.attempted, total)
    return dataclasses.replace(merged, attempted=total)


async def _answer_parts(job: Job, ctx: JobContext, planned: list[Part]) -> tuple[Extracted, list[Part]]:
    """Map: every page range answered on its own (concurrently); reduce: one request combines them.

    Returns the combined answer and the ranges really sent (a range over the byte limit is sent in halves).
    """
    answered = [
        pair for pairs in await asyncio.gather(*(_send_fitting(job, ctx, p) for p in planned)) for pair in pairs
    ]
    parts = [part for part, _ in answered]
    outcomes = [outcome for _, outcome in answered]
    attempts = sum(o.attempts for o in outcomes)
    cost = sum(o.cost_usd for o in outcomes)
    annotations = tuple(a for o in outcomes for a in o.annotations)
    failed = next((o for o in outcomes if o.completion is None), None)
    if failed is not None:
        return Extracted(Attempted(None, failed.error, attempts, cost, annotations)), parts
    if ctx.extracting is not None:
        return await _extracted_parts(job, ctx, ctx.extracting, parts, outcomes), parts
    partials = [(p.label, o.completion.content) for p, o in zip(parts, outcomes, strict=True) if o.completion]
    combined = await _combine_judged(job, ctx, partials)
    answers = [o.completion for o in outcomes if o.completion] + ([combined.completion] if combined.completion else [])
    final = _summed(combined.completion, answers) if combined.completion else None
    total = Attempted(final, combined.error, attempts + combined.attempts, cost + combined.cost_usd, annotations)
    return Extracted(total), parts


async def _send_fitting(job: Job, ctx: JobContext, part: Part) -> list[tuple[Part, Attempted]]:
    """One page range, or its halves (recursively) when its bytes make a body over the limit.

    A range that cannot be sent is an outcome, not an exception: the other ranges go on, and what they
    cost still reaches the document's row.
    """
    try:
        async with ctx.bodies:
            return [(part, await _send_part(job, ctx, part))]
    except errors.TooLarge as exc:
        if part.pages == 1:
            return [(part, Attempted(None, exc, 0, 0.0))]
    except UNSENDABLE as exc:
        return [(part, Attempted(None, exc, 0, 0.0))]
    halves = await asyncio.gather(*(_send_fitting(job, ctx, half) for half in _halves(part)))
    return [pair for pairs in halves for pair in pairs]


def _halves(part: Part) -> list[Part]:
    middle = part.first + part.pages // 2
    return [Part(part.first, middle - 1, part.engine), Part(middle, part.last, part.engine)]


async def _send_part(job: Job, ctx: JobContext, part: Part) -> Attempted:
    """One page range; a text range with no text at all (blank pages) costs no request. A range whose reply
    says it could not be read is tried once through another adequate engine, as a whole document is."""
    try:
        attempted = judged(await _send(job, part.engine, ctx, part=part))
    except errors.Empty:
        if part.engine != "local-text":
            raise
        blank = Completion(None, ctx.options.model, f"(pages {part.label} have no text)", "stop", 0, 0, 0.0)
        return Attempted(blank, None, 0, 0.0)
    inspection = job.inspection
    if not isinstance(attempted.error, errors.UnreadableReply) or ctx.engine_forced or inspection is None:
        return attempted
    other = other_engine(_scoped(inspection, part), ctx.model, part.engine)
    if other is None:
        return attempted
    retried = judged(await _send(job, other, ctx, part=dataclasses.replace(part, engine=other)))
    if isinstance(retried.error, errors.OverBudget) and not retried.attempts:
        return attempted  # no budget left to try another engine: the non-answer stands, paid once
    return dataclasses.replace(
        retried, attempts=attempted.attempts + retried.attempts, cost_usd=attempted.cost_usd + retried.cost_usd
    )


def _summed(final: Completion, answers: list[Completion]) -> Completion:
    """The combining answer, with the tokens of every request the document took."""
    return dataclasses.replace(
        final,
        prompt_tokens=sum(a.prompt_tokens for a in answers),
        completion_tokens=sum(a.completion_tokens for a in answers),
        reasoning_tokens=sum(a.reasoning_tokens for a in answers),
        truncated=any(a.truncated for a in answers),
    )


async def _combine_judged(job: Job, ctx: JobContext, partials: list[tuple[str, str]]) -> Attempted:
    """The combining answer, judged: a reply saying it could not read the document (the ranges were read: the
    refusal is the model's) is asked once more, then stands as an unreadable_reply failure."""
    first = judged(await _combine(job, ctx, partials))
    if not isinstance(first.error, errors.UnreadableReply):
        return first
    again = judged(await _combine(job, ctx, partials))
    if isinstance(again.error, errors.OverBudget) and not again.attempts:
        return first
    return dataclasses.replace(
        again, attempts=first.attempts + again.attempts, cost_usd=first.cost_usd + again.cost_usd
    )


async def _combine(job: Job, ctx: JobContext, partials: list[tuple[str, str]]) -> Attempted:
    """One answer from the partial answers; when they do not fit one request, halves first (a tree)."""
    inspection = job.inspection
    body = combine_request(ctx.options, partials)
    chars = len(encode(body))
    room = _room(ctx)
    if room is not None and len(partials) > 2 and _prompt_upper(ctx, "local-text", inspection, chars) > room:
        return await _combine_halves(job, ctx, partials)

    def bound(_: bool, max_tokens: int) -> Bound:
        return _bound(ctx, "local-text", inspection, text_chars=chars, reusing=True, max_tokens=max_tokens)

    return await _dispatch(ctx, lambda _: body, bound, lambda _: 0.0)


async def _send(
    job: Job,
    engine: Engine,
    ctx: JobContext,
    *,
    image: PreparedImage | None = None,
    part: Part | None = None,
    url: str | None = None,
) -> Attempted:
    """Build the body for `engine` (the whole document or one part) and send it with retries."""
    doc, inspection = job.document, job.inspection
    scope = _scoped(inspection, part)
    stored = _stored(ctx, doc.doc_id, engine, part)
    name = url_filename(doc.remote.url) if doc.remote else Path(doc.rel_path).name
    text_chars: int | None = None
    build: Body
    if engine == "local-text":
        await asyncio.to_thread(check_unchanged, doc, ctx.named_files)
        text = await asyncio.to_thread(_local_text, ctx.read_text, doc.path, part)
        await asyncio.to_thread(check_unchanged, doc, ctx.named_files)  # the text read is of the hashed bytes
        text_chars = len(text)
        _check_context(ctx, _prompt_upper(ctx, engine, scope, text_chars), part or scope)
        build = _text_body(ctx.options, text, name)
    elif image is not None:
        build = _image_body(ctx.options, image, url)
    elif url is not None:
        build = _pdf_body(ctx.options, b"", name, engine, stored, url)
    else:
        data = await asyncio.to_thread(_pdf_bytes, doc, part, ctx.named_files)
        size = request_size(pdf_request(ctx.options, b"", name, engine, stored), len(data))
        check_body(size, ctx.limits, f"{name} (pages {part.label if part else 'all'})")
        build = _pdf_body(ctx.options, data, name, engine, stored)

    def bound(reusing: bool, max_tokens: int) -> Bound:
        reuse = reusing or bool(stored)
        return _bound(ctx, engine, scope, text_chars=text_chars, reusing=reuse, max_tokens=max_tokens)

    def failure_charge(reusing: bool) -> float:
        if engine != "mistral-ocr" or reusing or stored:
            return 0.0
        return scope.pages * ctx.prices.ocr_fee_per_page

    return await _dispatch(ctx, build, bound, failure_charge)


async def _dispatch(ctx: JobContext, build: Body, bound: BoundAt, failure_charge: Callable[[bool], float]) -> Attempted:
    """Send with retries; an answer the length limit cut to nothing goes once more with a larger cap.

    Reasoning tokens come out of max_tokens first, so a model that reasoned past the cap answers "" with
    finish_reason "length". One more request with room for both, if the budget allows it (reusing the
    first attempt's parse, so OCR is not paid twice); still nothing: a failed row, error_type truncated.
    """
    sent = ctx.options.max_tokens
    first = await ctx.dispatcher.send(
        build, max_usd=lambda reusing: bound(reusing, sent), failure_charge_usd=failure_charge
    )
    cut = _cut_empty(first)
    if cut is None:
        return first
    parsed = first.annotations
    cap = _larger_cap(ctx, cut, lambda tokens: _usd(bound(bool(parsed), tokens)))
    retried = None
    if cap is not None:
        retried = await ctx.dispatcher.send(
            lambda annotations: {**build(annotations or parsed), "max_tokens": cap},
            max_usd=lambda reusing: bound(reusing or bool(parsed), cap),
            failure_charge_usd=lambda reusing: failure_charge(reusing or bool(parsed)),
        )
    attempts = first.attempts + (retried.attempts if retried else 0)
    cost = first.cost_usd + (retried.cost_usd if retried else 0.0)
    annotations = parsed + (retried.annotations if retried else ())
    if retried is not None and _cut_empty(retried) is None:
        return dataclasses.replace(retried, attempts=attempts, cost_usd=cost, annotations=annotations)
    return Attempted(None, _truncated(cut, sent, cap), attempts, cost, annotations)


async def _combine_halves(job: Job, ctx: JobContext, partials: list[tuple[str, str]]) -> Attempted:
    """Combine each half of the partial answers, then the two results (their tokens summed into the last)."""
    middle = len(partials) // 2
    halves = [partials[:middle], partials[middle:]]
    done = [await _combine(job, ctx, half) for half in halves]
    attempts, cost = sum(d.attempts for d in done), sum(d.cost_usd for d in done)
    answers = [d.completion for d in done if d.completion is not None]
    if len(answers) < len(done):
        failed = next(d for d in done if d.completion is None)
        return Attempted(None, failed.error, attempts, cost)
    labels = [f"{half[0][0].split('-')[0]}-{half[-1][0].split('-')[-1]}" for half in halves]
    final = await _combine(job, ctx, [(label, a.content) for label, a in zip(labels, answers, strict=True)])
    completion = _summed(final.completion, [*answers, final.completion]) if final.completion else None
    return Attempted(completion, final.error, attempts + final.attempts, cost + final.cost_usd)


def _usd(bound: Bound) -> float:
    return bound.tokens_usd + bound.fee_usd


def _cut_empty(attempted: Attempted) -> Completion | None:
    """The answer, when the length limit cut it to nothing; None for any other outcome."""
    completion = attempted.completion
    return completion if completion is not None and completion.truncated and not completion.content.strip() else None


def _larger_cap(ctx: JobContext, cut: Completion, bound: Callable[[int], float]) -> int | None:
    """Room for what the model reasoned plus the answer, within the model's limits and what the budget has left."""
    sent = ctx.options.max_tokens
    cap = sent + max(sent, cut.reasoning_tokens)
    if ctx.model.max_completion_tokens:
        cap = min(cap, ctx.model.max_completion_tokens)
    if ctx.model.usable_context:
        cap = min(cap, ctx.model.usable_context - cut.prompt_tokens)  # the prompt stays; the cap must fit beside it
    remaining = ctx.dispatcher.budget.remaining_usd
    if remaining is not None and bound(cap) > remaining:
        per_token = (bound(cap) - bound(sent)) / (cap - sent) if cap > sent else 0.0
        cap = sent + int((remaining - bound(sent)) / per_token) if per_token > 0 else sent
    return cap if cap > sent else None


def _truncated(cut: Completion, sent: int, cap: int | None) -> errors.Truncated:
    tried = f", and again with {cap}" if cap is not None else " (no larger cap fits the model or the budget)"
    return errors.Truncated(
        f"the answer was cut by the length limit before any of it was written: max_tokens {sent}{tried}, "
        f"{cut.reasoning_tokens} tokens spent reasoning; a rerun with a larger --max-tokens (or a lower "
        "--reasoning) answers it"
    )


def _text_body(options: RequestOptions, text: str, name: str) -> Body:
    return lambda _: text_request(options, text, name)


def _image_body(options: RequestOptions, image: PreparedImage, url: str | None) -> Body:
    return lambda _: image_request(options, image.data, image.mime_type, url=url)


def _pdf_body(
    options: RequestOptions,
    data: bytes,
    name: str,
    engine: Engine,
    stored: tuple[dict[str, Any], ...],
    url: str | None = None,
) -> Body:
    return lambda annotations: pdf_request(options, data, name, engine, annotations or stored, url=url)


def _stored(ctx: JobContext, doc_id: str, engine: Engine, part: Part | None) -> tuple[dict[str, Any], ...]:
    """Stored parses of the whole file (a part is a different file, with a different hash)."""
    if engine not in PARSING_ENGINES or part is not None:
        return ()
    return tuple(as_message_annotation(a) for a in ctx.stored_annotations(doc_id))


def _bound(
    ctx: JobContext, engine: Engine, scope: Inspection, *, text_chars: int | None, reusing: bool, max_tokens: int
) -> Bound:
    """What sending `scope` with `engine` may cost at most: the reservation."""
    return _estimate(ctx, engine, scope, text_chars, reusing=reusing, max_tokens=max_tokens).bound


def _room(ctx: JobContext) -> int | None:
    """Prompt tokens one request may hold: the model's served context minus max_tokens (None: unknown)."""
    context = ctx.model.usable_context
    return context - ctx.options.max_tokens if context else None


def _prompt_upper(ctx: JobContext, engine: Engine, scope: Inspection, text_chars: int | None = None) -> int:
    """At most how many prompt tokens sending `scope` with `engine` takes."""
    return _estimate(ctx, engine, scope, text_chars).max_prompt_tokens


def _estimate(
    ctx: JobContext,
    engine: Engine,
    scope: Inspection,
    text_chars: int | None,
    *,
    reusing: bool = False,
    max_tokens: int = 0,
) -> Estimate:
    """The run's cost model for one request: its instructions, this scope, this engine."""
    return estimate(
        engine,
        scope,
        ctx.model,
        ctx.prices,
        prompt_chars=ctx.options.instruction_chars,
        max_tokens=max_tokens,
        text_chars=text_chars,
        reuse_annotations=reusing,
    )


def _check_context(ctx: JobContext, tokens: int, what: Part | Inspection) -> None:
    """TooLarge (so the range is sent in halves) when the text really read is over the context after all."""
    room = _room(ctx)
    if room is not None and tokens > room:
        pages = what.label if isinstance(what, Part) else "all"
        raise errors.TooLarge(f"pages {pages} may need {tokens:,} prompt tokens, over the {room:,} the context allows")


def _scoped(inspection: Inspection, part: Part | None) -> Inspection:
    """The inspection narrowed to a part's pages, for its cost bound."""
    if part is None:
        return inspection
    share = part.pages / max(1, inspection.pages)
    return dataclasses.replace(
        inspection,
        pages=part.pages,
        page_labels=inspection.page_labels[part.first : part.last + 1],
        ocr_pages=tuple(p - part.first for p in inspection.ocr_pages if part.first <= p <= part.last),
        text_chars=int(inspection.text_chars * share),
    )


def _pdf_bytes(doc: Document, part: Part | None, named: frozenset[str]) -> bytes:
    """The bytes to send, read through one handle whose content was checked against doc_id."""
    if part is None:
        return read_verified(doc, named)
    with verified_file(doc, named) as file:
        return pdf_subset(file, part.first, part.last)


def _local_text(read: Callable[[str, Sequence[int] | None], list[str]], path: str, part: Part | None = None) -> str:
    first = part.first if part else 0
    pages = read(path, list(range(part.first, part.last + 1)) if part else None)
    text = "\n\n".join(f"[page {first + i + 1}]\n{t.strip()}" for i, t in enumerate(pages) if t and t.strip())
    if not text:
        raise errors.Empty("no text could be extracted locally; route this document to OCR or native")
    return text
