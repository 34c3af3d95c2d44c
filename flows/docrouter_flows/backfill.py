"""A backfill as Prefect flow runs: one run of the shard deployment per content-hash shard, on the work pool.

Prefect does the scheduling: the parent only creates the child runs (`run_deployment`, timeout 0), waits for
them with a bounded poll, and reports. Whichever workers poll the pool pick the children up, so shards run on
several machines at once; shards split by content hash are disjoint, so the union of outputs is exactly-once.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments.flow_runs import arun_deployment
from prefect.runtime import flow_run as current_run

from docrouter.run.config import RUN_DEFAULTS, checked_number, config_from_parameters
from docrouter.run.summary import read_run_rows, read_run_summaries
from docrouter_flows.backfill_report import (
    PAGE,
    ShardRun,
    backfill_summary,
    child_run_ids,
    pages,
    publish_backfill_summary,
    read_known_failures,
    shard_budgets,
    unfinished_message,
)
from docrouter_flows.run import docrouter_run

SHARD_DEPLOYMENT = "docrouter-run/backfill-shard"
_PASSED_ON = frozenset(inspect.signature(docrouter_run.fn).parameters) - {"shard", "shards", "budget", "show_progress"}


@flow(name="docrouter-backfill", log_prints=False)
async def docrouter_backfill(
    sources: list[str],
    out: str,
    shards: int = 4,
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
    deployment_name: str = SHARD_DEPLOYMENT,
    poll_seconds: float = 5.0,
    timeout_hours: float = 24.0,
) -> dict[str, Any]:
    """Run `shards` child flow runs of `deployment_name`, each with an even share of `budget`; fail if any does."""
    # The first statement: locals() are exactly this flow's parameters. Each shard gets the ones the shard
    # flow takes, except its own shard, shard count and budget share (shard_parameters sets those).
    child = {name: value for name, value in locals().items() if name in _PASSED_ON}
    check_parameters(child, budget, shards)
    checked_number("poll_seconds", poll_seconds, 0.1, 3600.0)
    checked_number("timeout_hours", timeout_hours, 0.001, 24.0 * 365)
    started = await start_shards(deployment_name, child, budget, shards)
    async with get_client() as client:
        finished = await wait_for_shards(client, started, poll_seconds, timeout_hours * 3600)
        shard_runs = await describe_shards(client, finished)
    run_ids = [s.run_id for s in shard_runs if s.run_id]
    rows, known = read_run_rows(out, run_ids), read_known_failures(out, run_ids)
    summary = backfill_summary(
        shard_runs, rows, budget, known_failures=known, runs=read_run_summaries(out, run_ids), out=out
    )
    await publish_backfill_summary(summary)
    problem = unfinished_message(shard_runs)
    if problem:
        raise ShardsFailed(problem)
    return summary


def check_parameters(child: dict[str, Any], budget: float | None, shards: int) -> None:
    """Fail before creating any child run when the children would all fail on their parameters."""
    config_from_parameters({**child, "budget": budget, "shard": 0, "shards": shards})


def shard_parameters(child: dict[str, Any], shard: int, shards: int, budget: float | None) -> dict[str, Any]:
    """One child's parameters: the shared ones plus its shard and its share of the budget (never a key)."""
    return {**child, "shard": shard, "shards": shards, "budget": budget}


async def start_shards(deployment_name: str, child: dict[str, Any], budget: float | None, shards: int) -> list[FlowRun]:
    """Create one scheduled flow run per shard; the idempotency key stops a retried parent from doubling a shard."""
    logger = get_run_logger()
    parent_id, parent_name = current_run.get_id(), current_run.get_name()
    started = []
    for shard, share in enumerate(shard_budgets(budget, shards)):
        run = await arun_deployment(
            deployment_name,
            parameters=shard_parameters(child, shard, shards, share),
            flow_run_name=f"{parent_name}-shard-{shard}-of-{shards}",
            tags=["docrouter-backfill"],
            idempotency_key=f"{parent_id}-shard-{shard}-of-{shards}",
            timeout=0,
        )
        logger.info("shard %d/%d: created flow run %s", shard, shards, run.name)
        started.append(run)
    return started


async def wait_for_shards(
    client: PrefectClient, runs: list[FlowRun], poll_seconds: float, timeout_seconds: float
) -> list[FlowRun]:
    """The children's latest state once all are final, or when the time is up (unfinished ones stay as they are)."""
    ids = [run.id for run in runs]
    deadline = time.monotonic() + timeout_seconds
    progress_id = await acreate_progress_artifact(
        progress=0.0, key="docrouter-backfill-progress", description=f"0 of {len(ids)} shards finished"
    )
    latest, reported = runs, 0
    while True:
        latest = await read_runs(client, ids)
        done = sum(1 for run in latest if run.state is not None and run.state.is_final())
        if done != reported:
            reported = done
            description = f"{done} of {len(ids)} shards finished"
            await aupdate_progress_artifact(progress_id, progress=100.0 * done / len(ids), description=description)
            get_run_logger().info(description)
        if done == len(ids) or time.monotonic() >= deadline:
            return latest
        await asyncio.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))


async def read_runs(client: PrefectClient, ids: list[UUID]) -> list[FlowRun]:
    """The flow runs `ids`, in that order (read by pages: the API answers at most PAGE rows per call)."""
    by_id: dict[UUID, FlowRun] = {}
    for page in pages(ids):
        found = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=page)), limit=PAGE)
        by_id |= {run.id: run for run in found}
    return [by_id[i] for i in ids]


async def describe_shards(client: PrefectClient, runs: list[FlowRun]) -> list[ShardRun]:
    """Each child as a plain value: shard, state, state message and the docrouter run id it wrote under."""
    run_ids = await child_run_ids(client, [run.id for run in runs])
    return [
        ShardRun(
            shard=int(run.parameters.get("shard", index)),
            flow_run_id=run.id,
            flow_run_name=run.name,
            state=(run.state.name or "Unknown") if run.state else "Unknown",
            final=bool(run.state and run.state.is_final()),
            message=(run.state.message or "") if run.state else "",
            run_id=run_ids.get(run.id),
        )
        for index, run in enumerate(runs)
    ]


class ShardsFailed(Exception):
    """Some shards did not complete; the others' rows are written, and a rerun skips what is already answered."""
