"""Structured extraction: a JSON Schema in, a validated JSON object out of each answer.

The schema is read once (`load_schema`), hashed canonically (so whitespace or key order is not a new
schema), and used three ways: sent as `response_format` to models with structured outputs (strict where
the schema allows it) or written into the instructions for the others; every reply validated with
`jsonschema` (formats date and date-time checked too, since the Arrow columns parse them); and, for a
document answered in page ranges, merged: arrays concatenated, the other properties from a combine request.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docrouter.errors import ConfigError

if TYPE_CHECKING:  # jsonschema is imported when a schema is first used: `docrouter --help` need not wait for it
    import jsonschema

EXTRACTION_PROMPT = (
    "Extract from this document the information that the given JSON Schema describes. Use null for what the "
    "document does not say (where the schema allows it); never invent values."
)
SCHEMA_NAME = "extraction"
SCHEMA_INTRO = "Reply with one JSON object that follows this JSON Schema, and nothing else:"
MAX_REPORTED_ERRORS = 8
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.DOTALL)


@cache
def _formats() -> jsonschema.FormatChecker:
    """The formats checked: date and date-time, the two the Arrow columns parse (as Python reads ISO 8601)."""
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date", raises=ValueError)(_is_date)
    checker.checks("date-time", raises=ValueError)(_is_date_time)
    return checker


def _is_date(value: object) -> bool:
    return not isinstance(value, str) or bool(date.fromisoformat(value))


def _is_date_time(value: object) -> bool:
    """An ISO-8601 timestamp (RFC 3339's 'Z' accepted); Arrow stores it as UTC."""
    return not isinstance(value, str) or bool(parse_date_time(value))


def parse_date_time(value: str) -> datetime:
    """A date-time string as a datetime (a trailing Z is UTC); ValueError when it is not one."""
    return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)


