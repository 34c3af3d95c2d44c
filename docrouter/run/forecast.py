"""A pilot's sample and the forecast it calibrates: pure functions over plan rows and pilot bills.

Sampling is stratified by route (the engine, and what inspection found: text, scan, mixed) and size bucket
(pages): every stratum gets a document when the pilot is large enough, and the rest go where the plan expects
the money (allocation by estimated cost). Each
stratum's billed/estimated ratio then calibrates the estimates of the documents not yet sent (a ratio
estimator); a stratum with fewer than two pilot documents borrows its route's ratio, else the overall one.

The interval is a prediction interval under the ratio model billed = R * estimate + e, Var(e) = s2 * estimate
(Royall's model, for which the ratio estimator is the best linear one): the variance of the rest's bill is
s2 * X * (X / x + 1) per ratio group (X: the rest's estimates, x: the pilot's), s2 pooled from the pilot's
residuals, and the bounds are t quantiles with the residuals' degrees of freedom (wide when the pilot is
small, never narrower than the data allow). The pilot's own bill is known and enters exactly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

SIZE_BUCKETS = ((1, "1 page"), (4, "2-4 pages"), (16, "5-16 pages"))  # (most pages, label); larger: "17+ pages"
# Student's t, two-sided 95% (0.975 quantile), by degrees of freedom 1..30; beyond that the normal 1.96.
T_975 = (
    *(12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131),
    *(2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042),
)

Stratum = tuple[str, str]  # (route: the engine and the verdict, size bucket)


@dataclass(frozen=True)
class Item:
    """One document a run would send, as the plan priced it."""

    key: str  # the document's path (unique within a plan)
    stratum: Stratum
    estimate_usd: float


@dataclass(frozen=True)
class Observation:
    """One pilot document: what the plan expected, what it was billed and how long its call took."""

    stratum: Stratum
    estimate_usd: float
    billed_usd: float
    seconds: float


@dataclass(frozen=True)
class Interval:
    """A point forecast and its 95% prediction interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Forecast:
    """The whole run's bill (pilot included) and its call time, each with an interval."""

    cost: Interval
    seconds: Interval
    pilot_documents: int
    pilot_spent_usd: float


def size_bucket(pages: int | None) -> str:
    """The size label of a document with `pages` pages (an image, or unknown pages: one page)."""
    count = pages or 1
    for most, label in SIZE_BUCKETS:
        if count <= most:
            return label
    return f"{SIZE_BUCKETS[-1][0] + 1}+ pages"


def t_quantile(df: int) -> float:
    """The two-sided 95% Student t factor for `df` degrees of freedom (df < 1: the df=1 factor)."""
    return T_975[max(1, df) - 1] if df <= len(T_975) else 1.96


def allocate(weights: Mapping[Stratum, float], counts: Mapping[Stratum, int], n: int) -> dict[Stratum, int]:
    """Pilot documents per stratum: one each while n lasts (dearest strata first), then each next one where the
    estimated cost per pilot document is highest (D'Hondt), never more than a stratum holds."""
    order = sorted(counts, key=lambda s: (-weights.get(s, 0.0), s))
    taken = dict.fromkeys(order, 0)
    for _ in range(min(n, sum(counts.values()))):
        open_ = [s for s in order if taken[s] < counts[s]]
        unsampled = [s for s in open_ if taken[s] == 0]
        pick = unsampled[0] if unsampled else max(open_, key=lambda s: weights.get(s, 0.0) / (taken[s] + 1))
        taken[pick] += 1
    return taken


def sample(items: Sequence[Item], n: int, seed: int = 0) -> list[Item]:
    """A stratified random sample of `n` items (all of them when n >= len(items)); the same seed, the same pick."""
    by_stratum: dict[Stratum, list[Item]] = {}
    for item in items:
        by_stratum.setdefault(item.stratum, []).append(item)
    weights = {s: sum(i.estimate_usd for i in group) for s, group in by_stratum.items()}
    quota = allocate(weights, {s: len(group) for s, group in by_stratum.items()}, n)
    rng = random.Random(seed)
    picked: list[Item] = []
    for s in sorted(by_stratum):
        picked += rng.sample(sorted(by_stratum[s], key=lambda i: i.key), quota[s])
    return picked


def _ratio_groups(observations: Sequence[Observation], strata: Iterable[Stratum]) -> dict[Stratum, tuple[int, ...]]:
    """Per stratum, the pilot observations (indexes) whose ratio calibrates it: its own when two or more, else
    its route's (all sizes) when two or more, else all."""
    every = tuple(range(len(observations)))
    groups: dict[Stratum, tuple[int, ...]] = {}
    for stratum in strata:
        own = tuple(i for i in every if observations[i].stratum == stratum)
        engine = tuple(i for i in every if observations[i].stratum[0] == stratum[0])
        groups[stratum] = own if len(own) >= 2 else engine if len(engine) >= 2 else every
    return groups


def forecast_cost(observations: Sequence[Observation], rest: Sequence[Item], spent_usd: float) -> Interval:
    """The whole bill: the pilot's `spent_usd` plus the rest's estimates calibrated by the pilot's ratios."""
    usable = [o for o in observations if o.estimate_usd > 0]
    if not rest:
        return Interval(spent_usd, spent_usd, spent_usd)
    if not usable:
        raise ValueError("a forecast needs at least one pilot document with an estimate")
    strata = {item.stratum for item in rest} | {o.stratum for o in usable}
    groups = _ratio_groups(usable, strata)
    ratio = {g: sum(usable[i].billed_usd for i in g) / sum(usable[i].estimate_usd for i in g) for g in groups.values()}
    rest_x: dict[tuple[int, ...], float] = {}
    for item in rest:
        group = groups[item.stratum]
        rest_x[group] = rest_x.get(group, 0.0) + item.estimate_usd
    point = spent_usd + sum(ratio[g] * x for g, x in rest_x.items())
    residuals = [(o.billed_usd - ratio[groups[o.stratum]] * o.estimate_usd) ** 2 / o.estimate_usd for o in usable]
    df = len(usable) - len(set(groups[o.stratum] for o in usable))
    s2 = sum(residuals) / max(1, df)
    variance = sum(s2 * x * (x / sum(usable[i].estimate_usd for i in g) + 1) for g, x in rest_x.items())
    half = t_quantile(df) * math.sqrt(variance)
    return Interval(point, max(spent_usd, point - half), point + half)


def forecast_seconds(observations: Sequence[Observation], rest: Sequence[Item], concurrency: int) -> Interval:
    """The rest's call time at `concurrency` requests in flight, from the pilot's per-document call times by
    stratum (the pilot's own time is already spent and not counted)."""
    if not rest or not observations:
        return Interval(0.0, 0.0, 0.0)
    groups = _ratio_groups(observations, {item.stratum for item in rest})
    counts: dict[tuple[int, ...], int] = {}
    for item in rest:
        counts[groups[item.stratum]] = counts.get(groups[item.stratum], 0) + 1
    lanes = max(1, min(concurrency, len(rest)))
    point = variance = 0.0
    for group, count in counts.items():
        times = [observations[i].seconds for i in group]
        mean = sum(times) / len(times)
        spread = sum((t - mean) ** 2 for t in times) / max(1, len(times) - 1)
        point += mean * count / lanes
        variance += spread * (count / lanes) ** 2 / len(times)
    half = t_quantile(len(observations) - 1) * math.sqrt(variance)
    return Interval(point, max(0.0, point - half), point + half)
