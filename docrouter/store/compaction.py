"""Journal segments into Parquet parts, idempotently, and consistent reads of parts plus journal tails.

A segment's results part is its compaction watermark: it is written last, atomically, under a name that
depends only on the segment, so a crash between "part written" and "segment deleted" is repaired by
deleting the segment, and two processes recovering the same dead run write the same part.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from docrouter.call.columns import arrow_schema
from docrouter.call.columns import to_table as extraction_table
from docrouter.store.datasets import (
    ANNOTATION_DEFAULTS,
    ANNOTATIONS_DIR,
    ANNOTATIONS_SCHEMA,
    QUARANTINE_DIR,
    RESULT_DEFAULTS,
    RESULTS_DIR,
    RESULTS_SCHEMA,
    fsync_dir,
    part_name,
    part_paths,
    read_table,
    remove_stale_temps,
    sound_parts,
    tolerant_table,
    warn,
    write_part,
)
from docrouter.store.extractions import partition, partitions, read_schema_file
from docrouter.store.journal import (
    JOURNAL_DIR,
    RunLock,
    Segment,
    list_segments,
    locked_run_ids,
    read_segment,
    read_segment_lines,
)

Entry = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """One dataset (or one schema's partition of extractions): where its parts live, its schema, its rows
    in a journal entry, and how those rows become a table."""

    directory: str
    schema: pa.Schema
    rows: Callable[[Entry], list[dict[str, Any]]]
    defaults: dict[str, Any]  # for columns added after a journal line was written
    convert: Callable[[list[dict[str, Any]]], pa.Table] | None = field(default=None, compare=False)

    def table(self, rows: list[dict[str, Any]]) -> pa.Table:
        """Journal rows as a table of this dataset, whichever version wrote them."""
        if self.convert is not None:  # an extractions partition: values typed by its JSON Schema
            return self.convert(rows)
        return tolerant_table(rows, self.schema, self.defaults)


RESULTS = Kind(RESULTS_DIR, RESULTS_SCHEMA, lambda entry: [entry["result"]], RESULT_DEFAULTS)
ANNOTATIONS = Kind(
    ANNOTATIONS_DIR, ANNOTATIONS_SCHEMA, lambda entry: list(entry.get("annotations") or ()), ANNOTATION_DEFAULTS
)
_WRITE_ORDER = (ANNOTATIONS, RESULTS)  # results last: its part marks the segment as compacted
_GARBLED = (pa.ArrowException, ValueError, TypeError, KeyError, AttributeError)  # a row that is not a row


def extractions_kind(out_dir: Path, schema_sha256: str) -> Kind:
    """One schema's partition of the extractions dataset (its schema read from the partition's _schema.json)."""
    folder = partition(out_dir, schema_sha256)
    schema = read_schema_file(folder)
    return Kind(
        str(folder.relative_to(out_dir)),
        arrow_schema(schema),
        lambda entry: [r for r in _extraction_rows(entry) if r.get("schema_sha256") == schema_sha256],
        {},
        lambda rows: extraction_table(rows, schema),
    )


def _kinds(out_dir: Path, entries: list[Entry]) -> list[Kind]:
    """The datasets a segment writes, in order: extraction partitions and annotations, results last."""
    hashes = sorted({str(r.get("schema_sha256")) for entry in entries for r in _extraction_rows(entry)})
    return [*(extractions_kind(out_dir, h) for h in hashes), *_WRITE_ORDER]


def _extraction_rows(entry: Entry) -> list[dict[str, Any]]:
    """An entry's extractions rows (none from a line written before --schema, or garbled)."""
    rows = entry.get("extractions") if isinstance(entry, dict) else None
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def compact_segment(out_dir: Path, segment: Segment) -> None:
    """Write the segment's rows as parts (unless already done), then delete the segment (a damaged one is kept
    in DIR/quarantine/_journal/, named in a warning with the count of lines that could not be read)."""
    name = part_name(segment.run_id, segment.first_line)
    damaged = 0
    if not (out_dir / RESULTS_DIR / name).exists():
        lines = read_segment_lines(segment.path)
        entries, damaged = _storable(lines.entries)
        damaged += lines.damaged + lines.torn
        for kind in _kinds(out_dir, entries):
            rows = [row for entry in entries for row in kind.rows(entry)]
            # A dataset with no rows yet still gets one (empty) part: DuckDB's read_parquet('.../*.parquet')
            # refuses a glob that matches nothing, and pandas would read a folder of nothing as no columns.
            if rows or not part_paths(out_dir / kind.directory):
                write_part(out_dir / kind.directory, name, kind.table(rows))
    if damaged:
        _set_aside(out_dir, segment, damaged)
    else:
        segment.path.unlink(missing_ok=True)
    fsync_dir(segment.path.parent)