@dataclass(frozen=True)
class ExtractionSchema:
    """A JSON Schema whose top level is an object: what every extraction of a run must follow."""

    schema: dict[str, Any]

    @cached_property
    def text(self) -> str:
        """The schema as JSON text in its own key order (which is the column order): what is stored and passed."""
        return json.dumps(self.schema, ensure_ascii=False)

    @cached_property
    def sha256(self) -> str:
        """The hash of the canonical text (sorted keys, no spaces): reformatting a schema is not a new schema."""
        canonical = json.dumps(self.schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @cached_property
    def _validator(self) -> jsonschema.protocols.Validator:
        return _validator_class(self.schema)(self.schema, format_checker=_formats())

    @property
    def properties(self) -> dict[str, Any]:
        return dict(self.schema.get("properties") or {})

    @property
    def required(self) -> frozenset[str]:
        return frozenset(self.schema.get("required") or ())

    def errors(self, instance: Any) -> list[str]:
        """What is wrong with `instance`, one line per error (the first few), or [] when it is valid."""
        found = sorted(self._validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [_describe(e) for e in found[:MAX_REPORTED_ERRORS]]

    @cached_property
    def strict(self) -> bool:
        """Whether the schema fits strict structured outputs: every object closed and all its properties required."""
        return _closed(self.schema)

    def response_format(self) -> dict[str, Any]:
        """The `response_format` of a request to a model with structured outputs."""
        spec = {"name": SCHEMA_NAME, "schema": self.schema, "strict": self.strict}
        return {"type": "json_schema", "json_schema": spec}

    def instructions(self, prompt: str) -> str:
        """The prompt with the schema, for a model that gets it in the instructions."""
        return f"{prompt}\n\n{SCHEMA_INTRO}\n```json\n{json.dumps(self.schema, indent=1)}\n```"

    def subschema(self, names: Sequence[str]) -> ExtractionSchema:
        """The top-level object narrowed to `names` (for the combine request of a split document)."""
        narrowed = dict(self.schema)
        narrowed["properties"] = {k: v for k, v in self.properties.items() if k in names}
        narrowed["required"] = [k for k in self.schema.get("required") or () if k in names]
        return ExtractionSchema(narrowed)

    @property
    def array_properties(self) -> list[str]:
        """Top-level properties that are arrays: a split document's parts' values are concatenated."""
        return [name for name, spec in self.properties.items() if _types(spec) == {"array"}]


def load_schema(path: str) -> ExtractionSchema:
    """The schema in `path`, or a one-line ConfigError saying why it cannot be used."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read --schema {path}: {exc}") from None
    return parse_schema(text, f"--schema {path}")


def parse_schema(text: str, where: str = "the schema") -> ExtractionSchema:
    """A schema from JSON text: valid JSON Schema, with an object at the top level."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where} is not JSON: {exc}") from None
    return as_schema(schema, where)


def as_schema(schema: Any, where: str = "the schema") -> ExtractionSchema:
    """A schema from a parsed JSON value, checked against its metaschema."""
    if not isinstance(schema, dict) or schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise ConfigError(f'{where} must be a JSON Schema with "type": "object" and "properties" at the top level')
    from jsonschema.exceptions import SchemaError

    try:
        _validator_class(schema).check_schema(schema)
    except SchemaError as exc:
        raise ConfigError(f"{where} is not a valid JSON Schema: {exc.message}") from None
    return ExtractionSchema(schema)


def _validator_class(schema: dict[str, Any]) -> type[jsonschema.protocols.Validator]:
    """The validator of the schema's $schema dialect (2020-12 when it names none)."""
    import jsonschema

    validator: type[jsonschema.protocols.Validator] = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    return validator


def first_json_object(reply: str) -> Any:
    """The first JSON object in a reply: a fenced ```json block, the whole reply, or the first {...} in prose.

    Raises ValueError when there is none."""
    candidates = [m.group(1) for m in _FENCE.finditer(reply)] + [reply]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        text = candidate.strip()
        for start in (i for i, ch in enumerate(text) if ch == "{"):
            try:
                value, _ = decoder.raw_decode(text, start)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    raise ValueError("the reply holds no JSON object")


@dataclass(frozen=True)
class Checked:
    """A reply read against the schema: the object when it is valid, else what is wrong."""

    value: dict[str, Any] | None
    problems: tuple[str, ...]


def check_reply(schema: ExtractionSchema, reply: str) -> Checked:
    """Parse the reply's first JSON object and validate it."""
    try:
        value = first_json_object(reply)
    except ValueError as exc:
        return Checked(None, (str(exc),))
    problems = schema.errors(value)
    return Checked(None if problems else value, tuple(problems))


def repair_prompt(reply: str, problems: Sequence[str]) -> str:
    """The one repair request: the invalid reply and its validation errors, asking for a corrected object."""
    listed = "\n".join(f"- {p}" for p in problems)
    return (
        "A reply that was meant to be one JSON object following the schema does not validate.\n\n"
        f"The reply:\n<reply>\n{reply}\n</reply>\n\nWhat is wrong with it:\n{listed}\n\n"
        "Correct it, keeping the values it extracted."
    )


def combine_prompt(prompt: str, partials: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """The combine request of a split document: the objects extracted from each page range."""
    sections = "\n\n".join(f"<part pages={json.dumps(label)}>\n{json.dumps(v)}\n</part>" for label, v in partials)
    return (
        f"{prompt}\n\nThe document was too long to read at once. Below are the objects extracted from consecutive "
        f"page ranges of it. Combine them into one object for the whole document.\n\n{sections}"
    )


def merge_arrays(schema: ExtractionSchema, partials: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The array properties of a split document: each part's items, in page order."""
    merged: dict[str, Any] = {}
    for name in schema.array_properties:
        present = [p[name] for p in partials if isinstance(p.get(name), list)]
        if present or name in schema.required:
            merged[name] = [item for items in present for item in items]
    return merged


def _describe(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(the object)"
    return f"{where}: {error.message}"[:300]


def _types(spec: Any) -> set[str]:
    """The JSON types a (sub)schema names in `type` (a string or a list)."""
    if not isinstance(spec, dict):
        return set()
    kind = spec.get("type")
    return {kind} if isinstance(kind, str) else {k for k in kind or () if isinstance(k, str)}


def _closed(spec: Any) -> bool:
    """Every object in the schema has additionalProperties false and requires all its properties."""
    if not isinstance(spec, dict):
        return True
    if "object" in _types(spec) or "properties" in spec:
        props = spec.get("properties") or {}
        if spec.get("additionalProperties") is not False or set(spec.get("required") or ()) != set(props):
            return False
    return all(_closed(sub) for sub in _subschemas(spec))


def _subschemas(spec: dict[str, Any]) -> list[Any]:
    """The schemas nested in `spec` (properties, items, combinators, definitions)."""
    nested: list[Any] = list((spec.get("properties") or {}).values())
    nested += list((spec.get("$defs") or {}).values()) + list((spec.get("definitions") or {}).values())
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        nested += list(spec.get(key) or ())
    return nested + ([spec["items"]] if isinstance(spec.get("items"), dict) else [])


@dataclass(frozen=True)
class Extracting:
    """What a run with --schema shares: the schema, whether the model takes it as response_format, the prompt."""

    schema: ExtractionSchema
    structured: bool  # the model lists structured_outputs: the schema goes as response_format
    prompt: str  # the user's prompt (or EXTRACTION_PROMPT), without the schema

    def prompt_for(self, schema: ExtractionSchema, prompt: str) -> str:
        """What a request says: the prompt, with the schema written out unless it goes as response_format."""
        return prompt if self.structured else schema.instructions(prompt)

    def response_format(self, schema: ExtractionSchema) -> dict[str, Any] | None:
        return schema.response_format() if self.structured else None
