"""A run's shared state and its stages as plain functions; flows/ wraps them in Prefect tasks."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import random
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from docrouter import errors
from docrouter.budget import Budget
from docrouter.call.client import OpenRouterClient, models_fetcher
from docrouter.call.dispatch import Dispatcher
from docrouter.call.extraction import Extracting
from docrouter.call.jobs import JobContext, answer
from docrouter.call.limits import AdaptiveLimiter, RetryPolicy
from docrouter.call.payloads import DEFAULT_WIRE_NAMES, RequestOptions
from docrouter.call.reading import still_discovered
from docrouter.call.rows import Job, RunColumns, Unsent, copy_row, job_for, unsent_row
from docrouter.catalogue import Catalogue, ModelInfo, answering_model, cache_dir, cache_name, load_catalogue
from docrouter.discover.documents import Document, check_source, discover_documents
from docrouter.discover.fetching import (
    CACHE_DIR,
    MAX_REDIRECTS,
    Fetcher,
    FetchTotals,
    UrlCache,
    fetch_outside_run,
)
from docrouter.discover.urls import check_url_lists, is_url, url_sources
from docrouter.inspect.images import ImageDecoder, image_pool
from docrouter.inspect.inspection import Inspection, inspect_isolated, inspection_pool
from docrouter.inspect.isolation import WorkerPool
from docrouter.inspect.pdfwork import PdfLog, TextWorkers
from docrouter.results import Annotation, Extraction, Result
from docrouter.route.answers import AnswerLength, expected_answer, read_user_history, remember_answers
from docrouter.route.pricing import MaxPrice, PriceBook, priced_model
from docrouter.route.reasoning import resolve as resolve_reasoning
from docrouter.route.routing import Router, check_forced_engine, forced_engine
from docrouter.run import stopping
from docrouter.run.concurrency import Concurrency
from docrouter.run.config import RunConfig, provider_preferences, resolve_api_key, resolve_base_url
from docrouter.run.ledger import Ledger, Reader, answers_of, read_ledger
from docrouter.run.progress import Progress
from docrouter.run.summary import Costs, job_costs
from docrouter.store import lease
from docrouter.store.compaction import read_dataset
from docrouter.store.store import GroupCommit, Key, Store


@dataclass
class Session:
    """Everything one run shares across its batches."""

    config: RunConfig
    run_id: str
    catalogue: Catalogue
    jobs: JobContext
    store: Store
    progress: Progress
    base_url: str
    concurrency: Concurrency  # every bound on what the run does at once (docrouter/run/concurrency.py)
    emulator_url: str | None = None
    ledger: Ledger = field(default_factory=Ledger)  # DIR as the run found it, read once: its decisions rest on this
    read: Reader = read_dataset  # how the run reads DIR's datasets: the ledger at its start, copies' answers at its end
    router: Router | None = None  # fixed at the start, so every estimate is what `plan` said
    copy_sources: dict[str, Result] = field(default_factory=dict)  # doc_id -> row, for in-run copies
    inspector: WorkerPool[Document, Inspection] | None = None  # one set of inspection workers for the run
    fetcher: Fetcher | None = None  # URL sources, fetched over the run's client into DIR/_urls
    # (source_root, rel_path) of every document whose call started in this run: a retried batch (or any second
    # call with the same jobs) skips them, so nothing is sent twice even when a first attempt died midway.
    claimed: set[tuple[str, str]] = field(default_factory=set)
    pdf_log: PdfLog | None = None  # what the PDF libraries said about each file: DIR/logs/<run_id>.log
    paid_answers: list[int] = field(default_factory=list)  # completion tokens of this run's paid ok answers
    costs: Costs = field(default_factory=Costs)  # the estimates of every routed document, for the summary
    recorder: GroupCommit = field(init=False)
    unrecorded: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.recorder = GroupCommit(self.store)
        # A freed request slot must not start a new document while answers wait for their group fsync.
        self.unrecorded = asyncio.Semaphore(self.concurrency.unrecorded_answers)

    @property
    def dispatcher(self) -> Dispatcher:
        return self.jobs.dispatcher


@dataclass(frozen=True)
class Selection:
    """Which discovered documents to process, which are copies, and how many are already done."""

    fresh: list[Document]
    copies: list[Document]  # another path of content answered in this run or an earlier one: a row at cost 0
    already_done: int
    known_failures: int = 0  # unchanged documents whose last row is a terminal failure: not processed again
    settled: tuple[tuple[Document, str], ...] = ()  # (document, "already_done" / "known_failures"), for plan


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class Endpoint:
    """Where requests go and with which key: OpenRouter (or --base-url), or the emulator started for --offline."""

    base_url: str
    api_key: str
    emulator_url: str | None = None


@contextmanager
def endpoint(offline: bool, base_url: str | None, api_key: str | None = None) -> Iterator[Endpoint]:
    """The emulator in-process while the block runs (--offline), else the base URL and the key (a clear error
    without one); `run` and `ask` connect through this."""
    if not offline:
        yield Endpoint(resolve_base_url(base_url), resolve_api_key(api_key))
        return
    from docrouter.emulator import Emulator

    with Emulator() as emulator:
        yield Endpoint(emulator.base_url, emulator.api_key, emulator.base_url)


def models(config: RunConfig, api_key: str | None = None) -> Catalogue:
    """The model list `run` and `plan` price with: GET /models (no key needed; cached for an hour unless
    --refresh-models), --offline: the bundled snapshot."""
    if config.offline:
        return load_catalogue(None, cache_path=cache_dir() / "models-offline.json")
    base_url = resolve_base_url(config.base_url)
    if api_key is None:
        with contextlib.suppress(errors.ConfigError):
            api_key = resolve_api_key()
    ttl_s = 0.0 if config.refresh_models else 3600.0
    fetch = models_fetcher(base_url, api_key)
    return load_catalogue(fetch, cache_path=cache_dir() / cache_name(base_url), ttl_s=ttl_s)


def checked_model(config: RunConfig, catalogue: Catalogue) -> tuple[ModelInfo, MaxPrice]:
    """The model as the run prices it and its max price; ConfigError ("did you mean ...") for an unknown model,
    an engine it cannot use or a price it cannot bound."""
    model, ceiling = priced_model(answering_model(catalogue, config.model, config.fallback_models), config)
    check_forced_engine(None if config.engine == "auto" else config.engine, model)
    return model, ceiling


def dispatcher_for(
    client: OpenRouterClient, concurrency: int, budget_usd: float | None, max_attempts: int = RetryPolicy.max_attempts
) -> Dispatcher:
    """The dispatcher of a run (or of one `ask`): its slots, its budget, its retries."""
    return Dispatcher(
        client=client,
        limiter=AdaptiveLimiter(concurrency),
        budget=Budget(budget_usd),
        policy=RetryPolicy(max_attempts=max_attempts),
        rng=random.Random(),
    )


def load_ledger(config: RunConfig, read: Reader = read_dataset) -> Ledger:
    """DIR's ledger for this run's model and prompt, with the stored parses of the documents it may send."""
    return read_ledger(config.out, config.model, config.prompt_sha256, sends=may_send(config), read=read)


def may_send(config: RunConfig) -> Callable[[Ledger, str], bool]:
    """Whether the run may send a document, as far as DIR tells: in its shard and not settled by an earlier run."""

    def sends(ledger: Ledger, doc_id: str) -> bool:
        key = (doc_id, config.model, config.prompt_sha256)
        settled = not config.reprocess and (key in ledger.done or key in failures_kept(ledger, config))
        return not settled and (config.shards == 1 or _shard(doc_id, config.shards) == config.shard)

    return sends


@asynccontextmanager
async def open_session(
    config: RunConfig, *, api_key: str | None = None, progress: Progress | None = None, read: Reader = read_dataset
) -> AsyncIterator[Session]:
    """Start what a run needs (emulator when offline, catalogue, pooled client, store, DIR's ledger) and close it
    after. `read` reads DIR's datasets (the ledger, once, and the answers copies repeat)."""
    async with AsyncExitStack() as stack:
        place = stack.enter_context(endpoint(config.offline, config.base_url, api_key))
        catalogue = await asyncio.to_thread(models, config, None if config.offline else place.api_key)
        model, ceiling = checked_model(config, catalogue)
        reasoning = resolve_reasoning(config.reasoning, model, config.max_tokens)
        run_id = new_run_id()
        writer = stack.enter_context(lease.acquire(Path(config.out), config.shard, config.shards, run_id))
        limits = config.environment.pdf
        pdf_log = PdfLog(Path(config.out) / "logs" / f"{run_id}.log")
        text_workers = stack.enter_context(TextWorkers(limits, log=pdf_log))
        # Durability comes from the fsynced journal; the flush interval only sets how many Parquet parts appear.
        store = stack.enter_context(Store(Path(config.out), run_id, flush_seconds=30.0, extraction=config.extraction))
        ledger = await asyncio.to_thread(load_ledger, config, read)  # off the loop, outside the store's lock
        concurrency = Concurrency.of(config.concurrency, config.batch_size)
        http = await stack.enter_async_context(http_client(concurrency.request_slots))
        client = OpenRouterClient(
            http,
            base_url=place.base_url,
            api_key=place.api_key,
            referer=config.environment.referer,
            title=config.environment.title,
            price_capped=True,
        )
        dispatcher = dispatcher_for(client, concurrency.request_slots, config.budget_usd, config.max_attempts)
        writer.on_lost = lambda lost: setattr(dispatcher, "fatal", dispatcher.fatal or errors.ConfigError(lost))
        extracting = extracting_for(config, model.structured_outputs)
        options = RequestOptions(
            model=config.model,
            prompt=extracting.prompt_for(extracting.schema, config.prompt) if extracting else config.prompt,
            max_tokens=reasoning.max_tokens(config.max_tokens),
            wire_names={**DEFAULT_WIRE_NAMES, "pdf-text": config.pdf_text_wire_name},
            max_price=ceiling.wire(),
            response_format=extracting.response_format(extracting.schema) if extracting else None,
            reasoning=reasoning.parameter,
            temperature=config.temperature,
            system_prompt=config.system_prompt,
            provider=provider_preferences(config),
            fallback_models=config.fallback_models,
        )
        inspector = stack.enter_context(inspection_pool(limits, workers=concurrency.inspection_workers))
        fetcher = Fetcher(http, UrlCache(Path(config.out) / CACHE_DIR), config.environment.fetch)
        jobs = JobContext(
            run=RunColumns(
                run_id, config.model, config.prompt_sha256, extracting.schema.sha256 if extracting else None
            ),
            options=options,
            model=model,
            prices=PriceBook(ocr_fee_per_page=config.ocr_fee_per_page, ceiling=ceiling),
            dispatcher=dispatcher,
            limits=config.environment.split,
            stored_annotations=ledger.stored_parse,  # a lookup: no stage reads Parquet per document
            bodies_in_memory=concurrency.bodies_in_memory,
            images=ImageDecoder(stack.enter_context(image_pool(workers=concurrency.image_decodes))),
            named_files=named_files(config.sources),
            read_text=text_workers.extract,
            fetcher=fetcher if config.send_urls == "auto" else None,
            extracting=extracting,
            engine_forced=config.engine != "auto",
        )
        yield Session(
            config=config,
            ledger=ledger,
            read=read,
            router=make_router(config, model, jobs.prices, ledger),
            inspector=inspector,
            pdf_log=pdf_log,
            fetcher=fetcher,
            run_id=run_id,
            catalogue=catalogue,
            jobs=jobs,
            store=store,
            progress=progress or Progress(budget_usd=config.budget_usd),
            base_url=place.base_url,
            concurrency=concurrency,
            emulator_url=place.emulator_url,
        )


def extracting_for(config: RunConfig, structured_outputs: bool) -> Extracting | None:
    """With --schema: the schema, how the model takes it, and the prompt; None without."""
    if config.extraction is None:
        return None
    return Extracting(config.extraction, structured_outputs, config.prompt)


def extraction_row(result: Result) -> Extraction | None:
    """The extractions row of an ok results row extracted against a schema (its content is the object)."""
    if result.status != "ok" or result.schema_sha256 is None or result.content is None:
        return None
    return Extraction(
        run_id=result.run_id,
        doc_id=result.doc_id,
        path=result.path,
        model=result.model,
        prompt_sha256=result.prompt_sha256,
        schema_sha256=result.schema_sha256,
        values=json.loads(result.content),
    )


def http_client(concurrency: int) -> httpx.AsyncClient:
    """One pooled client for the whole run, sized to the concurrency."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(connect=15.0, read=300.0, write=120.0, pool=None)
    # Redirects are followed only for URL sources (API calls never ask to), at most MAX_REDIRECTS of them.
    return httpx.AsyncClient(limits=limits, timeout=timeout, max_redirects=MAX_REDIRECTS)


def named_files(sources: Iterable[str]) -> frozenset[str]:
    """The sources that name a file (not a folder), as discovery spells their paths."""
    return frozenset(
        str(Path(source).absolute()) for source in sources if not is_url(source) and not Path(source).is_dir()
    )


def check_sources(sources: Iterable[str], url_lists: Sequence[str] = ()) -> None:
    """A ConfigError naming the first source that does not exist or cannot be listed, or a bad --urls file."""
    for source in sources:
        if not is_url(source):
            check_source(source)
    check_url_lists(url_lists)


def check_run(config: RunConfig, *, key_block: str | None = None) -> None:
    """Run-level errors found before a run starts: a missing source, an unwritable DIR, no API key (a bad
    environment variable is found earlier, by Environment.read when the command line resolves its config)."""
    check_sources(config.sources, config.urls)
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise errors.ConfigError(f"cannot write to {out}: it is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise errors.ConfigError(f"cannot write to {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise errors.ConfigError(f"cannot write to {out}: permission denied")
    if not config.offline and key_block is None:
        resolve_api_key()


def discover(config: RunConfig) -> list[Document]:
    """Every file under the sources (not the output folder), typed by its bytes and hashed."""
    check_sources(config.sources)
    skip = [config.out] if config.out else []
    paths = [source for source in config.sources if not is_url(source)]
    return list(discover_documents(paths, include=config.include, exclude=config.exclude, skip=skip))


@contextmanager
def planned_urls(config: RunConfig) -> Iterator[tuple[list[Document], FetchTotals]]:
    """The URL sources fetched for `plan`: into DIR/_urls with --out (a later run then gets 304s), else into a
    temporary folder that lives as long as the block (inspection reads the bytes there)."""
    sources = url_sources(config.sources, config.urls)
    if not sources:
        yield [], FetchTotals()
        return
    with contextlib.ExitStack() as stack:
        folder = (
            Path(config.out) / CACHE_DIR if config.out else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        )
        yield fetch_outside_run(sources, folder, config.environment.fetch)


def has_urls(config: RunConfig) -> bool:
    """Whether the run has URL sources (on the command line or in --urls files)."""
    return bool(config.urls) or any(is_url(source) for source in config.sources)


async def fetch_urls(session: Session) -> list[Document]:
    """The URL sources as documents: fetched (or unchanged since the last run) into DIR/_urls, or failure rows."""
    assert session.fetcher is not None
    return await session.fetcher.documents(url_sources(session.config.sources, session.config.urls))


async def restore_evicted(session: Session, selection: Selection) -> Selection:
    """The selection with the bytes of URL documents to process fetched again where the cache evicted them."""
    assert session.fetcher is not None
    fresh = await session.fetcher.restored(selection.fresh)
    return dataclasses.replace(selection, fresh=fresh)


def evict_urls(session: Session) -> int:
    """Free the URL cache down to --url-cache-size, oldest answered bytes first; returns the bytes freed."""
    assert session.fetcher is not None
    answered = {doc_id for doc_id, _, _ in session.store.done_keys()}
    return session.fetcher.cache.evict(session.config.url_cache_size, answered)


def failures_kept(ledger: Ledger, config: RunConfig) -> frozenset[Key]:
    """The ledger's terminal failures a run leaves alone (none with --retry-failed or --reprocess)."""
    return frozenset() if config.retry_failed or config.reprocess else ledger.failed


def select_from(documents: Iterable[Document], ledger: Ledger, config: RunConfig) -> Selection:
    """`select` against what DIR held at the start (plan and run call this one function)."""
    return select(documents, set(ledger.done), config, set(failures_kept(ledger, config)), ledger.answered)


def select(
    documents: Iterable[Document],
    done: set[Key],
    config: RunConfig,
    failed: set[Key] | None = None,
    answered: frozenset[tuple[str, str]] | None = None,
) -> Selection:
    """Drop documents already answered for this (model, prompt), and those whose last row is a terminal failure
    (`failed`); keep one path per content, the rest copies. With `answered` ((doc_id, path) pairs that have an ok
    row, under any source root: a moved archive is not new), a new path of content an earlier run answered is a
    copy: it gets its own row, at cost 0."""
    kept: list[Document] = []
    earlier: list[Document] = []
    settled: list[tuple[Document, str]] = []
    for doc in documents:
        if not in_shard(doc, config.shard, config.shards):
            continue
        why = _settled(doc, (doc.doc_id, config.model, config.prompt_sha256), done, failed or set(), config)
        if why == "already_done" and answered is not None and (doc.doc_id, doc.rel_path) not in answered:
            earlier.append(doc)
        elif why:
            settled.append((doc, why))
        else:
            kept.append(doc)
    fresh, repeats = split_copies(kept)
    counts = {why: sum(1 for _, w in settled if w == why) for why in ("already_done", "known_failures")}
    return Selection(fresh=fresh, copies=[*earlier, *repeats], settled=tuple(settled), **counts)


def split_copies(documents: Iterable[Document]) -> tuple[list[Document], list[Document]]:
    """The first path of each content (and every unsupported file), and the other paths: copies, answered once
    (`plan` and `run` tell copies apart with this one function)."""
    first: list[Document] = []
    copies: list[Document] = []
    seen: set[str] = set()
    for doc in documents:
        if doc.kind is not None and doc.doc_id in seen:
            copies.append(doc)
            continue
        if doc.kind is not None:
            seen.add(doc.doc_id)
        first.append(doc)
    return first, copies


def make_router(config: RunConfig, model: ModelInfo, prices: PriceBook, ledger: Ledger) -> Router:
    """The run's (or plan's) routing inputs, fixed at its start from the flags and DIR's ledger."""
    return Router(
        model=model,
        prices=prices,
        forced=forced_engine(config.engine),
        prompt_chars=config.instruction_chars,
        # the request's cap: the answer's plus the reasoning budget an effort adds (counted in full at most)
        max_tokens=resolve_reasoning(config.reasoning, model, config.max_tokens).max_tokens(config.max_tokens),
        answer_tokens=answer_length(config, ledger).tokens,
        annotated=ledger.annotated,
    )


def answer_length(config: RunConfig, ledger: Ledger) -> AnswerLength:
    """The expected answer for this model and prompt: DIR's answers, else the user's history, with the prior."""
    user = read_user_history(config.model, config.prompt_sha256)
    return expected_answer(config.prompt, config.max_tokens, ledger.answer_tokens, user)


def _settled(doc: Document, key: Key, done: set[Key], failed: set[Key], config: RunConfig) -> str | None:
    """Why an earlier run settled this document ("already_done" / "known_failures"), or None."""
    if config.reprocess:
        return None
    if doc.kind is not None and key in done:
        return "already_done"
    return "known_failures" if key in failed else None


def in_shard(doc: Document, shard: int, shards: int) -> bool:
    """Shards split by content hash, so copies of one file always land in the same shard."""
    return shards == 1 or _shard(doc.doc_id or doc.path, shards) == shard


def _shard(key: str, shards: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % shards


def inspect(
    documents: Sequence[Document],
    pool: WorkerPool[Document, Inspection] | None = None,
    named: frozenset[str] = frozenset(),
    log: PdfLog | None = None,
) -> list[tuple[Document, Inspection | None]]:
    """Inspect the supported documents in isolated worker processes (the run's `pool` when given); others
    pass through uninspected. What the PDF libraries said about a file goes to `log`, not into the row."""
    supported = [d for d in documents if d.kind is not None]
    by_id = {id(d): d for d in supported}
    inspected: dict[int, Inspection] = {}
    for doc, inspection in inspect_isolated(supported, pool):
        if log is not None and inspection.notes:
            log.record(doc.path, inspection.notes)
        inspection = dataclasses.replace(inspection, notes=())
        inspected[id(by_id.get(id(doc), doc))] = _unless_changed(doc, inspection, named)
    return [(d, inspected.get(id(d))) for d in documents]


def _unless_changed(doc: Document, inspection: Inspection, named: frozenset[str]) -> Inspection:
    """A failed inspection of a file that changed since discovery says so (changed, not corrupt)."""
    if inspection.ok:
        return inspection  # the call stage checks the bytes again before sending
    changed = still_discovered(doc, named)
    if changed is None:
        return inspection
    return dataclasses.replace(inspection, error_type=changed.error_type, error_message=changed.message)


def route(session: Session, pairs: Sequence[tuple[Document, Inspection | None]]) -> list[Job | Unsent]:
    """Choose an engine and an estimate per document with the run's fixed Router (`plan` uses the same one)."""
    assert session.router is not None
    jobs = [job_for(doc, inspection, session.router.route(doc, inspection)) for doc, inspection in pairs]
    session.costs += job_costs(jobs, session.router)
    return jobs


async def call(session: Session, routed: Sequence[Job | Unsent], copied_ids: set[str]) -> list[Result]:
    """Answer every job (concurrently, bounded by the limiter), recording each row before moving on.

    A job this run already took up (a retried batch) is skipped: it was recorded, or is being answered.
    """
    fresh = [job for job in routed if _claim(session, job.document)]

    async def one(job: Job | Unsent) -> Result | None:
        async with session.unrecorded:
            annotations: list[Annotation] = []
            if isinstance(job, Unsent):
                result = unsent_row(job, session.jobs.run)
            else:
                if stopping.interrupted(session.dispatcher.fatal):
                    return None  # a signal stopped the run: no row (the rerun sends it), no work to prepare it
                result, annotations = await answer(job, session.jobs)
            if result.error_type == stopping.Interrupted.error_type and result.cost_usd == 0:
                return None  # never sent (the signal came while it was prepared): no row either
            await session.recorder.record(result, annotations, extraction_row(result))
        if result.status == "ok" and result.attempts:
            session.paid_answers.append(result.completion_tokens)
        session.progress.add(result)
        if job.document.doc_id in copied_ids:
            session.copy_sources[job.document.doc_id] = result
        return result

    return [result for result in await asyncio.gather(*(one(job) for job in fresh)) if result is not None]


def _claim(session: Session, doc: Document) -> bool:
    """True the first time this run takes up `doc` (one row per file per run), False ever after."""
    key = (doc.source_root, doc.rel_path)
    if key in session.claimed:
        return False
    session.claimed.add(key)
    return True


def write_copies(session: Session, copies: Sequence[Document]) -> list[Result]:
    """A row for each extra path of content answered in this run or an earlier one (same answer, cost 0)."""
    written = []
    config = session.config
    earlier_ids = {doc.doc_id for doc in copies if doc.doc_id not in session.copy_sources}
    earlier = answers_of(session.store.out_dir, earlier_ids, config.model, config.prompt_sha256, read=session.read)
    for doc in copies:
        original = session.copy_sources.get(doc.doc_id) or earlier.get(doc.doc_id)
        if original is None:
            continue  # its content was not answered (failed, over budget): the copy waits for the next run
        result = copy_row(original, doc, session.run_id)
        session.store.record(result, (), extraction_row(result))
        session.progress.add(result)
        written.append(result)
    return written


def remember_answer_lengths(session: Session) -> None:
    """Add this run's answer lengths to the user's history, for the next plan's and run's estimates."""
    remember_answers(session.config.model, session.config.prompt_sha256, session.paid_answers)


def write_summary(out: str, summary: dict[str, Any]) -> Path:
    """The run's summary as DIR/_runs/<run_id>.json (atomic), for audits and benchmarks."""
    folder = Path(out) / "_runs"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{summary['run_id']}.json"
    temp = target.with_suffix(".json.tmp")
    temp.write_text(json.dumps(summary, indent=1, sort_keys=True))
    os.replace(temp, target)
    return target
