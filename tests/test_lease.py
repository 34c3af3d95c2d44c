"""One writer per output folder and shard: the lease file, its takeover when stale, and two real runs at once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from docrouter.emulator import Emulator
from docrouter.store import lease
from pipeline import chat_records, results, start_run, write_corpus


def hold_in_subprocess(out: Path, shard: int = 0, shards: int = 1) -> subprocess.Popen:
    """Another process holding the lease of `out` until killed."""
    code = (
        "import sys, time; from pathlib import Path; from docrouter.store import lease; "
        f"lease.acquire(Path({str(out)!r}), {shard}, {shards}, 'run-other'); print('held', flush=True); time.sleep(120)"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


@pytest.mark.slow
def test_a_live_holder_is_named_and_a_dead_one_is_taken_over(tmp_path: Path) -> None:
    holder = hold_in_subprocess(tmp_path)
    try:
        with pytest.raises(lease.LeaseHeld) as held:
            lease.acquire(tmp_path)
        message = held.value.message
        assert f"pid {holder.pid}" in message and "run run-other" in message and socket.gethostname() in message
        assert "shard 1 of 1" in message and "since 20" in message and "\n" not in message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()
    with lease.acquire(tmp_path, run_id="run-mine") as mine:  # the holder's pid is gone: stale at once
        assert lease.read_holder(mine.path) == mine.holder
        assert mine.holder.run_id == "run-mine" and mine.holder.pid == os.getpid()
    assert not mine.path.exists()  # released


def write_foreign_lease(out: Path, age_s: float) -> Path:
    """A lease from another host (its pid cannot be checked here), last renewed `age_s` ago."""
    path = lease.lease_path(out, 0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = {"host": "other-host", "pid": 1, "started": 0.0, "run_id": "run-far", "since": "x", "token": "t"}
    path.write_text(json.dumps(holder))
    renewed = time.time() - age_s
    os.utime(path, (renewed, renewed))
    return path


def test_a_lease_from_another_host_is_respected_until_its_heartbeat_is_old(tmp_path: Path) -> None:
    write_foreign_lease(tmp_path, age_s=5)
    with pytest.raises(lease.LeaseHeld, match="run run-far on host other-host, pid 1"):
        lease.acquire(tmp_path)
    write_foreign_lease(tmp_path, age_s=lease.STALE_S + 5)
    with lease.acquire(tmp_path, run_id="run-here") as mine:
        assert lease.read_holder(mine.path).run_id == "run-here"  # type: ignore[union-attr]


def test_the_heartbeat_renews_and_notices_a_takeover(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease, "RENEW_S", 0.05)
    lost: list[str] = []
    with lease.acquire(tmp_path) as mine:
        mine.on_lost = lost.append
        os.utime(mine.path, (1.0, 1.0))
        time.sleep(0.3)
        assert time.time() - mine.path.stat().st_mtime < 5  # renewed
        write_foreign_lease(tmp_path / "elsewhere", 0).replace(mine.path)  # someone else's lease in its place
        time.sleep(0.3)
    assert lost and "taken over by run run-far" in lost[0]
    assert mine.path.exists()  # releasing a lost lease leaves the new holder's file alone


def test_shards_hold_their_own_leases_and_one_process_may_take_its_lease_twice(tmp_path: Path) -> None:
    with lease.acquire(tmp_path, 0, 2), lease.acquire(tmp_path, 1, 2):
        outer = lease.acquire(tmp_path, 0, 1)
        inner = lease.acquire(tmp_path, 0, 1, run_id="run-inner")  # the CLI, then the flow in the same process
        assert inner is outer and lease.read_holder(outer.path).run_id == "run-inner"  # type: ignore[union-attr]
        inner.release()
        assert outer.path.exists()
        outer.release()
        assert not outer.path.exists()


@pytest.mark.slow
def test_a_second_run_on_the_same_out_exits_2_at_once_and_nothing_is_paid_twice(
    tmp_path: Path, prefect_api_url: str
) -> None:
    write_corpus(tmp_path / "docs", scans=10, pngs=10)  # every request carries its file: billed per file hash
    out = tmp_path / "out"
    # 3 s per answer at --concurrency 4: the first run sends for ~15 s, long enough for the second to start up
    # and reach the lease on a loaded machine (at 0.3 s it had finished before the second got there).
    with Emulator(seed=5, latency=3.0) as emu:
        first = start_run(tmp_path / "docs", out, emu, prefect_api_url)
        deadline = time.monotonic() + 120
        # A chat request, not any request: the CLI reads GET /models before Prefect starts (its early checks),
        # when the lease does not yet name the run.
        while not chat_records(emu) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the first run is sending
        started = time.monotonic()
        second = start_run(tmp_path / "docs", out, emu, prefect_api_url)
        _, second_err = second.communicate(timeout=60)
        second_s = time.monotonic() - started
        first_out, first_err = first.communicate(timeout=180)
        records = chat_records(emu)
    assert second.returncode == 2, second_err
    lines = second_err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in second_err, second_err
    assert f"pid {first.pid}" in lines[0] and "is being written by run " in lines[0]
    assert second_s < 30  # a hang guard: it stops before Prefect starts
    assert first.returncode == 0, first_err[-2000:]
    billed = Counter(h for r in records if r.status == 200 and r.fault is None for h in r.file_hashes)
    assert len(billed) == 20 and set(billed.values()) == {1}
    ok = results(out).query("status == 'ok'")
    assert len(ok) == 20 and ok.doc_id.is_unique
