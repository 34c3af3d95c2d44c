"""`docrouter plan`: the run's own session functions (docrouter.run.planning), printed; no paid call unless a pilot
is asked for (docrouter.run.pilot)."""

from __future__ import annotations

import json
from pathlib import Path

from docrouter.run.config import RunConfig
from docrouter.run.pilot import pilot_json, render_pilot, run_pilot, write_forecast
from docrouter.run.planning import make_plan, plan_json, render_plan, write_plan
from docrouter.run.session import check_run, discover, planned_urls


def plan_command(config: RunConfig, *, out: str | None = None, as_json: bool = False, pilot: int = 0) -> int:
    """`docrouter plan`: the run's own selection, inspection, routing and estimates, printed; no paid call
    unless `pilot` documents are to be answered for real (docrouter/run/pilot.py) to forecast the bill."""
    if pilot:
        check_run(config)  # a missing key or an unwritable DIR: one line, before any work
    with planned_urls(config) as (fetched, totals):
        documents = [*discover(config), *fetched]
        plan = make_plan(config, fetched, documents=documents)
        trial = run_pilot(config, plan, documents, pilot) if pilot else None
    if trial and out:
        write_forecast(Path(out), config, trial)
    if as_json:
        print(json.dumps(plan_json(plan) | (pilot_json(trial) if trial else {})))
    else:
        print(render_plan(plan) + (f"\n{render_pilot(trial)}" if trial else ""))
    if fetched and not as_json:
        print(
            f"URLs: {len(fetched)}; fetched {totals.fetched} ({totals.fetched_bytes:,} bytes), "
            f"{totals.not_modified} unchanged since the last fetch, {totals.failed} failed"
        )
    if out:
        written = write_plan(plan, Path(out))
        if not as_json:
            print(f"plan written to {written}")
    return 0
