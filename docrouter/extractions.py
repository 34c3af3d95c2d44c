"""The extractions dataset: one typed Arrow column per top-level schema property, one partition per schema.

Layout: `DIR/extractions/schema_sha256=<hash>/part-<run_id>-<first_line>.parquet` (hive style, so DuckDB's
`hive_partitioning` and `pandas.read_parquet` of one partition both read it), with the schema itself in
`_schema.json` beside the parts (readers skip names starting with "_"), so that a journal left by a killed
run can be compacted by any later process. Types follow the JSON Schema: string, integer -> int64,
number -> float64, boolean -> bool, `format: date-time` -> timestamp (UTC), `format: date` -> date32,
arrays -> list, objects with properties -> struct, enums -> string; what cannot be mapped (anyOf/oneOf of
several types, $ref, allOf, untyped) is stored as JSON text. A column is non-null only when its property is
required and its type excludes null; a property named like a fixed column is prefixed `field_`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import UTC, date
from pathlib import Path
from typing import Any

import pyarrow as pa

from docrouter.extraction import Checked, ExtractionSchema, as_schema, check_reply, parse_date_time
from docrouter.results import Extraction

EXTRACTIONS_DIR = "extractions"
SCHEMA_FILE = "_schema.json"
FIXED_COLUMNS = ("run_id", "doc_id", "path", "model", "prompt_sha256", "schema_sha256")
TIMESTAMP = pa.timestamp("us", tz="UTC")
_FIXED_FIELDS = [pa.field(name, pa.string(), nullable=False) for name in FIXED_COLUMNS]
_SCALARS = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
_SCALARS |= {"timestamp": TIMESTAMP, "date": pa.date32(), "json": pa.string()}


def partition(out_dir: Path, schema_sha256: str) -> Path:
    """The folder of one schema's extractions."""
    return Path(out_dir) / EXTRACTIONS_DIR / f"schema_sha256={schema_sha256}"


def column_names(schema: ExtractionSchema) -> dict[str, str]:
    """Top-level property -> column name (prefixed `field_` where it would collide with a fixed column)."""
    return {name: f"field_{name}" if name in FIXED_COLUMNS else name for name in schema.properties}


def arrow_schema(schema: ExtractionSchema) -> pa.Schema:
    """The explicit Arrow schema of a partition: the fixed columns, then one per top-level property."""
    columns = column_names(schema)
    typed = [_field(columns[name], spec, name in schema.required) for name, spec in schema.properties.items()]
    return pa.schema(_FIXED_FIELDS + typed)


def check_extraction(schema: ExtractionSchema, reply: str) -> Checked:
    """The reply's object validated against the schema, and proven to fit its Arrow columns."""
    checked = check_reply(schema, reply)
    if checked.value is None:
        return checked
    try:
        to_table([_sample(schema, checked.value)], schema)
    except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
        return Checked(None, (f"a value does not fit its column: {exc}"[:300],))
    return checked


def to_table(rows: Iterable[dict[str, Any]], schema: ExtractionSchema) -> pa.Table:
    """Journal rows (the fixed columns and `values`) as a table of the partition's Arrow schema."""
    columns = column_names(schema)
    props = schema.properties
    converted = []
    for row in rows:
        values = row.get("values") or {}
        typed = {columns[name]: _value(values.get(name), spec) for name, spec in props.items()}
        converted.append({**{k: row[k] for k in FIXED_COLUMNS}, **typed})
    return pa.Table.from_pylist(converted, schema=arrow_schema(schema))


def write_schema_file(folder: Path, schema: ExtractionSchema) -> bool:
    """Keep the schema beside its parts (once); True when it was written now."""
    target = folder / SCHEMA_FILE
    if target.exists():
        return False
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{SCHEMA_FILE}.tmp"
    temp.write_text(schema.text, encoding="utf-8")
    temp.replace(target)
    return True


def read_schema_file(folder: Path) -> ExtractionSchema:
    """The schema a partition was written with."""
    return as_schema(json.loads((folder / SCHEMA_FILE).read_text(encoding="utf-8")), str(folder / SCHEMA_FILE))


