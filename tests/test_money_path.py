"""The money path in-process: the call stage (dispatch, jobs, rows, budget) against the emulator's ASGI app.

No sockets, threads of ours or Prefect: each test builds the call stage's parts as the session does, sends
through httpx.ASGITransport into the emulator's Starlette app (or a scripted transport), and compares what
the run counted with what the emulator billed. Retries sleep through the Dispatcher's injected clock and
sleep: the waits asked for are asserted, none is waited. Milliseconds each (`pytest -m "not slow"`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import random
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

import samples
from docrouter import errors
from docrouter.budget import Budget
from docrouter.call.client import OpenRouterClient
from docrouter.call.dispatch import Dispatcher
from docrouter.call.jobs import JobContext, answer
from docrouter.call.limits import AdaptiveLimiter, RetryPolicy
from docrouter.call.payloads import RequestOptions
from docrouter.call.rows import Job, RunColumns
from docrouter.catalogue import parse_models
from docrouter.discover.documents import discover_documents
from docrouter.emulator import Emulator, Faults, RequestRecord
from docrouter.emulator.server import build_app
from docrouter.inspect.inspection import inspect_document
from docrouter.results import Result
from docrouter.route.pricing import PriceBook
from docrouter.route.routing import Router
from docrouter.route.splitting import SplitLimits
from docrouter.run import session as runs
from docrouter.run.concurrency import Concurrency
from docrouter.run.config import RunConfig
from docrouter.run.ledger import read_ledger
from docrouter.store.store import Store
from pipeline import write_corpus

BASE_URL = "http://emulator.invalid/api/v1"  # never resolved: the ASGI transport answers in-process
MODEL = "meta-llama/llama-3.3-70b-instruct"  # no file input: PDFs go as local text or through a parser
PROMPT = "Summarize this document."
MAX_TOKENS = 256
POLICY = RetryPolicy(max_attempts=6, base_s=0.5, cap_s=60.0, max_elapsed_s=600.0)
FOUR_SLOTS = Concurrency.of(4, 100)
CONFIG = RunConfig(sources=("docs",), out="", model=MODEL, prompt=PROMPT, max_tokens=MAX_TOKENS)


@dataclass
class FakeTime:
    """The Dispatcher's clock and sleep: a sleep moves the clock and is noted; nothing waits."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class Rig:
    """One run's call stage wired to an emulator it does not start."""

    jobs: JobContext
    router: Router
    time: FakeTime

    @property
    def budget(self) -> Budget:
        return self.jobs.dispatcher.budget

    def job(self, path: Path) -> Job:
        """Discovered, inspected (in this process) and routed, as the stages before the call leave it."""
        [document] = discover_documents([path])
        inspection = inspect_document(document)
        return Job(document, inspection, self.router.route(document, inspection))

    async def answer(self, *paths: Path) -> list[Result]:
        """Every document answered concurrently, like one batch of the call stage."""
        done = await asyncio.gather(*(answer(self.job(path), self.jobs) for path in paths))
        return [result for result, _ in done]


