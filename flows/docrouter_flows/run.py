"""The docrouter run as a Prefect flow: discover -> inspect -> route -> call -> write."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any, TypeVar, cast
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.states import Cancelled, Failed
from prefect.utilities.annotations import quote

from docrouter.discover.documents import Document
from docrouter.errors import RunFatal
from docrouter.redaction import protect
from docrouter.run import session as runs
from docrouter.run import stopping
from docrouter.run.config import RUN_DEFAULTS, RunConfig, config_from_parameters
from docrouter.run.environment import Environment
from docrouter.run.pilot import read_forecast
from docrouter.run.progress import Display, Progress
from docrouter.run.summary import read_run_rows, top_failures
from docrouter_flows.reporting import publish_progress, publish_summary, run_summary, showing
from docrouter_flows.secrets import load_api_key
from docrouter_tasks import stages

T = TypeVar("T")


@flow(name="docrouter-run", log_prints=False)
async def docrouter_run(
    sources: list[str],
    out: str,
    model: str = RUN_DEFAULTS["model"],
    prompt: str = RUN_DEFAULTS["prompt"],
    prompt_file: str | None = None,
    engine: str = RUN_DEFAULTS["engine"],
    budget: float | None = RUN_DEFAULTS["budget"],
    concurrency: int = RUN_DEFAULTS["concurrency"],
    max_attempts: int = RUN_DEFAULTS["max_attempts"],
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    reprocess: bool = RUN_DEFAULTS["reprocess"],
    retry_failed: bool = RUN_DEFAULTS["retry_failed"],
    offline: bool = RUN_DEFAULTS["offline"],
    max_tokens: int = RUN_DEFAULTS["max_tokens"],
    base_url: str | None = RUN_DEFAULTS["base_url"],
    key_block: str | None = None,
    batch_size: int = RUN_DEFAULTS["batch_size"],
    shard: int = RUN_DEFAULTS["shard"],
    shards: int = RUN_DEFAULTS["shards"],
    ocr_fee: float = RUN_DEFAULTS["ocr_fee"],
    pdf_text_name: str = RUN_DEFAULTS["pdf_text_name"],
    price_headroom: float = RUN_DEFAULTS["price_headroom"],
    max_price: list[float] | None = RUN_DEFAULTS["max_price"],
    refresh_models: bool = RUN_DEFAULTS["refresh_models"],
    urls: list[str] | None = None,
    send_urls: str = RUN_DEFAULTS["send_urls"],
    url_cache_size: int = RUN_DEFAULTS["url_cache_size"],
    extraction_schema: dict[str, Any] | str | None = None,
    reasoning: str = RUN_DEFAULTS["reasoning"],
    temperature: float = RUN_DEFAULTS["temperature"],
    system_prompt: str | None = RUN_DEFAULTS["system_prompt"],
    system_prompt_file: str | None = None,
    data_collection: str | None = RUN_DEFAULTS["data_collection"],
    zdr: bool = RUN_DEFAULTS["zdr"],
    provider_order: list[str] | None = None,
    provider_sort: str | None = RUN_DEFAULTS["provider_sort"],
    fallback_models: list[str] | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Answer every document under `sources` and in the `urls` list files, and write results to `out` (the API
    key never is a parameter; keep signed URLs in list files, not in `sources`)."""
    # The first statement: locals() are exactly the parameters. The environment is this process's (a worker's).
    config = config_from_parameters(locals(), Environment.read(os.environ))
    stopper = stopping.active()  # the CLI's: Ctrl-C and SIGTERM stop the run cleanly (a worker keeps Prefect's)
    if stopper is None:
        return await _run(config, key_block, show_progress, None)
    with stopper.handling():
        return await _run(config, key_block, show_progress, stopper)


