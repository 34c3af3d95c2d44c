"""The budget is a hard cap: spent + reserved never exceeds it, whatever the order of settlements."""

from __future__ import annotations

import asyncio
import random

import pytest

from docrouter.budget import Budget


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
