"""The call stage: send one document, retrying transient failures, inside the budget and the limiter."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from docrouter import errors
from docrouter.budget import Bound, Budget
from docrouter.call.client import Completion, OpenRouterClient
from docrouter.call.limits import AdaptiveLimiter, RetryPolicy
from docrouter.call.payloads import encode

GENERATION_LOOKUP_DELAYS_S = (0.0, 0.5, 1.0, 2.0, 4.0)  # GET /generation can lag the answer by a moment


@dataclass(frozen=True)
class Attempted:
    """What sending one request body produced, after retries: an answer or the last error."""

    completion: Completion | None
    error: errors.DocrouterError | None
    attempts: int
    cost_usd: float
    annotations: tuple[dict[str, Any], ...] = ()
    reply: str | None = None  # an answer that was paid for but not usable (fails --schema): kept in content


@dataclass
class Dispatcher:
    """Everything the requests of one run share: client, limiter, budget, retry policy, stop signal."""

    client: OpenRouterClient
    limiter: AdaptiveLimiter
    budget: Budget
    policy: RetryPolicy
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    fatal: errors.RunFatal | None = None
    requests_sent: int = 0

    async def send(
        self,
        build: Callable[[tuple[dict[str, Any], ...]], dict[str, Any]],
        *,
        max_usd: Callable[[bool], Bound | float],
        failure_charge_usd: Callable[[bool], float],
    ) -> Attempted:
        """Send the body `build(annotations)` until it succeeds, fails for good, or the budget says no.

        `max_usd(reusing)` is the upper bound reserved per attempt; `failure_charge_usd(reusing)` is what
        a failed attempt may still have cost (a parse fee billed before the model failed, at list price,
        scaled like the fee's reservations), settled conservatively because the API does not report it.
        """
        annotations: tuple[dict[str, Any], ...] = ()
        body = encode(build(annotations))
        started = self.clock()
        spent = 0.0
        attempt = 0
        while True:
            if self.fatal is not None:
                return Attempted(None, _not_sent(self.fatal), attempt, spent, annotations)
            outcome = await self._attempt(body, max_usd(bool(annotations)), failure_charge_usd(bool(annotations)))
            attempt += outcome.attempts  # a request the budget or a stop kept back was not an attempt
            spent += outcome.cost_usd
            if not isinstance(outcome.error, errors.Transient) or isinstance(outcome.error, errors.PriceRefused):
                # A price refusal stays retryable for a rerun, but the same request at the same max price
                # is refused again at once.
                return Attempted(outcome.completion, outcome.error, attempt, spent, outcome.annotations)
            if outcome.error.annotations and not annotations:
                # The server parsed the file before failing: send its parse back so it is not paid again.
                annotations = outcome.error.annotations
                body = encode(build(annotations))
            delay = self.policy.delay(attempt, outcome.error.retry_after, self.rng)
            elapsed = self.clock() - started
            if attempt >= self.policy.max_attempts or elapsed + delay > self.policy.max_elapsed_s:
                return Attempted(None, outcome.error, attempt, spent, annotations)
            await self.sleep(delay)

    async def _attempt(self, body: bytes, bound: Bound | float, failure_fee: float) -> Attempted:
        """One request: limiter slot, then a budget reservation, then the call, then settlement."""
        await self.limiter.acquire()
        rate_limited = False
        try:
            reservation = await self.budget.reserve_when_possible(bound)
            if reservation is None:
                return Attempted(None, _over_budget(self.budget.amount(bound), self.budget), 0, 0.0)
            failure_charge = self.budget.scaled_fee(bound, failure_fee)
            if self.fatal is not None:
                self.budget.settle(reservation, 0.0)
                return Attempted(None, _not_sent(self.fatal), 0, 0.0)
            self.requests_sent += 1
            try:
                completion = await self.client.complete(body)
            except errors.Transient as exc:
                charged = exc.charged_usd or failure_charge
                if exc.status is None and exc.sent:
                    # Sent, but no answer read (timeout, dropped connection): it may have been billed. The
                    # reservation stays until GET /generation says what it cost, or it settles in full.
                    billed = await self._billed_for(exc.generation_id)
                    charged = billed if billed is not None else max(charged, reservation.amount)
                self.budget.settle(reservation, charged)
                rate_limited = isinstance(exc, errors.RateLimited)
                return Attempted(None, exc, 1, charged, exc.annotations)
            except errors.DocrouterError as exc:
                # A context refusal may come after the file was parsed: its parse fee may be billed.
                charged = failure_charge if isinstance(exc, errors.ContextExceeded) else 0.0
                self.budget.settle(reservation, charged)
                if isinstance(exc, errors.RunFatal) and self.fatal is None:
                    self.fatal = exc
                return Attempted(None, exc, 1, charged)
            except BaseException:
                # Cancelled or crashed mid-request: we cannot know the charge, so keep the upper bound.
                self.budget.settle(reservation, reservation.amount)
                raise
            charged = completion.cost_usd if completion.cost_usd is not None else reservation.amount
            self.budget.settle(reservation, charged, self.budget.fee_billed(reservation, charged, completion.fee_usd))
            return Attempted(completion, None, 1, charged, completion.annotations)
        finally:
            await self.limiter.release(rate_limited=rate_limited)

    async def _billed_for(self, generation_id: str | None) -> float | None:
        """The cost of a generation whose answer was lost, from GET /generation (which may lag a little)."""
        if generation_id is None:
            return None
        for delay in GENERATION_LOOKUP_DELAYS_S:
            await self.sleep(delay)
            billed = await self.client.billed_for(generation_id)
            if billed is not None:
                return billed
        return None


def _over_budget(amount: float, budget: Budget) -> errors.OverBudget:
    return errors.OverBudget(
        f"not sent: this request may cost up to ${amount:.4f} (its answer counted at the full --max-tokens), and "
        f"only ${budget.remaining_usd or 0:.4f} of the ${budget.cap_usd:.4f} budget is left; a rerun with more "
        "--budget answers it"
    )


def _not_sent(fatal: errors.RunFatal) -> errors.DocrouterError:
    error = type(fatal)(f"not sent: the run stopped after: {fatal.message}", status=fatal.status)
    return error
