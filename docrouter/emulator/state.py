"""Everything one running emulator shares between its requests and its owner (thread-safe)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from docrouter.emulator.billing import DEFAULT_OCR_FEE_PER_PAGE
from docrouter.emulator.faults import FaultPicker, Faults
from docrouter.emulator.models import EmulatedModel
from docrouter.emulator.parsing import PageCache
from docrouter.emulator.records import Generations, Ledger, RequestRecord
from docrouter.emulator.replies import new_generation_id

DEFAULT_API_KEY = "sk-or-v1-emulator-0000000000000000"  # made up: the emulator never sees a real key


@dataclass(frozen=True)
class Settings:
    """What does not change while the emulator runs."""

    api_key: str = DEFAULT_API_KEY
    ocr_fee_per_page: float = DEFAULT_OCR_FEE_PER_PAGE
    max_body_bytes: int = 64 * 1024 * 1024  # past this: 413
    max_image_pixels: int = 50_000_000  # past this: 400 image_too_large
    price_multiplier: float = 1.0  # tokens, images and requests bill at this times what /models lists
    ocr_fee_multiplier: float = 1.0  # the OCR page fee bills at this times ocr_fee_per_page
    byok: bool = False  # answer as for a BYOK key: usage.cost is OpenRouter's fee, the rest upstream


class EmulatorState:
    """The catalogue, the knobs, the ledger and the caches of one emulator."""

    def __init__(
        self,
        settings: Settings,
        models: dict[str, EmulatedModel],
        *,
        faults: Faults,
        latency: float,
        credits_usd: float | None,
        seed: int,
    ) -> None:
        self.settings = settings
        self.models = models
        self.ledger = Ledger(credits_usd)
        self.generations = Generations()
        self.picker = FaultPicker(faults, seed)
        self.pages = PageCache()
        self.on_record: Callable[[RequestRecord], None] | None = None
        self._lock = threading.Lock()
        self._ids = random.Random(seed + 1)  # its own stream: ids do not shift the fault draws
        self._latency = latency

    @property
    def latency(self) -> float:
        with self._lock:
            return self._latency

    def set_latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        with self._lock:
            self._latency = seconds

    def new_generation_id(self) -> str:
        with self._lock:
            return new_generation_id(self._ids)

    def record(self, record: RequestRecord) -> None:
        """Log a finished request (and tell the CLI, which prints one line per request)."""
        self.ledger.add(record)
        if self.on_record is not None:
            self.on_record(record)
