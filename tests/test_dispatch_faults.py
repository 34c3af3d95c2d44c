"""The call stage against the emulator's fault knobs, over real loopback sockets, through the real flow."""

from __future__ import annotations

import socket
from collections import defaultdict
from pathlib import Path

import pytest

from docrouter.emulator import Emulator, Faults
from pipeline import results, run_flow, write_corpus

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api_url")]


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch):
    with Emulator(seed=11) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        yield emu


def params(source: Path, out: Path, emu: Emulator, **extra) -> dict:
    return {"sources": [str(source)], "out": str(out), "base_url": emu.base_url, **extra}


def answered_hashes(emu: Emulator) -> dict[str, int]:
    """How many billed answers each file received."""
    counts: dict[str, int] = defaultdict(int)
    for record in emu.records:
        if record.path.endswith("/chat/completions") and record.status == 200 and record.fault is None:
            for file_hash in record.file_hashes:
                counts[file_hash] += 1
    return counts


def test_429_storm_and_5xx_still_answer_every_document_exactly_once(tmp_path: Path, emulator: Emulator) -> None:
    write_corpus(tmp_path / "docs", text=6, scans=8, pngs=10)
    emulator.set_faults(Faults(rate_429=0.3, rate_5xx=0.1, retry_after=0.2))
    summary = run_flow(**params(tmp_path / "docs", tmp_path / "out", emulator, concurrency=4, max_attempts=12))
    df = results(tmp_path / "out")
    assert len(df) == 24 and set(df.status) == {"ok"}, df[["path", "status", "error_type"]]
    faults = {r.fault for r in emulator.records}
    assert {"429", "5xx"} <= faults  # the storm really happened
    file_answers = answered_hashes(emulator)
    assert file_answers and max(file_answers.values()) == 1  # no file part answered twice
    assert summary["requests_sent"] > 24  # retries happened
    assert emulator.max_in_flight <= 4


def test_retries_never_come_sooner_than_retry_after(tmp_path: Path, emulator: Emulator) -> None:
    write_corpus(tmp_path / "docs", scans=4, pngs=4)
    emulator.set_faults(Faults(fail_first_attempts=2, fail_first_kind="429", retry_after=0.5))
    run_flow(**params(tmp_path / "docs", tmp_path / "out", emulator, concurrency=8))
    by_file = defaultdict(list)
    for record in emulator.records:
        if record.path.endswith("/chat/completions"):
            by_file[record.file_hashes].append(record)
    assert len(by_file) == 8
    for attempts in by_file.values():
        assert [r.status for r in attempts] == [429, 429, 200]
        gaps = [later.time - earlier.time for earlier, later in zip(attempts, attempts[1:], strict=False)]
        assert min(gaps) >= 0.5


def test_concurrency_never_exceeds_the_flag(tmp_path: Path, emulator: Emulator) -> None:
    write_corpus(tmp_path / "docs", pngs=30)
    emulator.set_latency(0.05)
    run_flow(**params(tmp_path / "docs", tmp_path / "out", emulator, concurrency=3))
    assert emulator.max_in_flight == 3
    assert max(r.in_flight_at_start for r in emulator.records) <= 3


def test_402_mid_run_stops_sending_and_keeps_finished_rows(tmp_path: Path, emulator: Emulator) -> None:
    from docrouter_flows.run import RunStopped

    write_corpus(tmp_path / "docs", pngs=30)
    emulator.set_credits(0.0006)  # enough for a few image answers, then "can only afford"
    with pytest.raises(RunStopped, match="afford|credits"):
        run_flow(**params(tmp_path / "docs", tmp_path / "out", emulator, concurrency=2, max_tokens=200))
    chat = [r for r in emulator.records if r.path.endswith("/chat/completions")]
    first_402 = next(i for i, r in enumerate(chat) if r.status == 402)
    assert len(chat) - first_402 <= 2  # only requests already in flight (concurrency 2) came after it
    df = results(tmp_path / "out")
    assert len(df) == 30  # every document has a row
    ok = df[df.status == "ok"]
    assert len(ok) >= 1 and set(df[df.status != "ok"].error_type) == {"credits"}
    assert ok.cost_usd.sum() == pytest.approx(emulator.billed_usd)


def test_budget_smaller_than_the_corpus_is_never_exceeded(tmp_path: Path, emulator: Emulator) -> None:
    write_corpus(tmp_path / "docs", text=5, scans=10, pngs=10)
    emulator.set_faults(Faults(rate_429=0.2, rate_5xx=0.1, rate_502_with_annotations=0.05, retry_after=0.05))
    budget = 0.004
    summary = run_flow(
        **params(tmp_path / "docs", tmp_path / "out", emulator, concurrency=6, budget=budget, engine="mistral-ocr")
    )
    assert emulator.billed_usd <= budget  # the emulator's own billing, not our arithmetic
    assert summary["spent_usd"] >= emulator.billed_usd - 1e-9  # we never under-count what was billed
    df = results(tmp_path / "out")
    assert "over_budget" in set(df.status) and "ok" in set(df.status)
    assert set(df[df.status == "over_budget"].error_type) == {"budget"}
    message = df[df.status == "over_budget"].error_message.iloc[0]
    assert "of the $0.0040 budget is left" in message and "--budget" in message  # says what to do, exactly


def test_rerun_pays_nothing_for_finished_documents(tmp_path: Path, emulator: Emulator) -> None:
    write_corpus(tmp_path / "docs", text=3, scans=3, pngs=3)
    first = run_flow(**params(tmp_path / "docs", tmp_path / "out", emulator))
    billed = emulator.billed_usd
    second = run_flow(**params(tmp_path / "docs", tmp_path / "out", emulator))
    assert first["requests_sent"] == 9 and second["requests_sent"] == 0
    assert second["already_done"] == 9 and emulator.billed_usd == billed
    assert len(results(tmp_path / "out")) == 9


def test_an_unreachable_api_fails_the_documents_at_no_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-unused")
    write_corpus(tmp_path / "docs", text=2, pngs=2)
    base_url = f"http://127.0.0.1:{port}/api/v1"
    summary = run_flow(sources=[str(tmp_path / "docs")], out=str(tmp_path / "out"), base_url=base_url, max_attempts=2)
    df = results(tmp_path / "out")
    assert set(df.status) == {"failed"} and set(df.error_type) == {"connection"}
    assert df.cost_usd.sum() == 0 and summary["spent_usd"] == 0  # refused connections carried no request


def test_402_for_an_answer_too_long_for_the_credits_advises_lowering_max_tokens(
    tmp_path: Path, emulator: Emulator
) -> None:
    from docrouter_flows.run import RunStopped

    write_corpus(tmp_path / "docs", pngs=2)
    emulator.set_credits(0.001)  # covers a few hundred answer tokens, not 4000
    with pytest.raises(RunStopped) as stopped:
        run_flow(**params(tmp_path / "docs", tmp_path / "out", emulator, concurrency=1, max_tokens=4000))
    message = str(stopped.value)
    assert "but can only afford" in message  # the emulator's documented 402 text, kept in parentheses
    assert "lower --max-tokens (the request asked for up to" in message
    assert "out of credits" not in message and emulator.billed_usd == 0.0
