"""The budget: a hard cap on money spent, kept by reserving an upper bound before every request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass
class Reservation:
    """Money set aside for one request until it settles."""

    amount: float
    settled: bool = False


class Budget:
    """Reserve-then-settle ledger; spent + reserved never exceeds the cap.

    Used from one event loop thread, so the check-and-reserve is atomic without a lock.
    """

    def __init__(self, cap_usd: float | None) -> None:
        if cap_usd is not None and cap_usd < 0:
            raise ValueError("budget must be >= 0")
        self.cap_usd = cap_usd
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self.overruns = 0  # settlements above their reservation (an estimate that was not an upper bound)
        self._settled: asyncio.Event | None = None

    def reserve(self, amount: float) -> Reservation | None:
        """A reservation, or None when sending would risk crossing the cap."""
        if self.cap_usd is not None and self.spent_usd + self.reserved_usd + amount > self.cap_usd + 1e-12:
            return None
        self.reserved_usd += amount
        return Reservation(amount)

    async def reserve_when_possible(self, amount: float) -> Reservation | None:
        """Reserve, waiting for in-flight requests to settle first; None once it cannot fit even then."""
        while True:
            reservation = self.reserve(amount)
            if reservation is not None or self.reserved_usd <= 1e-12:
                return reservation
            if self._settled is None:
                self._settled = asyncio.Event()
            await self._settled.wait()

    def settle(self, reservation: Reservation, charged_usd: float) -> None:
        """Replace the reservation with what the request really cost."""
        if reservation.settled:
            raise RuntimeError("reservation settled twice")
        reservation.settled = True
        self.reserved_usd = max(0.0, self.reserved_usd - reservation.amount)
        self.spent_usd += charged_usd
        if charged_usd > reservation.amount + 1e-12:
            self.overruns += 1
        if self._settled is not None:
            self._settled.set()
            self._settled = None

    @property
    def remaining_usd(self) -> float | None:
        if self.cap_usd is None:
            return None
        return max(0.0, self.cap_usd - self.spent_usd - self.reserved_usd)
