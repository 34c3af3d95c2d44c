"""What a backfill shows when it ends: per shard state and totals, money spent vs budget, the top failures."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pandas as pd
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

from docrouter.store.failures import commonest_failures
from docrouter.store.store import read_results

ROW_COLUMNS = ["run_id", "path", "status", "engine", "error_type", "error_message", "cost_usd"]
TOP_FAILURES = 5
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


def read_backfill_rows(out: str, run_ids: Sequence[str]) -> pd.DataFrame:
    """The result rows the given runs wrote under `out` (only the columns the summary needs)."""
    if not run_ids or not Path(out).is_dir():
        return pd.DataFrame({column: pd.Series(dtype=object) for column in ROW_COLUMNS})
    rows = read_results(Path(out), columns=ROW_COLUMNS)
    return rows.loc[rows["run_id"].isin(list(run_ids)), ROW_COLUMNS].reset_index(drop=True)


def read_known_failures(out: str, run_ids: Sequence[str]) -> int:
    """How many terminal failures of earlier runs the shards left alone, from each run's DIR/_runs summary."""
    total = 0
    for run_id in run_ids:
        path = Path(out) / "_runs" / f"{run_id}.json"
        if path.is_file():  # a shard that stopped early wrote none
            total += int(json.loads(path.read_text()).get("known_failures", 0))
    return total


def backfill_summary(
    shard_runs: Sequence[ShardRun], rows: pd.DataFrame, budget: float | None, known_failures: int = 0
) -> dict[str, Any]:
    """The backfill's totals as plain data: per shard, by status and engine, money, the commonest failures."""
    shares = shard_budgets(budget, len(shard_runs))
    return {
        "shards": [_shard_line(run, rows[rows["run_id"] == run.run_id], shares[i]) for i, run in enumerate(shard_runs)],
        "documents": len(rows),
        "known_failures": known_failures,
        "by_status": _counts(rows["status"]),
        "by_engine": _counts(rows.loc[rows["status"] == "ok", "engine"]),
        "spent_usd": round(float(rows["cost_usd"].fillna(0).sum()), 6),
        "budget_usd": budget,
        "top_failures": top_failures(rows),
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


def top_failures(rows: pd.DataFrame, limit: int = TOP_FAILURES) -> list[dict[str, Any]]:
    """The commonest error types among failed rows, each with one example path and message to act on."""
    return [
        {"error_type": f.error_type, "count": f.count, "example": f.example} for f in commonest_failures(rows, limit)
    ]


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
    """The summary as a short markdown report."""
    shards = summary["shards"]
    completed = sum(1 for s in shards if s["state"] == "Completed")
    budget = f" of ${summary['budget_usd']:.2f}" if summary["budget_usd"] is not None else " (no budget cap)"
    lines = [
        f"# docrouter backfill: {completed} of {len(shards)} shards completed",
        "",
        f"{summary['documents']} documents; {summary['known_failures']} known failures unchanged; "
        f"spent ${summary['spent_usd']:.4f}{budget}.",
        "",
        "| status | documents |",
        "|---|---|",
        *(f"| {status} | {count} |" for status, count in summary["by_status"].items()),
        "",
        "| engine (ok rows) | documents |",
        "|---|---|",
        *(f"| {engine} | {count} |" for engine, count in summary["by_engine"].items()),
    ]
    if summary["top_failures"]:
        lines += ["", "## Top failures", ""]
        lines += [f"- **{f['error_type']}** x{f['count']}, e.g. {f['example']}" for f in summary["top_failures"]]
    return "\n".join(lines)
