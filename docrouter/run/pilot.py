"""`plan --pilot N`: answer a stratified sample for real through the run's own session and stages, then
forecast the whole run's bill and call time from what the sample was billed (docrouter/run/forecast.py).

The pilot is a run restricted to the sampled documents: the same session (the DIR lease, the budget, the
store), inspection, routing and call stages as `docrouter run`, so its answers land in DIR as a run's do and
a later run with the same sources and flags skips them. Ctrl-C stops sending; answers in flight are recorded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

from docrouter.call.rows import Job, Unsent
from docrouter.discover.documents import Document
from docrouter.errors import ConfigError
from docrouter.results import Result
from docrouter.route.routing import usd
from docrouter.run import session as runs
from docrouter.run import stopping
from docrouter.run.config import RunConfig
from docrouter.run.forecast import (
    Forecast,
    Interval,
    Item,
    Observation,
    forecast_cost,
    forecast_seconds,
    sample,
    size_bucket,
)
from docrouter.run.planning import Plan, PlanRow

SEED = 20  # the pilot's pick is a pure function of the plan: the same folder, the same sample
FORECAST_FILE = "_forecast.json"  # in DIR: the last pilot's forecast, which the run's progress compares with


@dataclasses.dataclass(frozen=True)
class Pilot:
    """The forecast the pilot's answers calibrate (its counts and spend included)."""

    forecast: Forecast


def item(row: PlanRow) -> Item:
    """A plan row a run would send, as the forecast sees it: stratified by engine and what inspection found (a
    scan and a mixed PDF both go native, and answer differently), then by size."""
    assert row.engine is not None
    read_as = f"{row.engine} {row.verdict}" if row.verdict and row.verdict != row.engine else row.engine
    return Item(f"{row.source_root}\0{row.path}", (read_as, size_bucket(row.pages)), row.est_cost_usd)


def sendable(plan: Plan) -> list[tuple[PlanRow, Item]]:
    """The rows a run would pay for: routed, not a copy, not settled by an earlier run."""
    return [(r, item(r)) for r in plan.rows if r.engine and r.duplicate_of is None and r.settled is None]


def run_pilot(config: RunConfig, plan: Plan, documents: Sequence[Document], size: int) -> Pilot:
    """Answer `size` sampled documents (within --budget, under DIR's lease) and forecast the whole run."""
    rows = sendable(plan)
    picked = {i.key for i in sample([i for _, i in rows], size, SEED)}
    by_key = {f"{d.source_root}\0{d.rel_path}": d for d in documents}
    chosen = [by_key[i.key] for _, i in rows if i.key in picked]
    with stopping.installed() as stopper:
        answered = stopping.run(_answer(config, chosen, stopper), stopper)
    if stopper.requested:
        raise stopper.error(f": every pilot answer that arrived is recorded in {config.out}; no forecast")
    return Pilot(_forecast(rows, answered, config.concurrency))


def _forecast(rows: Sequence[tuple[PlanRow, Item]], answered: Sequence[tuple[Result, float]], lanes: int) -> Forecast:
    """The forecast from the pilot's sent documents; any the pilot could not send stay in the rest."""
    items = {i.key: i for _, i in rows}
    sent = {f"{r.source_root}\0{r.path}": (r, s) for r, s in answered if _sent(r)}
    observed = [Observation(items[k].stratum, items[k].estimate_usd, r.cost_usd, s) for k, (r, s) in sent.items()]
    if rows and not sent:
        why = ", ".join(sorted({r.error_type or r.status for r, _ in answered})) or "nothing to send"
        raise ConfigError(f"the pilot answered none of its {len(answered)} documents ({why}): no forecast")
    rest = [i for _, i in rows if i.key not in sent]
    spent = sum(r.cost_usd for r, _ in answered)
    return Forecast(forecast_cost(observed, rest, spent), forecast_seconds(observed, rest, lanes), len(sent), spent)