async def _run(
    config: RunConfig, key_block: str | None, show_progress: bool, stopper: stopping.Stopper | None
) -> dict[str, Any]:
    timings = {"flow_started": time.time()}
    api_key = None if config.offline else await load_api_key(key_block)
    if api_key is not None:
        protect(api_key)  # a redaction filter on every log handler, in case anything ever echoes the key
    documents = await stages.discover(config)
    timings["discovered"] = time.time()
    if stopper is not None and stopper.requested:
        return _interrupted(stopper, "before anything was sent")
    budget = config.budget_usd
    progress = Progress(budget_usd=budget, forecast_usd=read_forecast(config.out, config))
    display = Display(progress, sys.stderr) if show_progress else None
    async with runs.open_session(config, api_key=api_key, progress=progress) as session:
        stopped = stopping.wake_on_stop(stopper, lambda: _stop_sending(session, stopper))
        if runs.has_urls(config):
            documents += await stages.fetch_urls(_as_is(session))
        selection = runs.select_from(documents, session.ledger, config)
        selection = await runs.restore_evicted(session, selection)
        progress.already_done, progress.known_failures = selection.already_done, selection.known_failures
        progress.total = (
            len(selection.fresh) + len(selection.copies) + selection.already_done + selection.known_failures
        )
        get_run_logger().info(
            "run %s: %d files, %d to process, %d already done, %d known failures unchanged",
            session.run_id,
            len(documents),
            len(selection.fresh),
            selection.already_done,
            selection.known_failures,
        )
        async with showing(progress, display, get_run_logger()):
            grace_s = config.environment.stop_grace_s
            progress_id = await stopping.finish_or_stop(process_batches(session, selection), stopped, grace_s)
            runs.write_copies(session, selection.copies)
        runs.evict_urls(session)
        runs.remember_answer_lengths(session)
        timings["written"] = time.time()
        if progress_id is not None:  # finished, not stopped: the artifact ends at the true final numbers
            await publish_progress(progress_id, session, 100.0)
        summary = run_summary(session, selection) | {"timings": timings}
    summary["top_failures"] = top_failures(read_run_rows(config.out, [summary["run_id"]]))
    runs.write_summary(config.out, summary)
    await publish_summary(summary)
    if stopper is not None and stopper.requested:
        return _interrupted(stopper, f": {summary['processed']} documents recorded, ${summary['spent_usd']:.4f} spent")
    if session.dispatcher.fatal is not None:
        # A Failed state, not a raise: Prefect marks the run failed without logging a traceback for a 401/402,
        # and the caller still gets RunStopped (the state's data) raised from the call.
        stopped_by = RunStopped(session.dispatcher.fatal)
        return Failed(message=str(stopped_by), data=stopped_by)  # type: ignore[return-value]
    return summary


def _stop_sending(session: runs.Session, stopper: stopping.Stopper | None) -> None:
    """At the signal: nothing more is sent (requests in flight finish, and their answers are recorded)."""
    if stopper is not None and session.dispatcher.fatal is None:
        session.dispatcher.fatal = stopper.error()


def _interrupted(stopper: stopping.Stopper, detail: str) -> dict[str, Any]:
    """A Cancelled state: Prefect ends the run cancelled, and the caller gets the Interrupted error raised."""
    error = stopper.error(detail)
    return Cancelled(message=error.message, data=error)  # type: ignore[return-value]


async def process_batches(session: runs.Session, selection: runs.Selection) -> UUID | None:
    """Batches flow through inspect -> route -> call, inspection running ahead of the calls.

    A window of batches is in flight and a few of them are inspected at once: session.concurrency holds both
    bounds and why (docrouter/run/concurrency.py).
    """
    copied_ids = {doc.doc_id for doc in selection.copies}
    size = session.config.batch_size
    batches = [selection.fresh[i : i + size] for i in range(0, len(selection.fresh), size)]
    window = asyncio.Semaphore(session.concurrency.batch_window)
    inspecting = asyncio.Semaphore(session.concurrency.inspecting_batches)
    progress_id = await publish_progress(None, session, 0.0)

    async def one(index: int, batch: list[Document]) -> None:
        label = f"{index + 1}-of-{len(batches)}"
        async with window:
            if stopping.interrupted(session.dispatcher.fatal):
                return  # stopped by a signal: a batch not sent yet is left for the rerun
            async with inspecting:
                pairs = await stages.inspect(_as_is(session), _as_is(batch), label)
            if stopping.interrupted(session.dispatcher.fatal):
                return
            jobs = stages.route(_as_is(session), _as_is(pairs), label)
            rows = await stages.call(_as_is(session), _as_is(jobs), _as_is(copied_ids), label)
        # Prefect keeps every task's return value until the flow ends (to link results to task runs): emptied
        # hand-offs keep a long run's memory flat instead of holding every inspection and answer to the end.
        for handed_off in (pairs, jobs, rows):
            handed_off.clear()
        await publish_progress(progress_id, session, 100.0 * (index + 1) / max(1, len(batches)))

    await asyncio.gather(*(one(i, batch) for i, batch in enumerate(batches)))
    return progress_id


class RunStopped(Exception):
    """The run stopped sending after a run-fatal error (401/402); every finished row is written."""

    def __init__(self, cause: RunFatal) -> None:
        super().__init__(f"run stopped: {cause.message}")
        self.cause = cause


def _as_is(value: T) -> T:
    """Pass a parameter to a task without Prefect walking it for futures (large batches, live sessions)."""
    return cast(T, quote(value))
