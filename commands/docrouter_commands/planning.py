"""`docrouter plan`: the run's own session functions (docrouter.planning), printed; no paid call."""

from __future__ import annotations

import json
from pathlib import Path

from docrouter.config import RunConfig
from docrouter.planning import make_plan, plan_json, render_plan, write_plan
from docrouter.session import planned_urls


def plan_command(config: RunConfig, *, out: str | None = None, as_json: bool = False) -> int:
    """`docrouter plan`: the run's own selection, inspection, routing and estimates, printed; no paid call."""
    with planned_urls(config) as (fetched, totals):
        plan = make_plan(config, fetched)
    if as_json:
        print(json.dumps(plan_json(plan)))
    else:
        print(render_plan(plan))
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
