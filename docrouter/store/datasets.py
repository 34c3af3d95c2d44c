"""The results and annotations Parquet datasets: explicit Arrow schemas, atomic part files, readers.

Layout under DIR: `results/part-<run_id>-<first_line:08d>.parquet`, the same under `annotations/`, and
the private write-ahead journal in `_journal/`. A part becomes visible only by an atomic rename from a
hidden `.part-*.tmp` name, so pandas, pyarrow and DuckDB (`DIR/results/*.parquet`) never see a partial file.
Timestamps are stored as timestamp[us, tz=UTC], converted from the ISO-8601 strings of the dataclasses.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pyarrow.types as pat

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
        pa.field("source_url", pa.string()),
        pa.field("sent_as", pa.string()),
        pa.field("schema_sha256", pa.string()),
        pa.field("extraction", pa.string()),
        pa.field("reasoning_tokens", pa.int64()),  # nullable: older folders do not have it
        pa.field("truncated", pa.bool_()),
        pa.field("answered_model", pa.string()),
        pa.field("provider", pa.string()),
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
QUARANTINE_DIR = "quarantine"
_TIMESTAMPS = ("started_at", "finished_at", "created_at")


def _defaults(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


# What a column added after a row was written reads as (a row from an older version): the dataclass default.
RESULT_DEFAULTS = _defaults(Result)
ANNOTATION_DEFAULTS = _defaults(Annotation)


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


def tolerant_table(rows: list[dict[str, Any]], schema: pa.Schema, defaults: dict[str, Any]) -> pa.Table:
    """Rows written by any version as a table of `schema`: a column they lack reads as its default, else null
    (that column is then declared nullable in this table, so the rows can still be written)."""
    filled = [{**{k: v for k, v in defaults.items() if k not in row}, **row} for row in rows]
    table = to_table(filled, schema)
    lacking = {f.name for f in schema if not f.nullable and table.column(f.name).null_count}
    if not lacking:
        return table
    relaxed = pa.schema([f.with_nullable(True) if f.name in lacking else f for f in schema])
    return pa.Table.from_pylist([arrow_row(r) for r in filled], schema=relaxed)


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
    """A Result back from a dataset row (timestamps as ISO strings again; a column an older version did not
    write, read as null, is the field's default)."""
    return Result(**_fields(Result, row, RESULT_DEFAULTS))


def annotation_from_row(row: dict[str, Any]) -> Annotation:
    """An Annotation back from a dataset row."""
    return Annotation(**_fields(Annotation, row, ANNOTATION_DEFAULTS))


def _fields(cls: type, row: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: _iso(v) for k, v in row.items() if k in names}
    return {**defaults, **{k: v for k, v in values.items() if v is not None or k not in defaults}}


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


def create_new(path: Path, prepare: Callable[[int], object]) -> int | None:
    """A new file at `path`, made ready by `prepare(fd)` before its name appears (linked from a hidden temp
    name: atomic on local disks and NFS); its open descriptor, or None when `path` exists already."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        prepare(fd)
        os.link(temp, path)
    except FileExistsError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    finally:
        temp.unlink(missing_ok=True)
    return fd


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


def warn(message: str, _said: set[str] = set()) -> None:  # noqa: B006 (the set remembers what was said)
    """A one-line warning on stderr, once per process."""
    if message not in _said:
        _said.add(message)
        print(f"docrouter: warning: {message}", file=sys.stderr)


def damage(path: Path, schema: pa.Schema) -> str | None:
    """Why a part file cannot be read as part of its dataset (junk, truncated, a column of another type), or None."""
    try:
        found = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        return str(exc).split("\n")[0] or type(exc).__name__
    for field in schema:
        index = found.get_field_index(field.name)
        if index >= 0 and not _compatible(found.field(index).type, field.type):
            return f"column {field.name} is {found.field(index).type}, not {field.type}"
    return None


def _compatible(found: pa.DataType, wanted: pa.DataType) -> bool:
    return bool(found == wanted or (pat.is_timestamp(found) and pat.is_timestamp(wanted)) or found == pa.null())


def sound_parts(directory: Path, schema: pa.Schema) -> list[Path]:
    """The part files that can be read; each one that cannot is named in a warning and left out."""
    sound = []
    for path in part_paths(directory):
        problem = damage(path, schema)
        if problem is None:
            sound.append(path)
        else:
            warn(f"skipped unreadable part {path} ({problem}); its rows are not counted until it is repaired")
    return sound


def quarantine(out_dir: Path, directory: Path, schema: pa.Schema) -> list[Path]:
    """Move the unreadable parts of `directory` to DIR/quarantine/<dataset>/, each named in a warning."""
    moved = []
    for path in part_paths(directory):
        problem = damage(path, schema)
        if problem is None:
            continue
        target = out_dir / QUARANTINE_DIR / directory.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target = target.with_name(f"{path.stem}-{uuid.uuid4().hex[:8]}{path.suffix}")
        try:
            os.replace(path, target)
        except FileNotFoundError:
            continue  # another writer of DIR moved it first
        warn(
            f"moved unreadable part {path} to {target} ({problem}); its rows are not counted (a rerun may pay "
            "for their documents again)"
        )
        moved.append(target)
    return moved


def dataset(paths: Sequence[Path], schema: pa.Schema) -> pads.Dataset:
    """The given part files as one dataset read with `schema` (missing columns read as nulls)."""
    return pads.dataset([str(p) for p in paths], schema=schema, format="parquet")


def scan(paths: Sequence[Path], schema: pa.Schema, columns: list[str], filter: Any = None) -> Iterator[pa.RecordBatch]:
    """Record batches of only `columns` (plus `__filename` if asked) from the parts; bounded memory. A part
    damaged inside (its footer was sound) is named in a warning and skipped."""
    if not paths:
        return
    try:
        yield from dataset(paths, schema).to_batches(columns=columns, filter=filter)
        return
    except (OSError, pa.ArrowException):
        pass
    for path in paths:  # again, part by part (rows seen twice are harmless to callers: they index sets)
        try:
            yield from dataset([path], schema).to_table(columns=columns, filter=filter).to_batches()
        except (OSError, pa.ArrowException) as exc:
            _skipped(path, exc)


def _skipped(path: Path, exc: Exception) -> None:
    warn(f"skipped unreadable part {path} ({str(exc).splitlines()[0]}); its rows are not counted")


def read_table(
    paths: Sequence[Path], schema: pa.Schema, filter: Any = None, columns: Sequence[str] | None = None
) -> pa.Table:
    """Every row (matching `filter`) of the parts as one table of `schema` (only `columns`, if given)."""
    names = list(columns) if columns is not None else schema.names
    if not paths:
        return schema.empty_table().select(names)
    try:
        return dataset(paths, schema).to_table(columns=names, filter=filter)
    except (OSError, pa.ArrowException):
        pass
    tables = [schema.empty_table().select(names)]
    for path in paths:  # a part damaged inside: read the others
        try:
            tables.append(dataset([path], schema).to_table(columns=names, filter=filter))
        except (OSError, pa.ArrowException) as exc:
            _skipped(path, exc)
    return pa.concat_tables(tables)