@asynccontextmanager
async def rig(
    emulator: Emulator,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    budget: float | None = None,
    engine: str = "auto",
    limits: SplitLimits | None = None,
    concurrency: Concurrency = FOUR_SLOTS,
    run_id: str = "money-path",
) -> AsyncIterator[Rig]:
    """The call stage as open_session builds it, over the emulator's app (or `transport`), with fake time."""
    app = httpx.ASGITransport(app=build_app(emulator.state))
    async with httpx.AsyncClient(transport=app) as catalogue, httpx.AsyncClient(transport=transport or app) as http:
        model = parse_models((await catalogue.get(f"{BASE_URL}/models")).json())[MODEL]
        time = FakeTime()
        client = OpenRouterClient(http, base_url=BASE_URL, api_key=emulator.api_key)
        limiter = AdaptiveLimiter(concurrency.request_slots, clock=time.clock)
        dispatcher = Dispatcher(
            client, limiter, Budget(budget), POLICY, rng=random.Random(5), sleep=time.sleep, clock=time.clock
        )
        prices = PriceBook()
        jobs = JobContext(
            run=RunColumns(run_id, MODEL, CONFIG.prompt_sha256),
            options=RequestOptions(model=MODEL, prompt=PROMPT, max_tokens=MAX_TOKENS),
            model=model,
            prices=prices,
            dispatcher=dispatcher,
            stored_annotations=lambda _: (),
            bodies_in_memory=concurrency.bodies_in_memory,
            limits=limits or SplitLimits(),
        )
        forced = None if engine == "auto" else engine
        router = Router(model, prices, forced, len(PROMPT), MAX_TOKENS, answer_tokens=MAX_TOKENS // 2)
        yield Rig(jobs, router, time)


def chats(emulator: Emulator) -> list[RequestRecord]:
    return [r for r in emulator.records if r.path.endswith("/chat/completions")]


def billed(emulator: Emulator) -> float:
    return sum(r.billed_usd for r in chats(emulator))


def scans(folder: Path, count: int) -> list[Path]:
    """Small one-page scans (no text layer), distinct bytes each: a few milliseconds apiece."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image = samples.render_lines([f"Scanned letter number {i}."] * 4, 425, 550, top=40, left=30)
        data = io.BytesIO()
        image.save(data, "PDF", resolution=50.0)
        (folder / f"scan_{i:03d}.pdf").write_bytes(data.getvalue())
        paths.append(folder / f"scan_{i:03d}.pdf")
    return paths


# --- budget: reserve an upper bound, settle at the bill ------------------------------------------------------


def test_an_answer_settles_its_reservation_at_what_the_emulator_billed(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Result], Budget, Emulator]:
        emulator = Emulator(seed=3)
        async with rig(emulator, budget=1.0) as r:
            return await r.answer(*write_corpus(tmp_path, text=3), *scans(tmp_path, 2)), r.budget, emulator

    rows, budget, emulator = asyncio.run(scenario())
    assert [row.status for row in rows] == ["ok"] * 5
    assert len(chats(emulator)) == 5 and billed(emulator) > 0
    assert budget.reserved_usd == 0
    assert budget.spent_usd == pytest.approx(billed(emulator))
    assert sum(row.cost_usd for row in rows) == pytest.approx(billed(emulator))
    assert all(row.attempts == 1 and row.cost_usd > 0 and row.sent_as == "upload" for row in rows)


@pytest.mark.parametrize("slots", [1, 3, 8])
def test_no_request_is_sent_past_the_budget(tmp_path: Path, slots: int) -> None:
    async def scenario() -> tuple[list[Result], Budget, Emulator]:
        emulator = Emulator(seed=3)
        async with rig(emulator, budget=0.01, engine="mistral-ocr", concurrency=Concurrency.of(slots, 100)) as r:
            return await r.answer(*scans(tmp_path, 8)), r.budget, emulator

    rows, budget, emulator = asyncio.run(scenario())
    statuses = [row.status for row in rows]
    assert "ok" in statuses and "over_budget" in statuses
    assert billed(emulator) <= 0.01 and budget.spent_usd == pytest.approx(billed(emulator))
    assert len(chats(emulator)) == statuses.count("ok")  # a refused document sent nothing
    refused = next(row for row in rows if row.status == "over_budget")
    assert refused.attempts == 0 and refused.sent_as is None and refused.cost_usd == 0
    assert "--budget" in (refused.error_message or "")


def test_a_budget_of_zero_sends_nothing(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Result], Emulator]:
        emulator = Emulator(seed=3)
        async with rig(emulator, budget=0.0) as r:
            return await r.answer(*write_corpus(tmp_path, text=2)), emulator

    rows, emulator = asyncio.run(scenario())
    assert [row.status for row in rows] == ["over_budget"] * 2 and chats(emulator) == []


def test_an_ocr_fee_billed_above_list_price_is_learned_and_later_reservations_scale(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Result], Budget, Emulator]:
        emulator = Emulator(seed=3, ocr_fee_multiplier=3.0)
        async with rig(emulator, budget=0.03, engine="mistral-ocr", concurrency=Concurrency.of(8, 100)) as r:
            return await r.answer(*scans(tmp_path, 8)), r.budget, emulator

    rows, budget, emulator = asyncio.run(scenario())
    assert budget.ratios["ocr"] == pytest.approx(3.0, rel=0.01)
    assert any("3.00x" in note for note in budget.notes)
    # The first request of the unknown fee went alone; reserving at 3x after it keeps the bill under the cap.
    # At list price (0.002 a page) all 8 reservations fit at once, and 8 x 0.006 = 0.048 would be billed.
    assert billed(emulator) <= 0.03 and budget.spent_usd == pytest.approx(billed(emulator))
    assert [row.status for row in rows].count("over_budget") >= 2


def test_a_failed_attempt_s_parse_fee_is_counted_and_its_parse_reused_by_the_retry(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Result], Budget, FakeTime, Emulator]:
        emulator = Emulator(seed=3, faults=Faults(fail_first_attempts=1, fail_first_kind="502_with_annotations"))
        async with rig(emulator, budget=1.0, engine="mistral-ocr") as r:
            return await r.answer(*scans(tmp_path, 1)), r.budget, r.time, emulator

    [row], budget, time, emulator = asyncio.run(scenario())
    first, second = chats(emulator)
    assert (first.status, second.status) == (502, 200) and row.status == "ok" and row.attempts == 2
    assert first.ocr_pages_billed == 1 and second.ocr_pages_billed == 0 and second.reused_hashes
    assert first.billed_usd > 0 and row.cost_usd == pytest.approx(billed(emulator))
    assert budget.spent_usd == pytest.approx(billed(emulator)) and len(time.slept) == 1


# --- retries: Retry-After and X-RateLimit-Reset, on the injected clock ------------------------------------------


def test_retry_after_is_honoured_with_the_injected_sleep(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Result], FakeTime, float]:
        emulator = Emulator(seed=3, faults=Faults(fail_first_attempts=2, fail_first_kind="429", retry_after=7.0))
        async with rig(emulator) as r:
            rows = await r.answer(*write_corpus(tmp_path, text=1))
            return rows, r.time, r.jobs.dispatcher.limiter.limit

    [row], time, limit = asyncio.run(scenario())
    assert row.status == "ok" and row.attempts == 3
    assert len(time.slept) == 2
    assert all(7.0 <= s <= 7.0 + 0.25 * POLICY.base_s for s in time.slept)  # never sooner than asked
    assert limit < 4  # a rate limit narrows the gate for every request


def test_x_ratelimit_reset_is_honoured_when_there_is_no_retry_after(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Result], FakeTime]:
        faults = Faults(fail_first_attempts=1, fail_first_kind="429_no_retry_after", retry_after=30.0)
        async with rig(Emulator(seed=3, faults=faults)) as r:
            return await r.answer(*write_corpus(tmp_path, text=1)), r.time

    [row], time = asyncio.run(scenario())
    assert row.status == "ok" and row.attempts == 2
    [slept] = time.slept
    assert 29.0 < slept <= 30.0 + 0.25 * POLICY.base_s  # the reset time (epoch ms) less the time since


def test_retries_stop_at_the_elapsed_limit_of_the_injected_clock(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Result], FakeTime, Emulator]:
        emulator = Emulator(seed=3, faults=Faults(fail_first_attempts=99, fail_first_kind="429", retry_after=190.0))
        async with rig(emulator) as r:
            return await r.answer(*write_corpus(tmp_path, text=1)), r.time, emulator

    [row], time, emulator = asyncio.run(scenario())
    # 190 s waits fit three times in the 600 s a document may take; a fourth would end past it
    assert row.status == "failed" and row.error_type == "rate_limited" and row.attempts == 4
    assert len(time.slept) == 3 and sum(time.slept) <= POLICY.max_elapsed_s
    assert len(chats(emulator)) == 4 and billed(emulator) == 0 and row.cost_usd == 0


def test_backoff_without_any_hint_is_jittered_and_grows(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Result], FakeTime]:
        faults = Faults(fail_first_attempts=5, fail_first_kind="429_bare")
        async with rig(Emulator(seed=3, faults=faults)) as r:
            return await r.answer(*write_corpus(tmp_path, text=1)), r.time

    [row], time = asyncio.run(scenario())
    assert row.status == "ok" and row.attempts == 6 and len(time.slept) == 5
    for attempt, slept in enumerate(time.slept, start=1):
        assert 0 <= slept <= min(POLICY.cap_s, POLICY.base_s * 2 ** (attempt - 1))


def test_a_401_stops_the_run_and_nothing_more_is_sent(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Result], Emulator, Dispatcher]:
        emulator = Emulator(seed=3, faults=Faults(fail_401=True))
        async with rig(emulator, concurrency=Concurrency.of(1, 100)) as r:
            paths = write_corpus(tmp_path, text=3)
            first = await r.answer(paths[0])
            return first + await r.answer(*paths[1:]), emulator, r.jobs.dispatcher

    rows, emulator, dispatcher = asyncio.run(scenario())
    assert len(chats(emulator)) == 1 and isinstance(dispatcher.fatal, errors.AuthError)
    assert [row.error_type for row in rows] == ["auth"] * 3
    assert [row.attempts for row in rows] == [1, 0, 0] and all("not sent" in r.error_message for r in rows[1:])


# --- a lost answer counts in full: a scripted transport ---------------------------------------------------------


@dataclass
class LosingTransport(httpx.AsyncBaseTransport):
    """Every chat request reaches the server and times out before its answer; GET /generation knows nothing."""

    chats: int = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/generation"):
            return httpx.Response(404, json={"error": {"code": 404, "message": "not found"}})
        self.chats += 1
        await request.aread()
        raise httpx.ReadTimeout("no answer", request=request)


def test_a_request_whose_answer_was_lost_keeps_its_whole_reservation(tmp_path: Path) -> None:
    path = write_corpus(tmp_path, text=1)[0]

    def lose_every_answer(budget: float | None) -> tuple[Result, Budget, int]:
        transport = LosingTransport()

        async def scenario() -> tuple[Result, Budget]:
            async with rig(Emulator(seed=3), transport=transport, budget=budget) as r:
                [row] = await r.answer(path)
                return row, r.budget

        row, spent = asyncio.run(scenario())
        return row, spent, transport.chats

    row, budget, sent = lose_every_answer(None)
    assert sent == POLICY.max_attempts and row.error_type == "timeout" and row.status == "failed"
    reservation = budget.spent_usd / sent  # each lost answer settled at its whole reservation
    assert reservation > 0 and row.cost_usd == pytest.approx(budget.spent_usd)
    # With room for two and a half reservations, the third attempt does not fit: lost answers cannot spend
    # past the cap, and the retries end there rather than after max_attempts.
    row, budget, sent = lose_every_answer(2.5 * reservation)
    assert sent == 2 and row.status == "over_budget" and row.attempts == 2
    assert budget.spent_usd == pytest.approx(2 * reservation) and budget.reserved_usd == 0


# --- map-reduce: page ranges, then one combining request, inside one budget ---------------------------------


def long_document(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "long.pdf").write_bytes(samples.text_pdf(6))
    return folder / "long.pdf"


TWO_PAGES = SplitLimits(max_pages=dict.fromkeys(("native", "mistral-ocr", "pdf-text", "local-text"), 2))


def map_reduce(path: Path, budget: float | None) -> tuple[Result, Budget, Emulator]:
    async def scenario() -> tuple[Result, Budget, Emulator]:
        emulator = Emulator(seed=3)
        async with rig(emulator, budget=budget, engine="local-text", limits=TWO_PAGES) as r:
            [row] = await r.answer(path)
            return row, r.budget, emulator

    return asyncio.run(scenario())


def test_a_long_document_is_answered_per_page_range_then_combined(tmp_path: Path) -> None:
    row, budget, emulator = map_reduce(long_document(tmp_path), None)
    sent = chats(emulator)
    assert row.status == "ok" and row.parts == 3 and len(sent) == 4  # three ranges, one combining request
    assert "1-2" in (row.engine_reason or "") and "5-6" in (row.engine_reason or "")
    assert row.attempts == 4 and row.cost_usd == pytest.approx(billed(emulator))
    assert row.prompt_tokens == sum(r.prompt_tokens for r in sent)  # every request's tokens, in one row
    assert budget.spent_usd == pytest.approx(billed(emulator)) and budget.reserved_usd == 0


def test_the_budget_holds_across_ranges_and_the_combining_request(tmp_path: Path) -> None:
    path = long_document(tmp_path)
    full, _, _ = map_reduce(path, None)
    # The smallest budget that answers the document (bisected), and just below it: the ranges were paid,
    # the combining request did not fit, and the row says so with what the ranges cost.
    low, high = 0.0, full.cost_usd * 20
    for _ in range(10):
        middle = (low + high) / 2
        low, high = (low, middle) if map_reduce(path, middle)[0].status == "ok" else (middle, high)
    row, budget, emulator = map_reduce(path, low)
    assert row.status == "over_budget" and len(chats(emulator)) == 3
    assert row.cost_usd == pytest.approx(billed(emulator)) and 0 < budget.spent_usd <= low
    answered, _, _ = map_reduce(path, high)
    assert answered.status == "ok" and answered.cost_usd <= high


# --- the done-set: what an earlier run answered is not sent again -----------------------------------------------


def test_answered_documents_are_not_sent_again_and_copies_cost_nothing(tmp_path: Path) -> None:
    docs, out = tmp_path / "docs", tmp_path / "out"
    first = write_corpus(docs, text=3)
    config = dataclasses.replace(CONFIG, sources=(str(docs),), out=str(out))

    async def run(run_id: str) -> tuple[runs.Selection, int]:
        emulator = Emulator(seed=3)
        selection = runs.select_from(runs.discover(config), read_ledger(out, MODEL, config.prompt_sha256), config)
        async with rig(emulator, run_id=run_id) as r:
            with Store(out, run_id) as store:
                done = await asyncio.gather(*(answer(r.job(Path(d.path)), r.jobs) for d in selection.fresh))
                for result, annotations in done:
                    store.record(result, annotations)
        return selection, len(chats(emulator))

    selection, sent = asyncio.run(run("run-1"))
    assert len(selection.fresh) == 3 and sent == 3
    shutil.copy(first[0], docs / "same-bytes-elsewhere.pdf")
    (docs / "new.pdf").write_bytes(samples.text_pdf(1, text="A memo no run has answered yet."))
    selection, sent = asyncio.run(run("run-2"))
    assert [Path(d.path).name for d in selection.fresh] == ["new.pdf"] and sent == 1  # the new one only
    assert [Path(d.path).name for d in selection.copies] == ["same-bytes-elsewhere.pdf"]
    assert selection.already_done == 3


# --- the concurrency limits the session draws are the ones the call stage keeps --------------------------------


@pytest.mark.parametrize(("slots", "bodies", "most"), [(4, 1, 1), (4, 4, 4), (2, 4, 2)])
def test_requests_in_flight_stay_within_the_request_slots_and_the_bodies_in_memory(
    tmp_path: Path, slots: int, bodies: int, most: int
) -> None:
    limits = dataclasses.replace(Concurrency.of(slots, 100), bodies_in_memory=bodies)

    async def scenario() -> Emulator:
        emulator = Emulator(seed=3, latency=0.02)  # answers overlap when they may
        async with rig(emulator, concurrency=limits) as r:
            await r.answer(*write_corpus(tmp_path, text=6))
        return emulator

    emulator = asyncio.run(scenario())
    assert max(r.in_flight_at_start for r in chats(emulator)) == most


def test_the_batch_window_keeps_every_request_slot_busy_across_a_batch_boundary() -> None:
    assert Concurrency.of(16, 100).batch_window == 3  # one batch more than fills 16 slots, one being inspected
    assert Concurrency.of(64, 16).batch_window == 6  # 4 batches fill the slots, plus the tail and the next
    limits = Concurrency.of(8, 100)
    assert limits.request_slots == limits.bodies_in_memory == limits.unrecorded_answers == 8
