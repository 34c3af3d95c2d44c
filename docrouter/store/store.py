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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pandas
import pyarrow as pa
import pyarrow.compute as pc

from docrouter.call.columns import to_table as extraction_table
from docrouter.call.extraction import ExtractionSchema
from docrouter.errors import ConfigError, is_terminal
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
    annotation_from_row,
    checked_rows,
    parse_timestamp,
    part_name,
    part_paths,
    quarantine,
    read_table,
    result_from_row,
    scan,
    to_frame,
    write_part,
)
from docrouter.store.extractions import journal_row, partition, write_schema_file
from docrouter.store.journal import JOURNAL_DIR, RunLock, SegmentWriter
from docrouter.vocabulary import Engine

__all__ = [
    *("ANNOTATIONS_SCHEMA", "RESULTS_SCHEMA", "GroupCommit", "Store"),
    *("read_annotations", "read_extractions", "read_results"),
]

Key = tuple[str, str, str]  # (doc_id, model, prompt_sha256)
Item = tuple[Result, Sequence[Annotation], Extraction | None]  # one document's rows in the three datasets
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class _Pending:
    """A recorded row still only in the journal segment starting at `first_line`."""

    first_line: int
    result: Result
    annotations: tuple[Annotation, ...]


class Store:
    """Results and annotations of one run, durable on record; also answers what earlier runs did."""

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
        self._pending: list[_Pending] = []
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
                self._done, self._result_parts = _index_results(self.out_dir)
                self._annotation_parts = _index_annotations(self.out_dir)
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
            for result, annotations, _ in items:
                self._pending.append(_Pending(self._writer.first_line, result, tuple(annotations)))
                if _answered(result.status, result.truncated):
                    self._done.add(_key(result))
            due = self._clock() - self._last_flush >= self.flush_seconds
            if self._writer.lines >= self.flush_every or due:
                self._flush()

    def find_ok(self, doc_id: str, model: str, prompt_sha256: str) -> Result | None:
        """The latest ok row for this content, model and prompt (from this run or a stored part)."""
        with self._mutex:
            for pending in reversed(self._pending):
                if pending.result.status == "ok" and _key(pending.result) == (doc_id, model, prompt_sha256):
                    return pending.result
            wanted = (
                (pc.field("doc_id") == doc_id)
                & (pc.field("model") == model)
                & (pc.field("prompt_sha256") == prompt_sha256)
                & (pc.field("status") == "ok")
            )
            table = read_table(self._result_parts.get(doc_id, ()), RESULTS_SCHEMA, wanted)
        if table.num_rows == 0:
            return None
        return result_from_row(table.sort_by([("finished_at", "descending")]).slice(0, 1).to_pylist()[0])

    def annotations_for(self, doc_id: str) -> list[Annotation]:
        """The document's file annotations, the latest per file_hash across runs, oldest first."""
        with self._mutex:
            paths = self._annotation_parts.get(doc_id, ())
            table = read_table(paths, ANNOTATIONS_SCHEMA, pc.field("doc_id") == doc_id)
            found = [annotation_from_row(row) for row in table.to_pylist()]
            found += [a for p in self._pending for a in p.annotations if a.doc_id == doc_id]
        latest: dict[str, Annotation] = {}
        for annotation in sorted(found, key=_created):
            latest[annotation.file_hash] = annotation
        return sorted(latest.values(), key=_created)

    def flush(self) -> None:
        """Compact the journal tail into new Parquet parts (atomically) and forget it."""
        with self._mutex:
            self._flush()

    def _flush(self) -> None:
        self._last_flush = self._clock()
        if not self._pending:
            return
        self._writer.rotate()
        with _writing(self.out_dir):
            compact_run(self.out_dir, self.run_id)
        for pending in self._pending:
            name = part_name(self.run_id, pending.first_line)
            _note(self._result_parts, pending.result.doc_id, self.out_dir / RESULTS_DIR / name)
            for annotation in pending.annotations:
                _note(self._annotation_parts, annotation.doc_id, self.out_dir / ANNOTATIONS_DIR / name)
        self._pending.clear()

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


def _created(annotation: Annotation) -> datetime:
    return parse_timestamp(annotation.created_at)


def _key(result: Result) -> Key:
    return (result.doc_id, result.model, result.prompt_sha256)


def _note(index: dict[str, tuple[Path, ...]], doc_id: str, path: Path) -> None:
    """Remember that `path` holds rows of `doc_id` (parts are few per document; tuples keep 100k small)."""
    paths = index.get(doc_id, ())
    if path not in paths:
        index[doc_id] = (*paths, path)


def _answered(status: object, truncated: object) -> bool:
    """Done for good: ok and not cut by the length limit (a truncated answer is answered again by a rerun;
    older folders have no `truncated` column, read as null)."""
    return status == "ok" and not truncated


