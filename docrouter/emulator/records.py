"""What the emulator saw and billed: a request log tests can read, the credit balance, generations."""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

MAX_RECORDS = 50_000  # the log keeps the most recent; totals always count everything


@dataclass(frozen=True)
class RequestRecord:
    """One API request: what arrived, what happened, what it cost."""

    time: float  # epoch seconds when it arrived
    path: str
    status: int  # HTTP status sent (200 also for errors inside a 200 body; 0 for a dropped connection)
    model: str | None = None
    engine: str | None = None  # file-parser engine used for the request's files
    fault: str | None = None  # injected fault kind, if any
    billed_usd: float = 0.0  # usage.cost of the answer, or the parse fee billed on a failure
    ocr_pages_billed: int = 0
    file_hashes: tuple[str, ...] = ()  # sha256 of every file and image received
    body_bytes: int = 0  # size of the request body as received (what the client uploaded)
    data_urls: int = 0  # base64 data URLs in the body (images and files uploaded inline)
    url_parts: tuple[str, ...] = ()  # images and files given by URL (downloaded by the emulator)
    reused_hashes: tuple[str, ...] = ()  # files whose parse came from annotations (no parse fee)
    in_flight_at_start: int = 0  # chat requests in flight when this one started, itself included
    generation_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    stream: bool = False
    error: str | None = None  # the error message sent, if any
    max_price: dict[str, float] | None = None  # provider.max_price the request carried
    schema: str | None = None  # a JSON Schema answered: "response_format" or "instructions"
    invalid_json: bool = False  # the answer's JSON was cut on purpose (the invalid_json_answers knob)
    provider: str | None = None  # the provider that answered (chosen by the request's preferences)
    # The request's answer and routing options as sent: temperature, system prompt, `models`, `provider`.
    options: dict[str, Any] = field(default_factory=dict)


class Ledger:
    """The log, the money and the concurrency of one emulator (thread-safe)."""

    def __init__(self, credits_usd: float | None, max_records: int = MAX_RECORDS) -> None:
        self._lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=max_records)
        self._credits = credits_usd
        self._billed = 0.0
        self._reserved = 0.0
        self._in_flight = 0
        self._max_in_flight = 0
        self._statuses: Counter[int] = Counter()
        self._faults: Counter[str] = Counter()

    def begin(self) -> int:
        """Count a chat request in flight; returns how many are in flight now, this one included."""
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return self._in_flight

    def end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def reserve(self, worst_usd: float) -> bool:
        """Hold the worst case against the balance (the API's pre-flight check); False: cannot afford."""
        with self._lock:
            if self._credits is not None and worst_usd > self._credits - self._billed - self._reserved:
                return False
            self._reserved += worst_usd
            return True

    def settle(self, reserved_usd: float, billed_usd: float) -> None:
        """Release a reservation and bill what the request really cost."""
        with self._lock:
            self._reserved -= reserved_usd
            self._billed += billed_usd

    def bill(self, usd: float) -> None:
        """Bill money that was never reserved (a parse fee charged before a failure)."""
        self.settle(0.0, usd)

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)
            self._statuses[record.status] += 1
            if record.fault:
                self._faults[record.fault] += 1

    def set_credits(self, credits_usd: float | None) -> None:
        """A new account balance in USD (None: unlimited); money already billed still counts against it."""
        with self._lock:
            self._credits = credits_usd

    @property
    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    @property
    def billed_usd(self) -> float:
        with self._lock:
            return self._billed

    @property
    def credits_usd(self) -> float | None:
        with self._lock:
            return self._credits

    @property
    def remaining_usd(self) -> float | None:
        """Credits left (None: unlimited)."""
        with self._lock:
            return None if self._credits is None else self._credits - self._billed

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    def stats(self) -> dict[str, Any]:
        """Totals for GET /_emulator/stats."""
        with self._lock:
            return {
                "requests": sum(self._statuses.values()),
                "billed_usd": self._billed,
                "credits_usd": self._credits,
                "remaining_usd": None if self._credits is None else self._credits - self._billed,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "statuses": {str(k): v for k, v in sorted(self._statuses.items())},
                "faults": dict(sorted(self._faults.items())),
            }


class Generations:
    """Finished generations for GET /generation, each visible only after its 404 window."""

    def __init__(self, max_items: int = MAX_RECORDS) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._max = max_items

    def add(self, generation_id: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._items[generation_id] = (time.monotonic(), data)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def get(self, generation_id: str, hidden_for_s: float) -> dict[str, Any] | None:
        """The generation's data, or None while unknown or still inside its 404 window."""
        with self._lock:
            found = self._items.get(generation_id)
        if found is None or time.monotonic() - found[0] < hidden_for_s:
            return None
        return found[1]