def partitions(out_dir: Path) -> list[Path]:
    """Every schema's partition folder under DIR/extractions."""
    root = Path(out_dir) / EXTRACTIONS_DIR
    return sorted(p for p in root.glob("schema_sha256=*") if p.is_dir()) if root.is_dir() else []


def journal_row(extraction: Extraction) -> dict[str, Any]:
    """An Extraction as it is journaled (JSON: dates stay strings until compaction types them)."""
    return asdict(extraction)


def _sample(schema: ExtractionSchema, value: dict[str, Any]) -> dict[str, Any]:
    return {**dict.fromkeys(FIXED_COLUMNS, ""), "schema_sha256": schema.sha256, "values": value}


def _field(name: str, spec: Any, required: bool) -> pa.Field:
    return pa.field(name, _arrow_type(spec), nullable=not (required and _excludes_null(spec)))


def _arrow_type(spec: Any) -> pa.DataType:
    kind, inner = _kind(spec)
    if kind == "list":
        return pa.list_(_field("item", inner["items"], True))
    if kind == "struct":
        required = set(inner.get("required") or ())
        return pa.struct([_field(k, v, k in required) for k, v in inner["properties"].items()])
    return _SCALARS[kind]


def _value(value: Any, spec: Any) -> Any:
    """A JSON value as its column stores it."""
    kind, inner = _kind(spec)
    if value is None:
        return None
    if kind == "json":
        return json.dumps(value, ensure_ascii=False)
    if kind == "timestamp":
        parsed = parse_date_time(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "list":
        return [_value(item, inner["items"]) for item in value]
    if kind == "struct":
        return {k: _value(value.get(k), v) for k, v in inner["properties"].items()}
    convert: dict[str, Callable[[Any], Any]] = {"int": int, "float": float, "bool": bool, "string": _text}
    return convert[kind](value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _kind(spec: Any) -> tuple[str, dict[str, Any]]:
    """How a (sub)schema is stored, and the schema that decides it (the non-null branch of X-or-null)."""
    inner = _unwrapped(spec)
    if inner is None:
        return "json", {}
    types = _json_types(inner) - {"null"}
    if not types and ("enum" in inner or "const" in inner):
        types = _enum_types(inner)
    if types == {"integer", "number"}:
        return "float", inner
    if len(types) != 1:
        return "json", inner
    kind = types.pop()
    if kind == "string":
        fmt = inner.get("format")
        return {"date-time": "timestamp", "date": "date"}.get(fmt if isinstance(fmt, str) else "", "string"), inner
    if kind == "array":
        return ("list", inner) if isinstance(inner.get("items"), dict) else ("json", inner)
    if kind == "object":
        props = inner.get("properties")
        return ("struct", inner) if isinstance(props, dict) and props else ("json", inner)
    return {"integer": "int", "number": "float", "boolean": "bool"}.get(kind, "json"), inner


def _unwrapped(spec: Any) -> dict[str, Any] | None:
    """`spec` itself, or the one non-null branch of an anyOf/oneOf; None when it cannot be mapped."""
    if not isinstance(spec, dict) or "$ref" in spec or "allOf" in spec:
        return None
    for key in ("anyOf", "oneOf"):
        if key in spec:
            branches = [b for b in spec[key] if not (isinstance(b, dict) and _json_types(b) == {"null"})]
            return branches[0] if len(branches) == 1 and isinstance(branches[0], dict) else None
    return spec


def _json_types(spec: dict[str, Any]) -> set[str]:
    kind = spec.get("type")
    return {kind} if isinstance(kind, str) else {k for k in kind or () if isinstance(k, str)}


def _enum_types(spec: dict[str, Any]) -> set[str]:
    values = spec["enum"] if "enum" in spec else [spec["const"]]
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return {names.get(type(v), "json") for v in values if v is not None}


def _excludes_null(spec: Any) -> bool:
    """The property can never be null: it has a type list without null (or an enum without null)."""
    if not isinstance(spec, dict):
        return False
    if "enum" in spec and "type" not in spec:
        return None not in spec["enum"]
    types = _json_types(spec)
    return bool(types) and "null" not in types
