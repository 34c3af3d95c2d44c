"""What a backfill shows when it ends: per shard state and totals, money spent vs budget vs estimate, the savings
against the naive rules, the top failures with their paths, where the results are (docrouter.run.summary)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

import pandas as pd
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

from docrouter.run.summary import (
    Costs,
    backfill_digest,
    read_run_summaries,
    summary_markdown,
    top_failures,
)

PAGE = 200  # PREFECT_SERVER_API_DEFAULT_LIMIT: the most rows one filter call returns
# flows/reporting.py describes each run's summary artifact as "run <docrouter run id>".
_RUN_DESCRIPTION = re.compile(r"^run (\S+)$")


@dataclass(frozen=True)
class ShardRun:
    """One child flow run of a backfill, as the parent last saw it."""

    shard: int
    flow_run_id: UUID
    flow_run_name: str
    state: str
    final: bool
    message: str = ""
    run_id: str | None = None  # docrouter's run id: the `run_id` column of the rows this shard wrote

    @property
    def completed(self) -> bool:
        return self.state == "Completed"


def shard_budgets(budget: float | None, shards: int) -> list[float | None]:
    """An even share of `budget` per shard, rounded down to a micro-dollar so the shares never add up to more."""
    if budget is None:
        return [None] * shards
    share = math.floor(budget * 1_000_000 / shards) / 1_000_000
    return [share] * shards


async def child_run_ids(client: PrefectClient, flow_run_ids: Sequence[UUID]) -> dict[UUID, str]:
    """Which docrouter run id each child wrote under, read from its summary artifact (absent if it never got there)."""
    found: dict[UUID, str] = {}
    for page in pages(flow_run_ids):
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["docrouter-summary"]), flow_run_id=ArtifactFilterFlowRunId(any_=page)
            ),
            limit=PAGE,
        )
        for artifact in artifacts:
            match = _RUN_DESCRIPTION.match(artifact.description or "")
            if match and artifact.flow_run_id is not None:
                found[artifact.flow_run_id] = match.group(1)
    return found


def pages(ids: Sequence[UUID]) -> list[list[UUID]]:
    """`ids` in chunks the API serves in one call; an explicit limit also keeps newer FastAPI from refusing null."""
    return [list(ids[i : i + PAGE]) for i in range(0, len(ids), PAGE)]


def read_known_failures(out: str, run_ids: Sequence[str]) -> int:
    """How many terminal failures of earlier runs the shards left alone, from each run's DIR/_runs summary."""
    return sum(int(run.get("known_failures", 0)) for run in read_run_summaries(out, run_ids))


def backfill_summary(
    shard_runs: Sequence[ShardRun],
    rows: pd.DataFrame,
    budget: float | None,
    known_failures: int = 0,
    *,
    runs: Sequence[dict[str, Any]] = (),
    out: str = "",
) -> dict[str, Any]:
    """The backfill's totals as plain data: per shard, by status and engine, money (spent, and the estimates
    the shards' run summaries `runs` recorded), the commonest failures with their paths, where the results are."""
    shares = shard_budgets(budget, len(shard_runs))
    estimates = [Costs.from_dict(run["estimate"]) for run in runs if run.get("estimate") is not None]
    return {
        "shards": [_shard_line(run, rows[rows["run_id"] == run.run_id], shares[i]) for i, run in enumerate(shard_runs)],
        "documents": len(rows),
        "known_failures": known_failures,
        "by_status": _counts(rows["status"]),
        "by_engine": _counts(rows.loc[rows["status"] == "ok", "engine"]),
        "spent_usd": round(float(rows["cost_usd"].fillna(0).sum()), 6),
        "budget_usd": budget,
        "estimate": asdict(sum(estimates, Costs())) if estimates else None,
        "model": next((run.get("model") for run in runs), None),
        "default_engine": next((run.get("default_engine") for run in runs), None),
        "top_failures": top_failures(rows),
        "out": out,
        "run_ids": [run.run_id for run in shard_runs if run.run_id],
        "unfinished": unfinished_message(shard_runs),
    }


def _shard_line(run: ShardRun, rows: pd.DataFrame, share: float | None) -> dict[str, Any]:
    return {
        "shard": run.shard,
        "flow_run": run.flow_run_name,
        "state": run.state,
        "documents": len(rows),
        "ok": int((rows["status"] == "ok").sum()),
        "failed": int((rows["status"] == "failed").sum()),
        "spent_usd": round(float(rows["cost_usd"].fillna(0).sum()), 6),
        "budget_usd": share,
    }


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.fillna("none").value_counts().sort_index().items()}


def unfinished_message(shard_runs: Sequence[ShardRun]) -> str | None:
    """One line naming every shard that did not complete and why; None when all completed."""
    bad = [run for run in shard_runs if not run.completed]
    if not bad:
        return None
    parts = []
    for run in bad:
        why = f"{run.state}: {run.message}" if run.message else run.state
        parts.append(f"shard {run.shard} ({run.flow_run_name}) {why if run.final else f'still {why} at the timeout'}")
    return (
        f"{len(bad)} of {len(shard_runs)} shards did not complete: {'; '.join(parts)}. "
        "Rows already written are kept; run the backfill again to finish (answered documents are skipped)."
    )


async def publish_backfill_summary(summary: dict[str, Any]) -> None:
    """A per-shard table and a markdown report of totals, money spent vs budget and top failures."""
    await acreate_table_artifact(
        table=summary["shards"], key="docrouter-backfill-shards", description="docrouter backfill: shards"
    )
    await acreate_markdown_artifact(markdown=backfill_markdown(summary), key="docrouter-backfill")


def backfill_markdown(summary: dict[str, Any]) -> str:
    """The summary as a Markdown report (docrouter.run.summary renders it, as it renders each run's)."""
    return summary_markdown(backfill_digest(summary))
