"""`Emulator`: the server on a loopback port in a background thread, and what tests read from it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import uvicorn

from docrouter.emulator.failures import quiet_dropped_connections
from docrouter.emulator.faults import Faults
from docrouter.emulator.models import load_models, with_reasoning
from docrouter.emulator.records import RequestRecord
from docrouter.emulator.server import build_app
from docrouter.emulator.state import DEFAULT_API_KEY, EmulatorState, Settings
from docrouter.emulator.thinking import ReasoningKnob

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class _Server(uvicorn.Server):
    """uvicorn's server, woken at once by `wake()` rather than noticing `should_exit` on its 0.1 s poll."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter += 10  # on_tick refreshes the Date header when counter % 10 == 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)

    def wake(self) -> None:
        """Ask the server to exit now (thread-safe)."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(wake.set)


class Emulator:
    """An OpenRouter-compatible server on 127.0.0.1 (an OS-chosen port unless `port` is given).

    Use it as a context manager, or call start()/stop(). Faults, latency and credits can change while
    it runs; records, billed_usd and max_in_flight are snapshots.
    """

    def __init__(
        self,
        faults: Faults | None = None,
        latency: float = 0.0,
        api_key: str = DEFAULT_API_KEY,
        credits_usd: float | None = None,
        seed: int = 0,
        models_path: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ocr_fee_per_page: float | None = None,
        max_body_bytes: int | None = None,
        max_image_pixels: int | None = None,
        doc_models: bool = True,
        price_multiplier: float = 1.0,
        ocr_fee_multiplier: float = 1.0,
        byok: bool = False,
        reasoning: Mapping[str, ReasoningKnob] | None = None,
    ) -> None:
        settings = Settings(
            api_key=api_key, price_multiplier=price_multiplier, ocr_fee_multiplier=ocr_fee_multiplier, byok=byok
        )
        if ocr_fee_per_page is not None:
            settings = dataclasses.replace(settings, ocr_fee_per_page=ocr_fee_per_page)
        if max_body_bytes is not None:
            settings = dataclasses.replace(settings, max_body_bytes=max_body_bytes)
        if max_image_pixels is not None:
            settings = dataclasses.replace(settings, max_image_pixels=max_image_pixels)
        # doc_models: also serve the three models OpenRouter's documentation examples name
        models = load_models(Path(models_path) if models_path else None, with_doc_models=doc_models)
        models = with_reasoning(models, reasoning or {})  # reasoning: model id -> how much it reasons
        self.state = EmulatorState(
            settings, models, faults=faults or Faults(), latency=latency, credits_usd=credits_usd, seed=seed
        )
        self._host, self._port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the server listens on (known once started)."""
        if self._server is None or not self._server.servers:
            raise RuntimeError("the emulator is not running")
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def root_url(self) -> str:
        """http://127.0.0.1:PORT (the admin endpoints live under /_emulator/)."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT/api/v1, the value for OPENROUTER_BASE_URL."""
        return f"{self.root_url}/api/v1"

    @property
    def api_key(self) -> str:
        return self.state.settings.api_key

    @property
    def records(self) -> list[RequestRecord]:
        return self.state.ledger.records

    @property
    def billed_usd(self) -> float:
        """All money billed: usage.cost of every answer plus parse fees billed on failed requests."""
        return self.state.ledger.billed_usd

    @property
    def max_in_flight(self) -> int:
        return self.state.ledger.max_in_flight

    @property
    def faults(self) -> Faults:
        return self.state.picker.faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault knobs (thread-safe); per-document attempt counts start again."""
        self.state.picker.set(faults)

    def set_latency(self, seconds: float) -> None:
        self.state.set_latency(seconds)

    def set_credits(self, credits_usd: float | None) -> None:
        """Set the account balance in USD (None: unlimited); what was billed already counts against it."""
        self.state.ledger.set_credits(credits_usd)

    def start(self) -> Emulator:
        """Serve in a background thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        quiet_dropped_connections()
        config = uvicorn.Config(
            build_app(self.state),
            host=self._host,
            port=self._port,
            log_config=None,
            access_log=False,
            lifespan="off",
            http="h11",
            loop="asyncio",
            timeout_graceful_shutdown=2,
            backlog=2048,
        )
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._server.run, name="docrouter-emulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the emulator did not start on {self._host}:{self._port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread (bounded); safe to call twice."""
        if self._server is not None:
            self._server.wake()
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT_S)
            if self._thread.is_alive():
                assert self._server is not None
                self._server.force_exit = True
                self._thread.join(timeout=STOP_TIMEOUT_S)
        self._thread = None
        self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