async def _answer(
    config: RunConfig, documents: list[Document], stopper: stopping.Stopper
) -> list[tuple[Result, float]]:
    """Inspect, route and call `documents` in one run session; each row with its call's seconds."""
    async with runs.open_session(config) as session:
        stopped = stopping.wake_on_stop(stopper, lambda: _stop_sending(session, stopper))
        jobs = runs.route(
            session,
            await asyncio.to_thread(
                runs.inspect, documents, session.inspector, session.jobs.named_files, session.pdf_log
            ),
        )
        answering = asyncio.gather(*(_timed(session, job) for job in jobs))
        timed = await stopping.finish_or_stop(answering, stopped, config.environment.stop_grace_s)
        runs.remember_answer_lengths(session)
    fatal = session.dispatcher.fatal
    if fatal is not None and not stopping.interrupted(fatal):
        raise fatal  # a 401/402 stopped the pilot: its one-line message, and no forecast from unpaid rows
    return [(row, seconds) for rows, seconds in timed or () for row in rows]


def _stop_sending(session: runs.Session, stopper: stopping.Stopper) -> None:
    if session.dispatcher.fatal is None:
        session.dispatcher.fatal = stopper.error()


async def _timed(session: runs.Session, job: Job | Unsent) -> tuple[list[Result], float]:
    started = time.monotonic()
    rows = await runs.call(session, [job], set())
    return rows, time.monotonic() - started


def pilot_json(pilot: Pilot) -> dict[str, float | int]:
    """The forecast keys `plan --json` adds with --pilot."""
    f = pilot.forecast
    return {
        "pilot_documents": f.pilot_documents,
        "pilot_spent_usd": f.pilot_spent_usd,
        "forecast_usd": f.cost.value,
        "forecast_low_usd": f.cost.low,
        "forecast_high_usd": f.cost.high,
        "forecast_seconds": f.seconds.value,
        "forecast_low_seconds": f.seconds.low,
        "forecast_high_seconds": f.seconds.high,
    }


def write_forecast(out_dir: str | Path, config: RunConfig, pilot: Pilot) -> Path:
    """Keep the forecast in DIR, so that the run it forecasts shows its money against it."""
    rest = pilot.forecast.cost.value - pilot.forecast.pilot_spent_usd
    record = {"model": config.model, "prompt_sha256": config.prompt_sha256, "rest_usd": rest} | pilot_json(pilot)
    target = Path(out_dir) / FORECAST_FILE
    temp = target.with_name(f".{FORECAST_FILE}.tmp")
    temp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    temp.replace(target)
    return target


def read_forecast(out_dir: str | Path, config: RunConfig) -> float | None:
    """What the last pilot in DIR forecast for the rest of this run (same model and prompt), else None."""
    try:
        record = json.loads((Path(out_dir) / FORECAST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # no pilot, or a damaged file: the progress shows no forecast
    if not isinstance(record, dict) or (record.get("model"), record.get("prompt_sha256")) != (
        config.model,
        config.prompt_sha256,
    ):
        return None
    rest = record.get("rest_usd")
    return float(rest) if isinstance(rest, int | float) and math.isfinite(rest) and rest >= 0 else None


def render_pilot(pilot: Pilot) -> str:
    """The forecast in plain text, under the plan's table."""
    f = pilot.forecast
    return "\n".join(
        [
            f"pilot: {f.pilot_documents} documents answered and recorded, {usd(f.pilot_spent_usd)} spent "
            "(a run with the same sources and flags will not send them again)",
            f"forecast for the whole run, pilot included: {usd(f.cost.value)} "
            f"(95% interval {usd(f.cost.low)} .. {usd(f.cost.high)})",
            f"forecast call time for the rest (rough: the pilot's latencies, at --concurrency): {_seconds(f.seconds)}",
        ]
    )


def _seconds(interval: Interval) -> str:
    return f"~{interval.value:.0f} s ({interval.low:.0f} .. {interval.high:.0f} s)"


def _sent(row: Result) -> bool:
    """Whether the pilot sent this document (over the budget it was not: the run sends it, if it can)."""
    return row.attempts > 0 and row.status != "over_budget"