def _storable(entries: list[Entry]) -> tuple[list[Entry], int]:
    """The entries whose rows fit the datasets (a line can be whole JSON and still garbled), and how many not."""
    if _fits_all(entries):
        return entries, 0
    kept = [entry for entry in entries if _fits_all([entry])]
    return kept, len(entries) - len(kept)


def _fits_all(entries: list[Entry]) -> bool:
    """Whether the entries' rows fit both datasets."""
    try:
        return all(_fits_rows(kind, [row for entry in entries for row in kind.rows(entry)]) for kind in _WRITE_ORDER)
    except _GARBLED:
        return False


def _fits_rows(kind: Kind, rows: list[dict[str, Any]]) -> bool:
    try:
        kind.table(rows)
    except _GARBLED:
        return False
    return True


def _set_aside(out_dir: Path, segment: Segment, damaged: int) -> None:
    """Keep a damaged segment (its readable rows are in the parts now) where a person can look at it."""
    target = out_dir / QUARANTINE_DIR / JOURNAL_DIR / segment.path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        segment.path.replace(target)
    except FileNotFoundError:
        return  # another process compacting the same dead run moved it first
    warn(
        f"{segment.path}: {damaged} journal lines could not be read (a crash mid-write, or damage); "
        f"the readable rows are kept, the segment is in {target}"
    )


def compact_run(out_dir: Path, run_id: str) -> None:
    """Compact every segment `run_id` left in the journal (the caller holds that run's lock)."""
    for directory in [*partitions(out_dir), *(out_dir / kind.directory for kind in _WRITE_ORDER)]:
        remove_stale_temps(directory, run_id)
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


def journal_rows(kind: Kind, parts: list[Path], tail: list[tuple[Segment, list[Entry]]]) -> list[dict[str, Any]]:
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


def read_dataset(
    out_dir: Path, kind: Kind, columns: Sequence[str] | None = None, filter: pc.Expression | None = None
) -> pa.Table:
    """Every row of a dataset (only `columns`, if given; only rows matching `filter`, over any column): its
    parts, plus journal rows not compacted yet."""
    tail = read_tail(out_dir)
    parts = sound_parts(out_dir / kind.directory, kind.schema)
    names = list(columns) if columns is not None else kind.schema.names
    stored = read_table(parts, kind.schema, filter, columns=names)
    pending = journal_rows(kind, parts, tail)
    if not pending:
        return stored
    table = _fitting(kind, pending)
    table = table if filter is None else table.filter(filter)
    return pa.concat_tables([stored, table.select(names)], promote_options="default")


def _fitting(kind: Kind, rows: list[dict[str, Any]]) -> pa.Table:
    """Journal rows as a table; a row that does not fit the dataset (garbled) is left out, with a warning."""
    try:
        return kind.table(rows)
    except _GARBLED:
        pass
    kept = [row for row in rows if _fits(kind, row)]
    warn(f"{len(rows) - len(kept)} journal rows in {kind.directory} could not be read; they are not counted")
    return kind.table(kept)


def _fits(kind: Kind, row: dict[str, Any]) -> bool:
    return _fits_rows(kind, [row])
