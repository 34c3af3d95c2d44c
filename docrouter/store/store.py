"""The durable store of a run: every recorded row is fsynced to a journal before `record` returns.

The journal is compacted into Parquet parts every `flush_every` rows or `flush_seconds`, and on close;
a journal left by a killed run is compacted by the next Store opened on the same DIR. Several processes
may write one DIR at once: names carry the run id, and a live run's journal is never touched by others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pandas
import pyarrow as pa

from docrouter.call.columns import to_table as extraction_table
from docrouter.call.extraction import ExtractionSchema
from docrouter.errors import ConfigError
from docrouter.results import Annotation, Extraction, Result
from docrouter.store.compaction import (
    ANNOTATIONS,
    RESULTS,
    compact_run,
    extractions_kind,
    journal_rows,
    next_first_line,
    read_dataset,
    read_tail,
    recover,
)
from docrouter.store.datasets import (
    ANNOTATIONS_DIR,
    ANNOTATIONS_SCHEMA,
    RESULTS_DIR,
    RESULTS_SCHEMA,
    checked_rows,
    part_name,
    part_paths,
    quarantine,
    scan,
    to_frame,
    write_part,
)
from docrouter.store.extractions import journal_row, partition, write_schema_file
from docrouter.store.journal import JOURNAL_DIR, RunLock, SegmentWriter

__all__ = [
    *("ANNOTATIONS_SCHEMA", "RESULTS_SCHEMA", "GroupCommit", "Store"),
    *("read_annotations", "read_extractions", "read_results"),
]

Key = tuple[str, str, str]  # (doc_id, model, prompt_sha256)
Item = tuple[Result, Sequence[Annotation], Extraction | None]  # one document's rows in the three datasets
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class Store:
    """Results and annotations of one run, durable on record; also knows which documents are answered (by any run).

    What earlier runs left that decisions rest on is read by the ledger (docrouter.run.ledger), not here."""

    def __init__(
        self,
        out_dir: Path,
        run_id: str,
        *,
        flush_every: int = 200,
        flush_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        extraction: ExtractionSchema | None = None,
    ) -> None:
        if not _RUN_ID.fullmatch(run_id):
            raise ConfigError(f"run id {run_id!r} must be letters, digits, '.', '_' or '-'")
        self.out_dir = Path(out_dir)
        self.run_id = run_id
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._clock = clock
        self.extraction = extraction
        self._mutex = threading.RLock()
        self._unflushed = 0  # rows recorded since the last compaction (only in the journal)
        self._closed = False
        self._lock = self._open()
        self._last_flush = clock()

    def _open(self) -> RunLock:
        """Take this run's lock, recover dead runs' journals and index what is stored."""
        with _writing(self.out_dir):
            for name in (RESULTS_DIR, ANNOTATIONS_DIR, JOURNAL_DIR):
                (self.out_dir / name).mkdir(parents=True, exist_ok=True)
            lock = RunLock.try_acquire(self.out_dir / JOURNAL_DIR, self.run_id)
        if lock is None:
            raise ConfigError(f"cannot write to {self.out_dir}: run {self.run_id} is already writing there")
        try:
            with _writing(self.out_dir):
                quarantine(self.out_dir, self.out_dir / RESULTS_DIR, RESULTS_SCHEMA)
                quarantine(self.out_dir, self.out_dir / ANNOTATIONS_DIR, ANNOTATIONS_SCHEMA)
                recover(self.out_dir, self.run_id)
                first_line = next_first_line(self.out_dir, self.run_id)
                self._writer = SegmentWriter(self.out_dir / JOURNAL_DIR, self.run_id, first_line)
                if self.extraction is not None:
                    _open_partition(self.out_dir, self.run_id, first_line, self.extraction)
                self._done = _index_results(self.out_dir)
        except BaseException:
            lock.release()
            raise
        return lock

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def done_keys(self) -> set[Key]:
        """(doc_id, model, prompt_sha256) of every ok row: stored, in live journals, or recorded by this run."""
        with self._mutex:
            return set(self._done)

    def record(
        self, result: Result, annotations: Sequence[Annotation] = (), extraction: Extraction | None = None
    ) -> None:
        """Append the row (and its annotations and extraction) to the journal and fsync it; then compact if due."""
        self.record_many([(result, annotations, extraction)])

    def record_many(self, items: Sequence[Item]) -> None:
        """Append several rows with one write and one fsync (a group commit); then compact if due."""
        entries = _entries(items, self.extraction)
        with self._mutex:
            if self._closed:
                raise RuntimeError(f"store for run {self.run_id} is closed")
            with _writing(self.out_dir):
                self._writer.append_many(entries)
            self._unflushed += len(items)
            for result, _, _ in items:
                if answered_for_good(result.status, result.truncated):
                    self._done.add(_key(result))
            due = self._clock() - self._last_flush >= self.flush_seconds
            if self._writer.lines >= self.flush_every or due:
                self._flush()

    def flush(self) -> None:
        """Compact the journal tail into new Parquet parts (atomically) and forget it."""
        with self._mutex:
            self._flush()

    def _flush(self) -> None:
        self._last_flush = self._clock()
        if not self._unflushed:
            return
        self._writer.rotate()
        with _writing(self.out_dir):
            compact_run(self.out_dir, self.run_id)
        self._unflushed = 0

    def close(self) -> None:
        """Flush, then remove this run's journal and lock; a no-op when already closed."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            try:
                self._flush()
            finally:
                self._writer.rotate()
                self._lock.release()


