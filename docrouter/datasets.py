"""The results and annotations Parquet datasets: explicit Arrow schemas, atomic part files, readers.

Layout under DIR: `results/part-<run_id>-<first_line:08d>.parquet`, the same under `annotations/`, and
the private write-ahead journal in `_journal/`. A part becomes visible only by an atomic rename from a
hidden `.part-*.tmp` name, so pandas, pyarrow and DuckDB (`DIR/results/*.parquet`) never see a partial file.
Timestamps are stored as timestamp[us, tz=UTC], converted from the ISO-8601 strings of the dataclasses.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from docrouter.results import Annotation, Result

TIMESTAMP = pa.timestamp("us", tz="UTC")

RESULTS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("source_root", pa.string(), nullable=False),
        pa.field("size_bytes", pa.int64(), nullable=False),
        pa.field("mime_type", pa.string(), nullable=False),
        pa.field("kind", pa.string()),
        pa.field("pages", pa.int64()),
        pa.field("engine", pa.string()),
        pa.field("engine_reason", pa.string()),
        pa.field("model", pa.string(), nullable=False),
        pa.field("prompt_sha256", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error_type", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("attempts", pa.int64(), nullable=False),
        pa.field("est_cost_usd", pa.float64(), nullable=False),
        pa.field("cost_usd", pa.float64(), nullable=False),
        pa.field("prompt_tokens", pa.int64(), nullable=False),
        pa.field("completion_tokens", pa.int64(), nullable=False),
        pa.field("generation_id", pa.string()),
        pa.field("content", pa.string()),
        pa.field("finish_reason", pa.string()),
        pa.field("started_at", TIMESTAMP, nullable=False),
        pa.field("finished_at", TIMESTAMP, nullable=False),
        pa.field("parts", pa.int64(), nullable=False),
    ]
)

ANNOTATIONS_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("file_hash", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("engine", pa.string(), nullable=False),
        pa.field("content", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("created_at", TIMESTAMP, nullable=False),
    ]
)

RESULTS_DIR = "results"
ANNOTATIONS_DIR = "annotations"
_TIMESTAMPS = ("started_at", "finished_at", "created_at")


def parse_timestamp(value: str) -> datetime:
    """An aware UTC datetime from an ISO-8601 string (a naive one is taken as UTC)."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def arrow_row(fields: dict[str, Any]) -> dict[str, Any]:
    """A dataclass's fields (as JSON-able values) with the timestamps as datetimes, ready for Arrow."""
    return {k: parse_timestamp(v) if k in _TIMESTAMPS else v for k, v in fields.items()}


def to_table(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Dataclass fields (as in `dataclasses.asdict`) as a table of exactly `schema`; raises on a wrong type."""
    return pa.Table.from_pylist([arrow_row(r) for r in rows], schema=schema)


def checked_rows(rows: list[dict[str, Any]], schema: pa.Schema) -> list[dict[str, Any]]:
    """`rows` as they can be stored: a wrong type raises; a lone surrogate (a broken escape in an answer)
    becomes "?" rather than costing the paid answer."""
    try:
        to_table(rows, schema)
        return rows
    except UnicodeEncodeError:
        cleaned = [{k: _utf8(v) for k, v in row.items()} for row in rows]
        to_table(cleaned, schema)
        return cleaned


def _utf8(value: Any) -> Any:
    return value.encode("utf-8", "replace").decode("utf-8") if isinstance(value, str) else value


def _iso(value: Any) -> Any:
    """A stored timestamp as ISO text again (milliseconds, as written, unless it has finer digits)."""
    if not isinstance(value, datetime):
        return value
    return value.isoformat(timespec="milliseconds" if value.microsecond % 1000 == 0 else "microseconds")


def result_from_row(row: dict[str, Any]) -> Result:
    """A Result back from a dataset row (timestamps as ISO strings again)."""
    names = {f.name for f in dataclasses.fields(Result)}
    return Result(**{k: _iso(v) for k, v in row.items() if k in names})


def annotation_from_row(row: dict[str, Any]) -> Annotation:
    """An Annotation back from a dataset row."""
    names = {f.name for f in dataclasses.fields(Annotation)}
    return Annotation(**{k: _iso(v) for k, v in row.items() if k in names})


def part_name(run_id: str, first_line: int) -> str:
    """The part covering the journal lines of `run_id` from `first_line`: the same name on every retry."""
    return f"part-{run_id}-{first_line:08d}.parquet"


def write_part(directory: Path, name: str, table: pa.Table) -> None:
    """Write `table` as directory/name atomically: hidden temp file, fsync, rename, fsync the directory."""
    temp = directory / f".{name}.{uuid.uuid4().hex}.tmp"  # unique: two recoverers may write the same part
    try:
        with temp.open("wb") as handle:
            pq.write_table(table, handle, compression="zstd")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, directory / name)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(directory: Path, run_id: str) -> None:
    """Delete temp files a killed writer of `run_id` left (only its lock holder writes them)."""
    prefix = f".part-{run_id}-"
    for temp in directory.glob(f"{prefix}*.tmp"):
        if temp.name[len(prefix) :].split(".", 1)[0].isdigit():
            temp.unlink(missing_ok=True)


def to_frame(table: pa.Table) -> pandas.DataFrame:
    """A pandas frame whose dtypes do not depend on nulls: integers as nullable Int64."""
    return table.to_pandas(types_mapper={pa.int64(): pandas.Int64Dtype()}.get)


def part_paths(directory: Path) -> list[Path]:
    """The visible part files of a dataset directory, oldest name first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("part-*.parquet") if p.is_file())


def dataset(paths: Sequence[Path], schema: pa.Schema) -> pads.Dataset:
    """The given part files as one dataset read with `schema` (missing columns read as nulls)."""
    return pads.dataset([str(p) for p in paths], schema=schema, format="parquet")


def scan(paths: Sequence[Path], schema: pa.Schema, columns: list[str], filter: Any = None) -> Iterator[pa.RecordBatch]:
    """Record batches of only `columns` (plus `__filename` if asked) from the parts; bounded memory."""
    if not paths:
        return iter(())
    return dataset(paths, schema).to_batches(columns=columns, filter=filter)


def read_table(
    paths: Sequence[Path], schema: pa.Schema, filter: Any = None, columns: Sequence[str] | None = None
) -> pa.Table:
    """Every row (matching `filter`) of the parts as one table of `schema` (only `columns`, if given)."""
    names = list(columns) if columns is not None else schema.names
    if not paths:
        return schema.empty_table().select(names)
    return dataset(paths, schema).to_table(columns=names, filter=filter)
