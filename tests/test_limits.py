"""Concurrency never exceeds the ceiling, shrinks on rate limits; retries never come sooner than asked."""

from __future__ import annotations

import asyncio
import random

from docrouter.call.limits import AdaptiveLimiter, RetryPolicy


def test_in_flight_never_exceeds_the_ceiling() -> None:
    async def scenario() -> int:
        limiter = AdaptiveLimiter(4)

        async def one(i: int) -> None:
            await limiter.acquire()
            assert limiter.in_flight <= 4
            await asyncio.sleep(0.001 * (i % 3))
            await limiter.release(rate_limited=False)

        await asyncio.gather(*(one(i) for i in range(100)))
        return limiter.max_in_flight

    assert asyncio.run(scenario()) == 4


def test_rate_limits_halve_the_limit_once_per_burst_and_successes_grow_it_back() -> None:
    now = [0.0]

    async def scenario() -> list[float]:
        limiter = AdaptiveLimiter(16, clock=lambda: now[0])
        seen = []
        for _ in range(3):  # one burst: three 429s at the same instant
            await limiter.acquire()
            await limiter.release(rate_limited=True)
        seen.append(limiter.limit)
        now[0] += 5
        await limiter.acquire()
        await limiter.release(rate_limited=True)
        seen.append(limiter.limit)
        for _ in range(40):
            await limiter.acquire()
            await limiter.release(rate_limited=False)
        seen.append(limiter.limit)
        return seen

    after_burst, after_second, recovered = asyncio.run(scenario())
    assert after_burst == 8 and after_second == 4
    assert 4 < recovered <= 16


def test_delay_is_never_sooner_than_retry_after() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=60)
    rng = random.Random(1)
    for attempt in range(1, 8):
        assert policy.delay(attempt, 3.0, rng) >= 3.0


def test_backoff_is_full_jitter_within_the_exponential_cap() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=4.0)
    rng = random.Random(2)
    delays = [policy.delay(5, None, rng) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert max(delays) > 2.0 and min(delays) < 1.0  # spread over the whole window, not a fixed step
