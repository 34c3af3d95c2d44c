"""What a run shows in the Prefect UI: a progress artifact while it runs, a summary artifact at the end."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)

from docrouter.run.config import run_preferences
from docrouter.run.planning import default_engine
from docrouter.run.progress import Display, Progress
from docrouter.run.session import Selection, Session
from docrouter.run.summary import run_digest, summary_markdown


def run_summary(session: Session, selection: Selection) -> dict[str, Any]:
    """The run's totals as plain data (returned by the flow, printed by the CLI, published as artifacts)."""
    progress, budget = session.progress, session.dispatcher.budget
    fatal = session.dispatcher.fatal
    return {
        "run_id": session.run_id,
        "out": session.config.out,
        "model": session.config.model,
        "reasoning": session.config.reasoning,  # as asked; what was sent is `reasoning_sent`
        "reasoning_sent": session.jobs.options.reasoning,
        "request_max_tokens": session.jobs.options.max_tokens,  # --max-tokens plus the reasoning budget
        "preferences": run_preferences(session.config),
        "documents": progress.total,
        "processed": progress.finished,
        "already_done": selection.already_done,
        "known_failures": selection.known_failures,
        "by_status": dict(progress.statuses),
        "by_engine": dict(progress.engines),
        "failures": dict(progress.errors),
        "extractions": dict(progress.extractions),  # with --schema: valid / repaired / invalid
        "spent_usd": round(budget.spent_usd, 6),
        "budget_usd": budget.cap_usd,
        "requests_sent": session.dispatcher.requests_sent,
        "max_in_flight": session.dispatcher.limiter.max_in_flight,
        "stopped": fatal.message if fatal else None,
        "pdf_notes": session.pdf_log.summary() if session.pdf_log else None,
        "fee_ratios": dict(budget.ratios),  # fee kind -> billed / configured price, as learned from bills
        "price_notes": list(budget.notes),
        "url_fetches": dataclasses.asdict(session.fetcher.totals) if session.fetcher else None,
        "estimate": dataclasses.asdict(session.costs),  # routed (expected, at most) and the two naive rules
        "default_engine": default_engine(session.router.model) if session.router else None,
    }


LOG_EVERY_S = 10.0


@asynccontextmanager
async def showing(progress: Progress, display: Display | None, logger: Any) -> AsyncIterator[None]:
    """While the body runs: the display redrawn every second, the same line in the run's logs every 10 s;
    after it, the final figures in both."""

    async def tick() -> None:
        last_log = progress.clock()
        while True:
            await asyncio.sleep(1.0)
            if display is not None:
                display.tick()
            if progress.clock() - last_log >= LOG_EVERY_S:
                last_log = progress.clock()
                logger.info("progress: %s", progress.line())

    ticker = asyncio.create_task(tick())
    try:
        yield
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        if display is not None:
            display.close()
        logger.info("progress: %s", progress.line())


async def publish_progress(artifact_id: UUID | None, session: Session, percent: float) -> UUID | None:
    """Create the progress artifact (first call) or move it forward; one API call per batch."""
    description = session.progress.line()
    if artifact_id is None:
        return await acreate_progress_artifact(progress=percent, key="docrouter-progress", description=description)
    await aupdate_progress_artifact(artifact_id, progress=percent, description=description)
    return artifact_id


async def publish_summary(summary: dict[str, Any]) -> None:
    """A table of counts (its description names the docrouter run id) and the Markdown summary (run.summary)."""
    rows = [{"what": f"status {k}", "count": v} for k, v in sorted(summary["by_status"].items())]
    rows += [{"what": f"engine {k}", "count": v} for k, v in sorted(summary["by_engine"].items())]
    rows += [{"what": f"failure {k}", "count": v} for k, v in sorted(summary["failures"].items())]
    rows += [{"what": f"extraction {k}", "count": v} for k, v in sorted(summary["extractions"].items())]
    await acreate_table_artifact(table=rows, key="docrouter-summary", description=f"run {summary['run_id']}")
    await acreate_markdown_artifact(markdown=summary_markdown(run_digest(summary)), key="docrouter-run")
