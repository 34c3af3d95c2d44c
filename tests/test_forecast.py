"""The pilot's stratified sample and the forecast it calibrates: table tests of the pure functions."""

from __future__ import annotations

import pytest

from docrouter.run.forecast import (
    Item,
    Observation,
    allocate,
    forecast_cost,
    forecast_seconds,
    sample,
    size_bucket,
    t_quantile,
)


@pytest.mark.parametrize(
    ("pages", "bucket"),
    [(None, "1 page"), (1, "1 page"), (2, "2-4 pages"), (4, "2-4 pages"), (5, "5-16 pages"), (17, "17+ pages")],
)
def test_size_buckets(pages: int | None, bucket: str) -> None:
    assert size_bucket(pages) == bucket


@pytest.mark.parametrize(("df", "factor"), [(0, 12.706), (1, 12.706), (19, 2.093), (30, 2.042), (31, 1.96)])
def test_t_quantiles(df: int, factor: float) -> None:
    assert t_quantile(df) == factor


A, B, C = ("native", "1 page"), ("mistral-ocr", "2-4 pages"), ("pdf-text", "17+ pages")


@pytest.mark.parametrize(
    ("weights", "counts", "n", "expected"),
    [
        ({A: 1.0, B: 1.0, C: 1.0}, {A: 10, B: 10, C: 10}, 2, {A: 1, B: 1, C: 0}),  # too few: dearest (then name)
        ({A: 3.0, B: 1.0, C: 0.0}, {A: 10, B: 10, C: 10}, 3, {A: 1, B: 1, C: 1}),  # one each first
        ({A: 3.0, B: 1.0, C: 0.0}, {A: 10, B: 10, C: 10}, 7, {A: 5, B: 1, C: 1}),  # then by cost per pick
        ({A: 9.0, B: 1.0}, {A: 2, B: 10}, 6, {A: 2, B: 4}),  # never more than a stratum holds
        ({A: 1.0}, {A: 3}, 10, {A: 3}),  # a pilot larger than the folder takes everything
    ],
)
def test_allocation(weights: dict, counts: dict, n: int, expected: dict) -> None:
    assert allocate(weights, counts, n) == expected


def _items() -> list[Item]:
    return [Item(f"{s[0]}-{i}", s, 0.01 if s == A else 0.001) for s in (A, B, C) for i in range(20)]


def test_sample_covers_every_stratum_and_repeats_with_the_seed() -> None:
    picked = sample(_items(), 6, seed=1)
    assert len(picked) == 6 and {i.stratum for i in picked} == {A, B, C}
    assert sum(i.stratum == A for i in picked) == 4  # the dearest stratum gets the extra documents
    assert sample(_items(), 6, seed=1) == picked
    assert sample(_items(), 6, seed=2) != picked


def test_exact_ratios_forecast_exactly_with_a_closed_interval() -> None:
    observed = [Observation(A, 1.0, 0.5, 1.0), Observation(A, 2.0, 1.0, 1.0)]
    rest = [Item("x", A, 4.0), Item("y", A, 6.0)]
    got = forecast_cost(observed, rest, spent_usd=1.5)
    assert (got.value, got.low, got.high) == pytest.approx((6.5, 6.5, 6.5))


def test_each_stratum_keeps_its_own_ratio_and_a_thin_one_borrows_its_engines() -> None:
    b_thin = ("mistral-ocr", "1 page")
    observed = [
        Observation(A, 1.0, 0.5, 1.0),
        Observation(A, 1.0, 0.5, 1.0),
        Observation(B, 1.0, 2.0, 1.0),
        Observation(B, 1.0, 2.0, 1.0),
    ]
    rest = [Item("a", A, 10.0), Item("b", B, 10.0), Item("c", b_thin, 10.0)]
    got = forecast_cost(observed, rest, spent_usd=5.0)
    assert got.value == pytest.approx(5.0 + 5.0 + 20.0 + 20.0)  # b_thin: mistral-ocr's ratio 2


def test_interval_widens_with_spread_and_narrows_with_more_pilot_documents() -> None:
    rest = [Item(str(i), A, 1.0) for i in range(100)]

    def width(ratios: list[float]) -> float:
        got = forecast_cost([Observation(A, 1.0, r, 1.0) for r in ratios], rest, spent_usd=sum(ratios))
        assert got.low < got.value < got.high
        return (got.high - got.low) / got.value

    assert width([0.9, 1.1] * 5) < width([0.5, 1.5] * 5)
    assert width([0.5, 1.5] * 20) < width([0.5, 1.5] * 5)


def test_no_rest_means_the_pilot_was_the_whole_bill() -> None:
    got = forecast_cost([Observation(A, 1.0, 0.7, 1.0)], [], spent_usd=0.7)
    assert (got.value, got.low, got.high) == (0.7, 0.7, 0.7)


def test_a_forecast_needs_one_billed_pilot_document() -> None:
    with pytest.raises(ValueError, match="at least one pilot document"):
        forecast_cost([], [Item("x", A, 1.0)], spent_usd=0.0)


def test_time_forecast_spreads_the_rest_over_the_concurrency() -> None:
    observed = [Observation(A, 1.0, 1.0, 2.0), Observation(A, 1.0, 1.0, 2.0)]
    got = forecast_seconds(observed, [Item(str(i), A, 1.0) for i in range(8)], concurrency=4)
    assert (got.value, got.low, got.high) == pytest.approx((4.0, 4.0, 4.0))
    wide = forecast_seconds([Observation(A, 1.0, 1.0, t) for t in (1.0, 3.0)], [Item("x", A, 1.0)], 4)
    assert wide.low < wide.value < wide.high and wide.value == pytest.approx(2.0)
