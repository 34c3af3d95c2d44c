"""The budget is a hard cap: spent + reserved never exceeds it, whatever the order of settlements."""

from __future__ import annotations

import asyncio
import random

import pytest

from docrouter.budget import Bound, Budget


def test_reservation_refused_when_it_would_cross_the_cap() -> None:
    budget = Budget(1.0)
    first = budget.reserve(0.6)
    assert first is not None
    assert budget.reserve(0.5) is None
    budget.settle(first, 0.1)
    assert budget.reserve(0.5) is not None
    assert budget.spent_usd == pytest.approx(0.1)


def test_no_cap_always_reserves() -> None:
    assert Budget(None).reserve(1e9) is not None


def test_settling_twice_is_a_bug() -> None:
    budget = Budget(1.0)
    r = budget.reserve(0.1)
    budget.settle(r, 0.05)
    with pytest.raises(RuntimeError):
        budget.settle(r, 0.05)


def test_waits_for_in_flight_settlements_before_refusing() -> None:
    async def scenario() -> tuple[bool, float]:
        budget = Budget(1.0)
        held = budget.reserve(0.9)

        async def settle_later() -> None:
            await asyncio.sleep(0.01)
            budget.settle(held, 0.2)

        task = asyncio.create_task(settle_later())
        got = await budget.reserve_when_possible(0.5)
        await task
        return got is not None, budget.spent_usd

    reserved, spent = asyncio.run(scenario())
    assert reserved and spent == pytest.approx(0.2)


def test_refuses_when_nothing_is_in_flight_and_it_does_not_fit() -> None:
    budget = Budget(0.3)
    assert asyncio.run(budget.reserve_when_possible(0.5)) is None


def test_random_concurrent_traffic_never_crosses_the_cap() -> None:
    rng = random.Random(7)

    async def worker(budget: Budget) -> None:
        for _ in range(50):
            amount = rng.uniform(0.001, 0.05)
            reservation = await budget.reserve_when_possible(amount)
            if reservation is None:
                return
            await asyncio.sleep(rng.uniform(0, 0.002))
            budget.settle(reservation, amount * rng.uniform(0, 1))
            assert budget.spent_usd + budget.reserved_usd <= budget.cap_usd + 1e-9

    async def scenario() -> Budget:
        budget = Budget(0.5)
        await asyncio.gather(*(worker(budget) for _ in range(20)))
        return budget

    budget = asyncio.run(scenario())
    assert budget.spent_usd <= 0.5 and budget.reserved_usd == pytest.approx(0.0)


def test_a_fee_billed_above_list_price_scales_later_reservations_of_its_kind() -> None:
    warnings: list[str] = []
    budget = Budget(10.0, warn=warnings.append)
    bound = Bound(tokens_usd=0.01, fee_usd=0.002, fee_kind="ocr")
    assert budget.amount(bound) == pytest.approx(0.012)
    first = budget.reserve(bound)
    assert first is not None
    budget.settle(first, 0.025, fee_billed_usd=0.02)  # the OCR fee was billed at 10x
    assert budget.ratios == {"ocr": pytest.approx(10.0)}
    assert budget.amount(bound) == pytest.approx(0.01 + 0.02)
    assert budget.amount(Bound(0.01)) == pytest.approx(0.01)  # other kinds keep their price
    assert len(warnings) == 1 and "10.00x" in warnings[0] and "ocr" in warnings[0]


def test_a_cheaper_bill_never_lowers_a_reservation_below_list_price() -> None:
    budget = Budget(10.0)
    bound = Bound(tokens_usd=0.0, fee_usd=0.002, fee_kind="ocr")
    budget.settle(budget.reserve(bound), 0.001, fee_billed_usd=0.001)
    assert budget.ratios["ocr"] == 1.0 and budget.amount(bound) == pytest.approx(0.002)


def test_the_first_request_of_an_unknown_fee_goes_alone() -> None:
    """Until a fee kind's ratio is known, its first request waits for the others and nothing joins it."""
    events: list[str] = []

    async def request(budget: Budget, name: str, bound: Bound | float, hold: float) -> None:
        reservation = await budget.reserve_when_possible(bound)
        assert reservation is not None
        events.append(f"+{name}")
        await asyncio.sleep(hold)
        events.append(f"-{name}")
        fee = 0.02 if isinstance(bound, Bound) and bound.fee_kind else None
        budget.settle(reservation, budget.amount(bound), fee_billed_usd=fee)

    async def scenario() -> None:
        budget = Budget(None)
        ocr = Bound(0.001, 0.002, "ocr")
        plain = asyncio.create_task(request(budget, "text", 0.001, 0.02))
        await asyncio.sleep(0)
        await asyncio.gather(
            request(budget, "probe", ocr, 0.02),
            *(request(budget, f"ocr{i}", ocr, 0.01) for i in range(3)),
            request(budget, "late-text", 0.001, 0.0),
        )
        await plain

    asyncio.run(scenario())
    probe_start, probe_end = events.index("+probe"), events.index("-probe")
    assert events.index("-text") < probe_start  # the probe waited for the request already in flight
    assert probe_end == probe_start + 1  # nothing started while it was in flight
    assert all(events.index(f"+ocr{i}") > probe_end for i in range(3))


def test_a_bill_without_itemised_costs_still_teaches_the_fee_ratio() -> None:
    budget = Budget(10.0, warn=lambda _: None)
    bound = Bound(tokens_usd=0.01, fee_usd=0.002, fee_kind="ocr")
    reservation = budget.reserve(bound)
    budget.settle(reservation, 0.03, budget.fee_billed(reservation, 0.03, None))  # 0.012 reserved
    assert budget.ratios["ocr"] == pytest.approx(10.0)  # at least 0.02 of the bill was the fee
    reservation = budget.reserve(Bound(tokens_usd=0.01, fee_usd=0.002, fee_kind="request"))
    budget.settle(reservation, 0.005, budget.fee_billed(reservation, 0.005, None))
    assert budget.ratios["request"] == 1.0  # a bill within its bound: the kind is known, no more probes


def test_requests_behind_a_probe_that_overspent_all_get_their_answer() -> None:
    """The probe's bill crosses the cap: every request that waited behind it is refused, none hangs."""

    async def scenario() -> list[bool]:
        budget = Budget(0.015, warn=lambda _: None)
        ocr = Bound(0.0114, 0.002, "ocr")

        async def one(index: int) -> bool:
            reservation = await budget.reserve_when_possible(ocr)
            if reservation is None:
                return False
            await asyncio.sleep(0.01)
            budget.settle(reservation, 0.0206, fee_billed_usd=0.02)
            return True

        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(8))), timeout=10)

    assert sorted(asyncio.run(scenario())) == [False] * 7 + [True]
