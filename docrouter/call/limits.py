"""How fast and how often to send: retry backoff with full jitter, and adaptive (AIMD) concurrency."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped by attempts and by total time per document."""

    max_attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 60.0
    max_elapsed_s: float = 600.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt `attempt + 1`; never sooner than the server asked."""
        jittered = rng.uniform(0.0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))
        if retry_after is None:
            return jittered
        return retry_after + min(jittered, 0.25 * self.base_s)


class AdaptiveLimiter:
    """At most `limit` requests in flight; halves the limit on rate limits, grows it back by one per window.

    `ceiling` is the user's --concurrency and is never exceeded. A rate limit's Retry-After (or reset time)
    delays only the request that got it (Dispatcher.send sleeps it); the limiter only narrows the gate.
    """

    def __init__(self, ceiling: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if ceiling < 1:
            raise ValueError("concurrency must be >= 1")
        self.ceiling = ceiling
        self.limit = float(ceiling)
        self.in_flight = 0
        self.max_in_flight = 0
        self._clock = clock
        self._cond = asyncio.Condition()
        self._last_decrease = -1e9

    async def acquire(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < max(1, int(self.limit)))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    async def release(self, *, rate_limited: bool = False) -> None:
        async with self._cond:
            self.in_flight -= 1
            now = self._clock()
            if rate_limited:
                # One decrease per burst: many 429s arriving together are one congestion signal.
                if now - self._last_decrease > 1.0:
                    self.limit = max(1.0, self.limit / 2)
                    self._last_decrease = now
            else:
                self.limit = min(float(self.ceiling), self.limit + 1.0 / max(1.0, self.limit))
            self._cond.notify_all()
