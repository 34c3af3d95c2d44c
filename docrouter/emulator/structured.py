"""Answers to extraction requests: a JSON instance of the request's schema, built from the document's text.

A request carries its schema as `response_format` (models with structured outputs: the reply is the bare
JSON) or in its instructions, as a fenced json block (the other models: the reply is prose with the JSON in
a fenced block, as such models tend to answer). Values come from the text where the schema lets them (the
first number for a number, the first ISO date for a date, words for a string), so answers differ per
document and stay deterministic.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCED = re.compile(r"```json\s*\n(.*?)```", re.DOTALL)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_WORDS = re.compile(r"[A-Za-z][A-Za-z0-9'-]*")
_DOCUMENT = re.compile(r"<(document|part|reply)\b[^>]*>(.*?)</\1>", re.DOTALL)
MAX_DEPTH = 6


def schema_in_instructions(text: str) -> dict[str, Any] | None:
    """The last fenced json block of the user's text that is an object schema, if any."""
    for block in reversed(_FENCED.findall(text)):
        try:
            value = json.loads(block)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and value.get("type") == "object" and isinstance(value.get("properties"), dict):
            return value
    return None


def instance(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """A value of the top-level object schema, with every property filled in from `text`."""
    # A text request's document (or a combine request's parts, a repair request's reply), not its instructions.
    documents = [body for _, body in _DOCUMENT.findall(text)]
    value = _value(schema, _Source("\n".join(documents) if documents else _FENCED.sub("", text)), schema, 0)
    return value if isinstance(value, dict) else {}


def reply(schema: dict[str, Any], text: str, *, structured: bool, broken: bool) -> str:
    """The content: bare JSON (structured outputs) or prose around a fenced block; `broken` cuts the JSON."""
    body = json.dumps(instance(schema, text), indent=None if structured else 1)
    if broken:
        body = body[: max(1, len(body) // 2)]  # a reply cut mid-object: not JSON
    if structured:
        return body
    return (
        f"Here is the information extracted from the document:\n\n```json\n{body}\n```\n\nLet me know if you need more."
    )


class _Source:
    """The document's text, read for numbers, dates and words."""

    def __init__(self, text: str) -> None:
        self.numbers = [float(n) for n in _NUMBER.findall(text)]
        self.dates = _DATE.findall(text)
        self.words = _WORDS.findall(text) or ["emulated"]

    def phrase(self, length: int = 4) -> str:
        return " ".join(self.words[:length])


def _value(spec: Any, source: _Source, root: dict[str, Any], depth: int) -> Any:
    if not isinstance(spec, dict) or depth > MAX_DEPTH:
        return None
    if "$ref" in spec:
        return _value(_resolve(spec["$ref"], root), source, root, depth + 1)
    if "const" in spec:
        return spec["const"]
    if "enum" in spec:
        return next((v for v in spec["enum"] if v is not None), None)
    for key in ("anyOf", "oneOf"):
        if key in spec:
            options = [b for b in spec[key] if isinstance(b, dict) and b.get("type") != "null"]
            return _value(options[0], source, root, depth + 1) if options else None
    kinds = spec.get("type")
    kind = kinds if isinstance(kinds, str) else next((k for k in kinds or () if k != "null"), "null")
    return _typed(kind, spec, source, root, depth)


def _typed(kind: str, spec: dict[str, Any], source: _Source, root: dict[str, Any], depth: int) -> Any:
    if kind == "object":
        properties = spec.get("properties") or {}
        return {name: _value(sub, source, root, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        count = max(1, int(spec.get("minItems") or 1))
        return [_value(spec.get("items") or {"type": "string"}, source, root, depth + 1) for _ in range(count)]
    if kind == "integer":
        return _bounded(int(source.numbers[0]) if source.numbers else 1, spec)
    if kind == "number":
        return _bounded(source.numbers[0] if source.numbers else 1.5, spec)
    if kind == "boolean":
        return True
    if kind == "string":
        return _string(spec, source)
    return None


def _string(spec: dict[str, Any], source: _Source) -> str:
    fmt = spec.get("format")
    day = source.dates[0] if source.dates else "2026-01-31"
    if fmt == "date":
        return day
    if fmt == "date-time":
        return f"{day}T12:00:00Z"
    return source.phrase()


def _bounded(value: Any, spec: dict[str, Any]) -> Any:
    low, high = spec.get("minimum"), spec.get("maximum")
    if isinstance(low, int | float) and value < low:
        value = type(value)(low)
    if isinstance(high, int | float) and value > high:
        value = type(value)(high)
    return value


def _resolve(ref: Any, root: dict[str, Any]) -> Any:
    """A local reference (#/$defs/name); anything else resolves to no schema."""
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return None
    node: Any = root
    for key in ref[2:].split("/"):
        node = node.get(key) if isinstance(node, dict) else None
    return node
