"""Recovery of journals left by killed runs, one crash window at a time (the SIGKILL test is in test_crash_store)."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pyarrow.parquet as pq

from docrouter.store.datasets import ANNOTATIONS_SCHEMA, RESULTS_SCHEMA, part_name, to_table, write_part
from docrouter.store.journal import SegmentWriter
from docrouter.store.store import Store, read_annotations, read_results
from test_store import make_annotation, make_result

DEAD = "dead-run"


def leave_journal(out: Path, count: int, *, torn: bytes = b"") -> Path:
    """The journal a run killed after `count` records leaves behind (no lock file: the run is gone)."""
    journal = out / "_journal"
    for name in ("_journal", "results", "annotations"):
        (out / name).mkdir(parents=True, exist_ok=True)
    writer = SegmentWriter(journal, DEAD, 0)
    for n in range(count):
        annotation = make_annotation(n, f"h{n}", "2025-03-01T10:00:00Z", run_id=DEAD)
        entry = {"result": dataclasses.asdict(make_result(n, DEAD)), "annotations": [dataclasses.asdict(annotation)]}
        writer.append(entry)
    writer.rotate()
    segment = journal / f"{DEAD}-00000000.jsonl"
    with segment.open("ab") as handle:
        handle.write(torn)
    return segment


def rows_of(n: int) -> list[dict]:
    return [dataclasses.asdict(make_result(i, DEAD)) for i in range(n)]


def test_a_torn_last_journal_line_is_ignored_on_recovery(tmp_path: Path) -> None:
    segment = leave_journal(tmp_path, 3, torn=b'{"result": {"run_id": "dead-run", "doc_')
    with Store(tmp_path, "run-b") as store:
        assert len(store.done_keys()) == 3
    assert sorted(read_results(tmp_path)["doc_id"]) == [f"{n:064x}" for n in range(3)]
    assert not segment.exists()
    assert (tmp_path / "results" / part_name(DEAD, 0)).exists()


def test_a_crash_after_the_part_was_written_does_not_duplicate_its_rows(tmp_path: Path) -> None:
    segment = leave_journal(tmp_path, 3)
    annotations = [dataclasses.asdict(make_annotation(n, f"h{n}", "2025-03-01T10:00:00Z", DEAD)) for n in range(3)]
    write_part(tmp_path / "annotations", part_name(DEAD, 0), to_table(annotations, ANNOTATIONS_SCHEMA))
    write_part(tmp_path / "results", part_name(DEAD, 0), to_table(rows_of(3), RESULTS_SCHEMA))
    assert len(read_results(tmp_path)) == 3  # readers never count a compacted segment twice
    Store(tmp_path, "run-b").close()
    assert len(read_results(tmp_path)) == 3
    assert len(read_annotations(tmp_path)) == 3
    assert not segment.exists()


def test_a_crash_between_the_annotation_and_result_parts_is_completed_once(tmp_path: Path) -> None:
    leave_journal(tmp_path, 2)
    annotations = [dataclasses.asdict(make_annotation(n, f"h{n}", "2025-03-01T10:00:00Z", DEAD)) for n in range(2)]
    write_part(tmp_path / "annotations", part_name(DEAD, 0), to_table(annotations, ANNOTATIONS_SCHEMA))
    Store(tmp_path, "run-b").close()
    assert len(read_results(tmp_path)) == 2
    assert len(read_annotations(tmp_path)) == 2


def test_temp_files_of_a_dead_writer_are_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    leave_journal(tmp_path, 1)
    dead_temp = tmp_path / "results" / f".{part_name(DEAD, 7)}.0a1b.tmp"
    dead_temp.write_bytes(b"PAR1 half")
    with Store(tmp_path, "live-run"):
        live_temp = tmp_path / "results" / f".{part_name('live-run', 0)}.0a1b.tmp"
        live_temp.write_bytes(b"PAR1 half")
        Store(tmp_path, "run-c").close()
        assert live_temp.exists()
        live_temp.unlink()
    assert not dead_temp.exists()


def test_a_lock_file_left_without_a_journal_is_removed(tmp_path: Path) -> None:
    (tmp_path / "_journal").mkdir()
    (tmp_path / "_journal" / "gone.lock").write_bytes(b"")
    Store(tmp_path, "run-b").close()
    assert list((tmp_path / "_journal").iterdir()) == []


def test_two_stores_recovering_one_dead_run_at_once_store_each_row_once(tmp_path: Path) -> None:
    leave_journal(tmp_path, 50)
    stores: list[Store] = []
    threads = [threading.Thread(target=lambda r=run: stores.append(Store(tmp_path, r))) for run in ("b1", "b2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [len(store.done_keys()) for store in stores] == [50, 50]
    for store in stores:
        store.close()
    assert len(read_results(tmp_path)) == 50
    assert pq.read_table(tmp_path / "results" / part_name(DEAD, 0)).num_rows == 50