class GroupCommit:
    """Rows recorded by concurrent coroutines share one journal write and fsync, made off the event loop.

    `record` returns once the row is durable, as `Store.record` does; what changes is that the event loop
    never waits on a disk, and a burst of answers costs one fsync instead of one each.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: list[tuple[Item, asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def record(
        self, result: Result, annotations: Sequence[Annotation] = (), extraction: Extraction | None = None
    ) -> None:
        """Queue the row and wait until it is fsynced (a cancelled caller's row is still written)."""
        done = asyncio.get_running_loop().create_future()
        self._queue.append(((result, annotations, extraction), done))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._write(batch)
            except BaseException:
                # Cancelled (Ctrl-C, a stopped run): the rows still queued are paid answers, so write them
                # here, on the loop; the group in the worker thread finishes writing on its own.
                queued, self._queue = self._queue, []
                if queued:
                    self.store.record_many([item for item, _ in queued])
                for _, done in batch + queued:
                    done.cancel()
                raise

    async def _write(self, batch: list[tuple[Item, asyncio.Future[None]]]) -> None:
        """All rows in one group; if a row is refused (nothing was written), each row alone, so one bad row
        cannot cost the others their durability. A disk failure is run-fatal for every row."""
        try:
            await asyncio.to_thread(self.store.record_many, [item for item, _ in batch])
        except ConfigError as exc:
            _settle(batch, exc)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch, exc)
                return
            for item in batch:
                await self._write([item])
        else:
            _settle(batch, None)


def _settle(batch: Sequence[tuple[Item, asyncio.Future[None]]], error: Exception | None) -> None:
    for _, done in batch:
        if done.done():
            continue  # its caller was cancelled; the row was written all the same
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


def _entries(items: Sequence[Item], schema: ExtractionSchema | None) -> list[dict[str, Any]]:
    """Journal lines; checked here (one Arrow conversion for all), so that a wrong type fails now and never
    later, in compaction or recovery."""
    rows = checked_rows([dataclasses.asdict(result) for result, _, _ in items], RESULTS_SCHEMA)
    entries = []
    for row, (_, found, extraction) in zip(rows, items, strict=True):
        extras = checked_rows([dataclasses.asdict(a) for a in found], ANNOTATIONS_SCHEMA)
        entry: dict[str, Any] = {"result": row, "annotations": extras}
        if extraction is not None:
            entry["extractions"] = [_checked_extraction(extraction, schema)]
        entries.append(entry)
    return entries


def _checked_extraction(extraction: Extraction, schema: ExtractionSchema | None) -> dict[str, Any]:
    if schema is None or extraction.schema_sha256 != schema.sha256:
        raise ValueError(f"an extraction for schema {extraction.schema_sha256[:12]} in a store opened without it")
    row = journal_row(extraction)
    extraction_table([row], schema)
    return row


def _open_partition(out_dir: Path, run_id: str, first_line: int, schema: ExtractionSchema) -> None:
    """The schema's partition with its _schema.json and, if it has no part yet, an empty one (DuckDB refuses
    a glob that matches nothing); the run's first real part of the partition replaces it under that name."""
    folder = partition(out_dir, schema.sha256)
    write_schema_file(folder, schema)
    if not part_paths(folder):
        write_part(folder, part_name(run_id, first_line), extraction_table([], schema))


@contextmanager
def _writing(out_dir: Path) -> Iterator[None]:
    """Turns an OSError while writing DIR into the run-fatal ConfigError (unwritable, disk full, DIR gone)."""
    try:
        yield
    except OSError as exc:
        raise ConfigError(f"cannot write to {out_dir}: {exc.strerror or exc}") from exc


def _key(result: Result) -> Key:
    return (result.doc_id, result.model, result.prompt_sha256)


def answered_for_good(status: object, truncated: object) -> bool:
    """Done for good: ok and not cut by the length limit (a truncated answer is answered again by a rerun;
    older folders have no `truncated` column, read as null)."""
    return status == "ok" and not truncated


def _index_results(out_dir: Path) -> set[Key]:
    """The answered keys, from five columns of the parts and the journal tails."""
    done: set[Key] = set()
    tail = read_tail(out_dir)
    parts = part_paths(out_dir / RESULTS_DIR)
    columns = ["doc_id", "model", "prompt_sha256", "status", "truncated"]
    for doc_id, model, prompt, status, truncated in _rows(scan(parts, RESULTS_SCHEMA, columns)):
        if answered_for_good(status, truncated):
            done.add((doc_id, sys.intern(model), sys.intern(prompt)))  # a few models and prompts, 100k rows
    for row in journal_rows(RESULTS, parts, tail):
        key = (row.get("doc_id"), row.get("model"), row.get("prompt_sha256"))
        if answered_for_good(row.get("status"), row.get("truncated")) and all(isinstance(k, str) for k in key):
            done.add(cast(Key, key))
    return done


def _rows(batches: Iterable[pa.RecordBatch]) -> Iterable[tuple[Any, ...]]:
    for batch in batches:
        yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)


def read_results(out_dir: Path, columns: Sequence[str] | None = None) -> pandas.DataFrame:
    """Every results row in DIR (parts, plus journal rows not compacted yet), with the explicit schema.

    Pass `columns` to read only those (a report of 100k rows needs no `content`)."""
    return to_frame(read_dataset(Path(out_dir), RESULTS, columns))


def read_extractions(out_dir: Path, schema_sha256: str) -> pandas.DataFrame:
    """Every extraction in DIR against one schema (parts, plus journal rows not compacted yet)."""
    return to_frame(read_dataset(Path(out_dir), extractions_kind(Path(out_dir), schema_sha256)))


def read_annotations(out_dir: Path) -> pandas.DataFrame:
    """Every annotations row in DIR, with the explicit schema."""
    return to_frame(read_dataset(Path(out_dir), ANNOTATIONS))
