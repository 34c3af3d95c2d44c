"""kill -9 of a running `docrouter run` at random points, then a rerun: nothing paid is lost or paid twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from docrouter.emulator import Emulator
from pipeline import chat_records, results, start_run, write_corpus

pytestmark = pytest.mark.slow


def kill_after(process: subprocess.Popen, emu: Emulator, requests: int, limit_s: float = 120) -> None:
    """SIGKILL the run's whole process group once the emulator has seen `requests` more chat requests."""
    target = len(chat_records(emu)) + requests
    deadline = time.monotonic() + limit_s
    while len(chat_records(emu)) < target and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)


def test_kill_9_at_random_points_then_rerun_pays_each_document_once(tmp_path: Path, prefect_api_url: str) -> None:
    rng = random.Random(20261121)
    write_corpus(tmp_path / "docs", scans=20, pngs=20)  # every request carries its file: billed per file hash
    out = tmp_path / "out"
    with Emulator(seed=3, latency=0.05) as emu:
        for _ in range(3):
            kill_after(
                start_run(tmp_path / "docs", out, emu, prefect_api_url, PREFECT_LOGGING_LEVEL="WARNING"),
                emu,
                rng.randint(1, 12),
            )
            for part in sorted((out / "results").glob("*.parquet")):
                pq.read_table(part)  # a reader never sees a partial or corrupt part
        killed_at = len(chat_records(emu))
        final = start_run(tmp_path / "docs", out, emu, prefect_api_url, PREFECT_LOGGING_LEVEL="WARNING")
        stdout, stderr = final.communicate(timeout=180)
        assert final.returncode == 0, stderr[-2000:]
        records = chat_records(emu)
    df = results(out)
    ok = df[df.status == "ok"]
    assert len(df.doc_id.unique()) == 40
    assert ok.groupby(["doc_id", "model", "prompt_sha256"]).size().eq(1).all()  # exactly one ok row each
    assert set(ok.doc_id) == set(df.doc_id)
    billed = Counter(h for r in records if r.status == 200 and r.fault is None for h in r.file_hashes)
    # Paid at most twice, and only when a kill caught the answer in flight (3 kills, 4 in flight each).
    assert sum(count - 1 for count in billed.values()) <= 3 * 4
    answered_before = {h for r in records[:killed_at] if r.status == 200 for h in r.file_hashes}
    resent = {h for r in records[killed_at:] for h in r.file_hashes}
    written_before = answered_before & set(ok[ok.run_id != ok.run_id.max()].doc_id)
    assert not (written_before & resent)  # the rerun sent nothing that had a row on disk
