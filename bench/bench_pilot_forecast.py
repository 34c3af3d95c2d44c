"""How often the pilot's forecast lands, over many pilot draws, on a DIR that holds a plan and a finished run.

Each document's bill is what the run recorded (the emulator bills the same bytes the same way), so drawing
another pilot sample and forecasting from those bills shows the estimator's error and its interval's coverage
without paying again. Prints figures; asserts nothing.

    .venv/bin/python bench/bench_pilot_forecast.py DIR [--pilot 20] [--draws 500]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import pandas as pd

from docrouter.run.forecast import Item, Observation, forecast_cost, sample, size_bucket


def items_and_bills(out: Path) -> tuple[list[Item], dict[str, float]]:
    """The plan's sendable rows as forecast items, and each one's recorded bill (the latest row per path)."""
    plan = pd.read_parquet(out / "plan.parquet")
    plan = plan[plan.engine.notna() & plan.duplicate_of.isna() & plan.settled.isna()]
    items = []
    for row in plan.itertuples():
        route = f"{row.engine} {row.verdict}" if row.verdict and row.verdict != row.engine else row.engine
        pages = None if pd.isna(row.pages) else int(row.pages)
        items.append(Item(row.path, (route, size_bucket(pages)), float(row.est_cost_usd)))
    rows = pd.read_parquet(out / "results").sort_values("finished_at").groupby("path").last()
    return items, {path: float(cost) for path, cost in rows.cost_usd.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--pilot", type=int, default=20)
    parser.add_argument("--draws", type=int, default=500)
    args = parser.parse_args()
    items, bills = items_and_bills(args.dir)
    bill = sum(bills[i.key] for i in items)
    errors, widths, covered = [], [], 0
    for seed in range(args.draws):
        picked = sample(items, args.pilot, seed)
        keys = {i.key for i in picked}
        observed = [Observation(i.stratum, i.estimate_usd, bills[i.key], 0.0) for i in picked]
        rest = [i for i in items if i.key not in keys]
        got = forecast_cost(observed, rest, sum(bills[k] for k in keys))
        errors.append(abs(got.value - bill) / bill)
        widths.append(got.high / got.low)
        covered += got.low <= bill <= got.high
    plan = sum(i.estimate_usd for i in items)
    print(f"{len(items)} documents, plan ${plan:.4f}, bill ${bill:.4f} (plan/bill {plan / bill:.2f})")
    print(f"pilot {args.pilot}, {args.draws} draws: interval holds the bill in {covered / args.draws:.1%}")
    print(f"|forecast - bill| / bill: median {statistics.median(errors):.1%}, max {max(errors):.1%}")
    print(f"draws within 20%: {sum(e <= 0.2 for e in errors) / args.draws:.1%}")
    print(f"high/low: median {statistics.median(widths):.2f}, max {max(widths):.2f}")


if __name__ == "__main__":
    main()
