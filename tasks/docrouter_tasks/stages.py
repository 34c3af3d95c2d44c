"""One task per stage and per batch: Prefect's per-task overhead stays far below the work it wraps."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from docrouter.call.rows import Job, Unsent
from docrouter.discover.documents import Document
from docrouter.inspect.inspection import Inspection
from docrouter.results import Result
from docrouter.run import session as runs
from docrouter.run.config import RunConfig

# Results are small or in-memory objects shared with the flow; nothing here is worth persisting or caching:
# the store's done-set is the idempotency mechanism (a rerun skips what is already answered).
_TASK: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False, "log_prints": False}


@task(name="discover", **_TASK)
async def discover(config: RunConfig) -> list[Document]:
    """Walk and hash the sources off the event loop."""
    return await asyncio.to_thread(runs.discover, config)


@task(name="fetch-urls", **_TASK)
async def fetch_urls(session: runs.Session) -> list[Document]:
    """Fetch the URL sources over the run's client (conditional GETs for those fetched before)."""
    return await runs.fetch_urls(session)


@task(name="inspect-batch", retries=1, retry_delay_seconds=2, task_run_name="inspect-{label}", **_TASK)
async def inspect(
    session: runs.Session, documents: Sequence[Document], label: str
) -> list[tuple[Document, Inspection | None]]:
    """Inspect one batch in the run's worker processes (pypdf work never blocks the event loop)."""
    return await asyncio.to_thread(
        runs.inspect, documents, session.inspector, session.jobs.named_files, session.pdf_log
    )


@task(name="route-batch", task_run_name="route-{label}", **_TASK)
def route(session: runs.Session, pairs: Sequence[tuple[Document, Inspection | None]], label: str) -> list[Job | Unsent]:
    """Choose engine and estimate per document (pure, fast)."""
    return runs.route(session, pairs)


# No task retries: every request already retries inside (Retry-After, backoff) and every per-document failure
# is that document's row, so what escapes is run-level (disk full, a bug), where sending the batch again
# cannot help and could pay twice. runs.call also skips documents this run has already taken up.
@task(name="call-batch", task_run_name="call-{label}", **_TASK)
async def call(session: runs.Session, jobs: Sequence[Job | Unsent], copied_ids: set[str], label: str) -> list[Result]:
    """Send a batch once; HTTP retries honour Retry-After inside, and no document is taken up twice."""
    return await runs.call(session, jobs, copied_ids)
