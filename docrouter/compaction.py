"""Journal segments into Parquet parts, idempotently, and consistent reads of parts plus journal tails.

A segment's results part is its compaction watermark: it is written last, atomically, under a name that
depends only on the segment, so a crash between "part written" and "segment deleted" is repaired by
deleting the segment, and two processes recovering the same dead run write the same part.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from docrouter.datasets import (
    ANNOTATIONS_DIR,
    ANNOTATIONS_SCHEMA,
    RESULTS_DIR,
    RESULTS_SCHEMA,
    fsync_dir,
    part_name,
    part_paths,
    read_table,
    remove_stale_temps,
    to_table,
    write_part,
)
from docrouter.journal import JOURNAL_DIR, RunLock, Segment, list_segments, locked_run_ids, read_segment

Entry = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """One of the two datasets: where its parts live, its schema, and its rows in a journal entry."""

    directory: str
    schema: pa.Schema
    rows: Callable[[Entry], list[dict[str, Any]]]


RESULTS = Kind(RESULTS_DIR, RESULTS_SCHEMA, lambda entry: [entry["result"]])
ANNOTATIONS = Kind(ANNOTATIONS_DIR, ANNOTATIONS_SCHEMA, lambda entry: list(entry.get("annotations") or ()))
_WRITE_ORDER = (ANNOTATIONS, RESULTS)  # results last: its part marks the segment as compacted


def compact_segment(out_dir: Path, segment: Segment) -> None:
    """Write the segment's rows as parts (unless already done), then delete the segment."""
    name = part_name(segment.run_id, segment.first_line)
    if not (out_dir / RESULTS_DIR / name).exists():
        entries = read_segment(segment.path)
        for kind in _WRITE_ORDER:
            rows = [row for entry in entries for row in kind.rows(entry)]
            # A dataset with no rows yet still gets one (empty) part: DuckDB's read_parquet('.../*.parquet')
            # refuses a glob that matches nothing, and pandas would read a folder of nothing as no columns.
            if rows or not part_paths(out_dir / kind.directory):
                write_part(out_dir / kind.directory, name, to_table(rows, kind.schema))
    segment.path.unlink(missing_ok=True)
    fsync_dir(segment.path.parent)


def compact_run(out_dir: Path, run_id: str) -> None:
    """Compact every segment `run_id` left in the journal (the caller holds that run's lock)."""
    for kind in _WRITE_ORDER:
        remove_stale_temps(out_dir / kind.directory, run_id)
    for segment in list_segments(out_dir / JOURNAL_DIR):
        if segment.run_id == run_id:
            compact_segment(out_dir, segment)


def recover(out_dir: Path, run_id: str) -> set[str]:
    """Compact the journals of dead runs (and a reused `run_id`'s leftovers); returns the live runs."""
    journal_dir = out_dir / JOURNAL_DIR
    live: set[str] = set()
    others = {s.run_id for s in list_segments(journal_dir)} | locked_run_ids(journal_dir)
    for other in sorted(others):
        if other == run_id:
            compact_run(out_dir, run_id)  # the caller holds this lock already
            continue
        lock = RunLock.try_acquire(journal_dir, other)
        if lock is None:
            live.add(other)
            continue
        try:
            compact_run(out_dir, other)
        finally:
            lock.release()
    return live


def next_first_line(out_dir: Path, run_id: str) -> int:
    """Where the line numbers of `run_id` continue, so a reused run id never replaces one of its parts."""
    prefix = f"part-{run_id}-"
    end = 0
    for path in part_paths(out_dir / RESULTS_DIR):
        first = path.name[len(prefix) : -len(".parquet")]
        if path.name.startswith(prefix) and first.isdigit():
            end = max(end, int(first) + pq.read_metadata(path).num_rows)
    return end


def journal_rows(kind: Kind, parts: list[Path], tail: list[tuple[Segment, list[Entry]]]) -> list[dict]:
    """Rows of the segments read in `tail` that are not in `parts` (listed after reading the segments)."""
    names = {p.name for p in parts}
    return [
        row
        for segment, entries in tail
        if part_name(segment.run_id, segment.first_line) not in names
        for entry in entries
        for row in kind.rows(entry)
    ]


def read_tail(out_dir: Path) -> list[tuple[Segment, list[Entry]]]:
    """Every journal segment's entries, read before the parts are listed (so no row is counted twice)."""
    return [(segment, read_segment(segment.path)) for segment in list_segments(out_dir / JOURNAL_DIR)]


def read_dataset(out_dir: Path, kind: Kind, columns: Sequence[str] | None = None) -> pa.Table:
    """Every row of a dataset (only `columns`, if given): its parts, plus journal rows not compacted yet."""
    tail = read_tail(out_dir)
    parts = part_paths(out_dir / kind.directory)
    names = list(columns) if columns is not None else kind.schema.names
    stored = read_table(parts, kind.schema, columns=names)
    pending = journal_rows(kind, parts, tail)
    return pa.concat_tables([stored, to_table(pending, kind.schema).select(names)]) if pending else stored
