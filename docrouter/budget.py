"""The budget: a hard cap on money spent, kept by reserving an upper bound before every request.

Token prices are capped by the server (provider.max_price, reserved at that price). Fees it cannot cap
(the OCR page fee, image and request fees) are learned from the bills: each settle compares the fee
billed with the fee reserved, per fee kind, and later reservations of that kind are scaled by the
highest ratio seen (never below list price). Until a kind's ratio is known its first request goes
alone, so a price that differs from the start of a run costs at most that one request over the cap.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

LOG = logging.getLogger("docrouter.budget")
_EPSILON = 1e-12


@dataclass(frozen=True)
class Bound:
    """The most one request can cost: tokens (at the max price sent) plus a fee at list price."""

    tokens_usd: float
    fee_usd: float = 0.0  # the fee max_price does not cap, at list price
    fee_kind: str | None = None  # "ocr": the kind whose bills scale `fee_usd`


@dataclass
class Reservation:
    """Money set aside for one request until it settles."""

    amount: float
    bound: Bound | None = None
    probe: bool = False  # the first request of a fee kind whose ratio is not known yet
    settled: bool = False


@dataclass
class Budget:
    """Reserve-then-settle ledger; spent + reserved never exceeds the cap (bills aside, see the module doc).

    Used from one event loop thread, so the check-and-reserve is atomic without a lock.
    """

    cap_usd: float | None
    warn: Callable[[str], None] = LOG.warning
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    ratios: dict[str, float] = field(default_factory=dict)  # fee kind -> billed / list price, once known
    notes: list[str] = field(default_factory=list)
    _probing: str | None = None  # the fee kind whose first request is in flight, alone
    _probes_waiting: int = 0
    _settled: asyncio.Event | None = None

    def __post_init__(self) -> None:
        if self.cap_usd is not None and not (math.isfinite(self.cap_usd) and self.cap_usd >= 0):
            raise ValueError("budget must be a finite amount >= 0")

    def amount(self, bound: Bound | float) -> float:
        """What to reserve for `bound`: its fee scaled by what the bills of its kind showed so far."""
        if not isinstance(bound, Bound):
            return float(bound)
        return bound.tokens_usd + bound.fee_usd * self.ratios.get(bound.fee_kind or "", 1.0)

    def scaled_fee(self, bound: Bound | float, fee_usd: float) -> float:
        """A fee at list price of `bound`'s kind, scaled by what its bills showed (a failed attempt's parse fee)."""
        kind = bound.fee_kind if isinstance(bound, Bound) else None
        return fee_usd * self.ratios.get(kind or "", 1.0)

    def _needs_probe(self, bound: Bound | float) -> bool:
        return isinstance(bound, Bound) and bound.fee_usd > 0 and bound.fee_kind not in self.ratios

    def reserve(self, bound: Bound | float) -> Reservation | None:
        """A reservation, or None when sending would risk crossing the cap (a cap of 0 sends nothing)."""
        amount = self.amount(bound)
        if not math.isfinite(amount) or amount < 0:
            return None
        if self.cap_usd is not None and (
            self.cap_usd == 0 or self.spent_usd + self.reserved_usd + amount > self.cap_usd + _EPSILON
        ):
            return None
        self.reserved_usd += amount
        return Reservation(amount, bound if isinstance(bound, Bound) else None)

    def _must_wait(self, probe: bool) -> bool:
        """A probe goes alone: it waits for the requests in flight, and later ones wait for it."""
        if self._probing is not None:
            return True
        return self.reserved_usd > _EPSILON if probe else self._probes_waiting > 0

    async def reserve_when_possible(self, bound: Bound | float) -> Reservation | None:
        """Reserve, waiting for in-flight requests to settle first; None once it cannot fit even then."""
        counted = False  # whether this request counts among the probes waiting (its kind may be learned meanwhile)
        try:
            while True:
                probe = self._needs_probe(bound)
                if probe != counted:
                    self._count_probe(probe)
                    counted = probe
                if not self._must_wait(probe):
                    reservation = self.reserve(bound)
                    if reservation is not None or self.reserved_usd <= _EPSILON:
                        if reservation is not None and probe:
                            reservation.probe, self._probing = True, str(getattr(bound, "fee_kind", ""))
                        return reservation
                if self._settled is None:
                    self._settled = asyncio.Event()
                await self._settled.wait()
        finally:
            if counted:
                self._count_probe(False)

    def _count_probe(self, waiting: bool) -> None:
        """One more (or one fewer) probe waiting; one fewer may let the requests behind it go."""
        self._probes_waiting += 1 if waiting else -1
        if not waiting:
            self._wake()

    def _wake(self) -> None:
        if self._settled is not None:
            self._settled.set()
            self._settled = None

    def settle(self, reservation: Reservation, charged_usd: float, fee_billed_usd: float | None = None) -> None:
        """Replace the reservation with what the request really cost; learn the fee ratio from an answer's
        bill (`fee_billed_usd`: its fee part; None for a failed attempt, whose bill says nothing)."""
        if reservation.settled:
            raise RuntimeError("reservation settled twice")
        reservation.settled = True
        self.reserved_usd = max(0.0, self.reserved_usd - reservation.amount)
        self.spent_usd += charged_usd
        if reservation.bound is not None and fee_billed_usd is not None:
            self._learn(reservation.bound, fee_billed_usd)
        if reservation.probe:
            self._probing = None
        self._wake()

    def fee_billed(self, reservation: Reservation, charged_usd: float, itemised: float | None) -> float | None:
        """The fee part of an answer's bill: as itemised, else what exceeds the token reservation (tokens
        cannot cost more: the server refuses above the max price)."""
        if itemised is not None or reservation.bound is None:
            return itemised
        return max(0.0, charged_usd - reservation.bound.tokens_usd)

    def _learn(self, bound: Bound, fee_billed_usd: float) -> None:
        """Raise the kind's ratio when its bill was above list price (never lower it, never below 1)."""
        if bound.fee_kind is None or bound.fee_usd <= 0 or not math.isfinite(fee_billed_usd):
            return
        observed = fee_billed_usd / bound.fee_usd
        known = self.ratios.get(bound.fee_kind, 1.0)
        self.ratios[bound.fee_kind] = max(known, observed, 1.0)
        if observed > known * 1.01:
            note = (
                f"the {bound.fee_kind} fee was billed at {observed:.2f}x the configured price; later requests "
                f"reserve {observed:.2f}x (check --ocr-fee or the model's prices)"
            )
            self.notes.append(note)
            self.warn(note)

    @property
    def remaining_usd(self) -> float | None:
        if self.cap_usd is None:
            return None
        return max(0.0, self.cap_usd - self.spent_usd - self.reserved_usd)
