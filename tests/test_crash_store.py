"""kill -9 a writing process at seeded points, rerun, and count: nothing recorded is lost or written twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from docrouter.store.store import ANNOTATIONS_SCHEMA, RESULTS_SCHEMA, Store, read_annotations, read_results

DOCUMENTS = 40
MODEL, PROMPT = "m/model", "p" * 64

# A miniature run: skip what is done, record the rest; print after each record() has returned.
CHILD = """
import sys
from pathlib import Path
from docrouter.results import Annotation, Result
from docrouter.store.store import Store

out, run_id, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with Store(out, run_id, flush_every=4, flush_seconds=3600.0) as store:
    done = store.done_keys()
    for n in range(count):
        doc_id = f"{n:064x}"
        if (doc_id, "m/model", "p" * 64) in done:
            continue
        stamp = "2025-03-01T10:00:00.000+00:00"
        result = Result(
            run_id=run_id, doc_id=doc_id, path=f"d/{n}.pdf", source_root="/src", size_bytes=n,
            mime_type="application/pdf", kind="pdf", pages=1, engine="mistral-ocr", engine_reason="scanned",
            model="m/model", prompt_sha256="p" * 64,
            status="ok", error_type=None, error_message=None, attempts=1, est_cost_usd=0.002, cost_usd=0.002,
            prompt_tokens=10, completion_tokens=5, generation_id=f"g{n}", content="x" * 5000, finish_reason="stop",
            started_at=stamp, finished_at=stamp,
        )
        ocr = Annotation(doc_id=doc_id, file_hash=f"h{n}", name=f"{n}.pdf", engine="mistral-ocr", content="[]",
                         run_id=run_id, created_at=stamp)
        store.record(result, [ocr])
        print(f"recorded {n}", flush=True)
"""


def run_child(out: Path, run_id: str, kill_after: int | None) -> set[int]:
    """Start a writer; SIGKILL it once it has reported `kill_after` records (None: let it finish).

    Returns every document whose record() returned, as the child reported it before it ended."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out), run_id, str(DOCUMENTS)], stdout=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(60, child.kill)  # never hang the suite on a stuck child
    watchdog.start()
    recorded: set[int] = set()
    try:
        assert child.stdout is not None
        for line in child.stdout:  # after the kill, drains what the child printed before it died
            recorded.add(int(line.split()[1]))
            if len(recorded) == kill_after:
                os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        watchdog.cancel()
        assert child.stdout is not None
        child.stdout.close()
    if kill_after is None:
        assert child.returncode == 0
    return recorded


@pytest.mark.slow
def test_kill_9_at_random_points_then_rerun_loses_nothing_and_pays_nothing_twice(tmp_path: Path) -> None:
    rng = random.Random(20250301)
    recorded_by: dict[int, str] = {}
    for attempt in range(5):
        run_id = f"run-{attempt}"
        for n in run_child(tmp_path, run_id, kill_after=rng.randint(1, 9)):
            assert n not in recorded_by, f"document {n} was recorded again by {run_id}"
            recorded_by[n] = run_id
        # every record() that returned is stored exactly once, also before any rerun compacts it
        stored = read_results(tmp_path)
        assert stored["doc_id"].is_unique
        assert {f"{n:064x}" for n in recorded_by} <= set(stored["doc_id"])
        assert_every_visible_part_is_whole(tmp_path)
    for n in run_child(tmp_path, "run-final", kill_after=None):
        assert n not in recorded_by
        recorded_by[n] = "run-final"

    with Store(tmp_path, "check") as store:
        assert store.done_keys() == {(f"{n:064x}", MODEL, PROMPT) for n in range(DOCUMENTS)}
    stored = read_results(tmp_path)
    assert len(stored) == DOCUMENTS and stored["doc_id"].is_unique
    owners = dict(zip(stored["doc_id"], stored["run_id"], strict=True))
    assert all(owners[f"{n:064x}"] == run_id for n, run_id in recorded_by.items())
    assert len(read_annotations(tmp_path)) == DOCUMENTS
    query = f"SELECT count(*) FROM read_parquet('{tmp_path}/results/*.parquet')"
    assert duckdb.sql(query).fetchall() == [(DOCUMENTS,)]
    assert [p.name for p in (tmp_path / "_journal").iterdir()] == []


def assert_every_visible_part_is_whole(out: Path) -> None:
    for directory, schema in (("results", RESULTS_SCHEMA), ("annotations", ANNOTATIONS_SCHEMA)):
        for part in (out / directory).glob("*.parquet"):
            assert not part.name.startswith((".", "_"))
            assert pq.read_table(part).schema.equals(schema)
