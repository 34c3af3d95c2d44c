"""Ctrl-C and SIGTERM mid-run: exit 130 / 143 with one line, every answer that arrived is a row, no double pay."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from docrouter.emulator import Emulator
from pipeline import chat_records, results, start_run, write_corpus

pytestmark = pytest.mark.slow


def billed(emu: Emulator) -> Counter:
    return Counter(h for r in chat_records(emu) if r.status == 200 and r.fault is None for h in r.file_hashes)


def signal_after(process: subprocess.Popen, emu: Emulator, requests: int, send: object) -> tuple[str, float]:
    """Send a signal once the emulator has answered `requests` chat requests; stderr and seconds to exit."""
    deadline = time.monotonic() + 240
    while len(chat_records(emu)) < requests and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before the signal"
    sent = time.monotonic()
    send()  # type: ignore[operator]
    _, stderr = process.communicate(timeout=120)  # a hang guard: a stopped run ends within seconds
    return stderr, time.monotonic() - sent


def check_interrupted_run(stderr: str, returncode: int, code: int, name: str) -> None:
    assert returncode == code, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    ours = [line for line in stderr.splitlines() if line.startswith("docrouter: ") and "interrupted" in line]
    assert ours == [stderr.strip().splitlines()[-1]], stderr[-3000:]  # one line, the last one
    assert ours[0].startswith(f"docrouter: interrupted by {name}: "), stderr[-3000:]


def test_ctrl_c_to_the_process_group_stops_cleanly_and_the_rerun_pays_nothing_twice(
    tmp_path: Path, prefect_api_url: str
) -> None:
    write_corpus(tmp_path / "docs", scans=15, pngs=15)  # every request carries its file: billed per file hash
    out = tmp_path / "out"
    with Emulator(seed=7, latency=1.0) as emu:
        run = start_run(tmp_path / "docs", out, emu, None)  # its own temporary Prefect server
        stderr, seconds = signal_after(run, emu, 6, lambda: os.killpg(run.pid, signal.SIGINT))
        print(f"Ctrl-C to exit: {seconds:.1f} s")
        check_interrupted_run(stderr, run.returncode, 130, "SIGINT")
        paid = billed(emu)
        ok = results(out).query("status == 'ok'")
        assert set(paid) <= set(ok.doc_id)  # every answer that arrived is a row
        assert 0 < len(ok) < 30 and ok.doc_id.is_unique  # it stopped: the rest is left for the rerun
        rerun = start_run(tmp_path / "docs", out, emu, prefect_api_url)
        _, rerun_err = rerun.communicate(timeout=240)
        assert rerun.returncode == 0, rerun_err[-3000:]
        paid = billed(emu)
    assert len(paid) == 30 and set(paid.values()) == {1}
    ok = results(out).query("status == 'ok'")
    assert len(ok) == 30 and ok.doc_id.is_unique


def test_sigterm_stops_cleanly_and_records_the_answers_in_flight(tmp_path: Path, prefect_api_url: str) -> None:
    write_corpus(tmp_path / "docs", scans=10, pngs=10)
    out = tmp_path / "out"
    with Emulator(seed=8, latency=1.0) as emu:
        run = start_run(tmp_path / "docs", out, emu, prefect_api_url)
        stderr, _ = signal_after(run, emu, 4, lambda: os.kill(run.pid, signal.SIGTERM))
        check_interrupted_run(stderr, run.returncode, 143, "SIGTERM")
        in_flight_answered = billed(emu)
        sent = len(chat_records(emu))
    ok = results(out).query("status == 'ok'")
    assert set(in_flight_answered) == set(ok.doc_id)  # answered after the signal, within the grace: recorded
    assert sent < 20  # nothing new was sent after the signal
    assert (results(out).status == "ok").all()  # documents never sent get no row: the rerun sends them
