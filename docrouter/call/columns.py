"""A schema's Arrow columns: the typed table every valid extraction must fit before it counts as valid.

Types follow the JSON Schema: string, integer -> int64, number -> float64, boolean -> bool,
`format: date-time` -> timestamp (UTC), `format: date` -> date32, arrays -> list, objects with properties ->
struct, enums -> string; what cannot be mapped (anyOf/oneOf of several types, $ref, allOf, untyped) is stored
as JSON text. A column is non-null only when its property is required and its type excludes null; a property
named like a fixed column is prefixed `field_`. The call stage checks a reply against these columns (so a
repair request is sent while it can still help); the store writes tables of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, date
from typing import Any

import pyarrow as pa

from docrouter.call.extraction import Checked, ExtractionSchema, check_reply, parse_date_time

FIXED_COLUMNS = ("run_id", "doc_id", "path", "model", "prompt_sha256", "schema_sha256")
TIMESTAMP = pa.timestamp("us", tz="UTC")
_FIXED_FIELDS = [pa.field(name, pa.string(), nullable=False) for name in FIXED_COLUMNS]
_SCALARS = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
_SCALARS |= {"timestamp": TIMESTAMP, "date": pa.date32(), "json": pa.string()}


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