def _index_results(out_dir: Path) -> tuple[set[Key], dict[str, tuple[Path, ...]]]:
    """The ok keys and the parts holding each document, from four columns of the parts and journal tails."""
    done: set[Key] = set()
    where: dict[str, tuple[Path, ...]] = {}
    tail = read_tail(out_dir)
    parts = part_paths(out_dir / RESULTS_DIR)
    files = {str(p): p for p in parts}
    columns = ["doc_id", "model", "prompt_sha256", "status", "truncated", "__filename"]
    for doc_id, model, prompt, status, truncated, filename in _rows(scan(parts, RESULTS_SCHEMA, columns)):
        if _answered(status, truncated):
            done.add((doc_id, sys.intern(model), sys.intern(prompt)))  # a few models and prompts, 100k rows
        _note(where, doc_id, files[filename])
    for row in journal_rows(RESULTS, parts, tail):
        key = (row.get("doc_id"), row.get("model"), row.get("prompt_sha256"))
        if _answered(row.get("status"), row.get("truncated")) and all(isinstance(k, str) for k in key):
            done.add(cast(Key, key))
    return done, where


def _index_annotations(out_dir: Path) -> dict[str, tuple[Path, ...]]:
    """The annotation parts holding each document."""
    where: dict[str, tuple[Path, ...]] = {}
    parts = part_paths(out_dir / ANNOTATIONS_DIR)
    files = {str(p): p for p in parts}
    for doc_id, filename in _rows(scan(parts, ANNOTATIONS_SCHEMA, ["doc_id", "__filename"])):
        _note(where, doc_id, files[filename])
    return where


def _rows(batches: Iterable[pa.RecordBatch]) -> Iterable[tuple[Any, ...]]:
    for batch in batches:
        yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)


def read_results(out_dir: Path, columns: Sequence[str] | None = None) -> pandas.DataFrame:
    """Every results row in DIR (parts, plus journal rows not compacted yet), with the explicit schema.

    Pass `columns` to read only those (a report of 100k rows needs no `content`)."""
    return to_frame(read_dataset(Path(out_dir), RESULTS, columns))


def terminal_failures(out_dir: Path) -> set[Key]:
    """(doc_id, model, prompt_sha256) whose latest row (by finished_at) is a terminal failure (errors.is_terminal).

    Read-only, over the parts and the journals not compacted yet; a rerun leaves these documents alone."""
    columns = ["doc_id", "model", "prompt_sha256", "status", "error_type"]
    table = read_dataset(Path(out_dir), RESULTS, [*columns, "finished_at"]).sort_by("finished_at").select(columns)
    latest: dict[Key, bool] = {}
    for doc_id, model, prompt, status, error_type in _rows(table.to_batches()):
        latest[(doc_id, model, prompt)] = status != "ok" and is_terminal(error_type)
    return {key for key, terminal in latest.items() if terminal}


def read_extractions(out_dir: Path, schema_sha256: str) -> pandas.DataFrame:
    """Every extraction in DIR against one schema (parts, plus journal rows not compacted yet)."""
    return to_frame(read_dataset(Path(out_dir), extractions_kind(Path(out_dir), schema_sha256)))


def read_annotations(out_dir: Path) -> pandas.DataFrame:
    """Every annotations row in DIR, with the explicit schema."""
    return to_frame(read_dataset(Path(out_dir), ANNOTATIONS))


@dataclass(frozen=True)
class History:
    """What earlier runs left in DIR that decisions depend on, read once (no lock: `plan` reads it too).

    A run reads it at its start and keeps it: its estimates stay what `plan` said for the same DIR."""

    done: frozenset[Key] = frozenset()  # ok for (doc_id, model, prompt)
    answered: frozenset[tuple[str, str]] = frozenset()  # (doc_id, path) with an ok row for this model/prompt
    failed: frozenset[Key] = frozenset()  # the latest row is a terminal failure
    annotated: frozenset[str] = frozenset()  # doc_ids with a stored parse
    answer_tokens: tuple[int, ...] = ()  # completion tokens of paid ok answers for this model and prompt
    answers: Mapping[str, tuple[str, Engine | None]] = field(default_factory=dict)  # doc_id -> (path, engine), ok


def read_history(out_dir: str | Path | None, model: str, prompt_sha256: str) -> History:
    """The History of DIR for `model` and `prompt_sha256` (empty when DIR holds nothing yet)."""
    if not out_dir or not (Path(out_dir) / RESULTS_DIR).is_dir():
        return History()
    out = Path(out_dir)
    columns = ["path", "doc_id", "model", "prompt_sha256", "status", "truncated", "attempts", "completion_tokens"]
    done: set[Key] = set()
    answered: set[tuple[str, str]] = set()
    tokens: list[int] = []
    answers: dict[str, tuple[str, Engine | None]] = {}
    table = read_dataset(out, RESULTS, [*columns, "engine"])
    rows = _rows(table.to_batches())
    for path, doc_id, row_model, prompt, status, truncated, attempts, completion, engine in rows:
        if status != "ok":
            continue
        mine = (row_model, prompt) == (model, prompt_sha256)
        if mine and attempts:  # copies (attempts 0) repeat an answer; they say nothing new about its length
            tokens.append(int(completion or 0))
        if not _answered(status, truncated):
            continue  # a truncated answer is not done: a rerun answers it again, and it is no copy's source
        done.add((doc_id, row_model, prompt))
        if mine:
            answered.add((doc_id, path))  # not the root: an archive moved or mounted elsewhere is the same
            answers.setdefault(doc_id, (path, engine))
    annotated = frozenset(_index_annotations(out)) if (out / ANNOTATIONS_DIR).is_dir() else frozenset()
    failed = frozenset(terminal_failures(out))
    return History(frozenset(done), frozenset(answered), failed, annotated, tuple(tokens), answers)
