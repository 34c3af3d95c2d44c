"""Run configuration: flags beat environment; the API key is resolved here and never stored elsewhere."""

from __future__ import annotations

import hashlib
import json
import math
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from docrouter.call.client import DEFAULT_BASE_URL
from docrouter.call.extraction import EXTRACTION_PROMPT, ExtractionSchema, as_schema, load_schema, parse_schema
from docrouter.discover.urls import DEFAULT_CACHE_BYTES, SEND_URLS
from docrouter.errors import ConfigError
from docrouter.route.reasoning import check_setting
from docrouter.vocabulary import ENGINE_CHOICES

DEFAULT_MODEL = "google/gemini-2.5-flash"
DEFAULT_PROMPT = "Summarize this document in 3-5 sentences: what it is, its main points, and any key figures."
ENGINES = ENGINE_CHOICES  # --engine: auto or one PDF engine, in the order --help shows them
MAX_BUDGET_USD = 1_000_000.0  # more than this is a typo, not a budget (no --budget means no cap)
MAX_PRICE_PER_MILLION = 10_000.0  # USD per million tokens: far above any listed model
# --schema as a flow parameter (not "schema": Prefect's parameter model would shadow pydantic's BaseModel.schema)
SCHEMA_PARAMETER = "extraction_schema"
INLINE_SCHEMA_CHARS = 16_384  # a larger --schema is passed to flow runs by reference (its path), not inline
DATA_COLLECTION = ("allow", "deny")
PROVIDER_SORTS = ("price", "throughput", "latency")
DEFAULT_TEMPERATURE = 0.0
DEFAULT_REASONING = "auto"  # --reasoning auto: not part of the answer hash


@dataclass(frozen=True)
class RunConfig:
    """Everything a run is asked to do (no secrets: the key travels separately)."""

    sources: tuple[str, ...]
    out: str
    model: str = DEFAULT_MODEL
    prompt: str = DEFAULT_PROMPT
    engine: str = "auto"
    budget_usd: float | None = None
    concurrency: int = 16
    max_attempts: int = 6
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    reprocess: bool = False
    retry_failed: bool = False  # also try again documents whose last row is a terminal failure
    offline: bool = False
    max_tokens: int = 1024
    base_url: str | None = None
    pdf_text_wire_name: str = "cloudflare-ai"
    ocr_fee_per_page: float = 0.002
    batch_size: int = 100
    price_headroom: float = 0.25  # provider.max_price = the catalogue price plus this fraction
    max_price: tuple[float, float] | None = None  # USD per million (prompt, completion) tokens, given by hand
    refresh_models: bool = False  # re-read GET /models even when the cached list is fresh
    shard: int = 0  # this run handles documents whose content hash falls in shard `shard` of `shards`
    shards: int = 1
    urls: tuple[str, ...] = ()  # list files of URL sources (--urls)
    send_urls: str = "auto"  # auto: images and server-parsed PDFs by URL when unchanged; never: upload
    url_cache_size: int = DEFAULT_CACHE_BYTES  # bytes of answered URL documents kept under DIR/_urls
    reasoning: str = "auto"  # auto|off|minimal|low|medium|high (docrouter.reasoning)
    # How the answer is asked for: these shape it, so they are part of prompt_sha256 (answer_sha256).
    temperature: float = DEFAULT_TEMPERATURE
    system_prompt: str | None = None
    # OpenRouter's routing preferences (the request's `provider` object and `models` fallback list).
    data_collection: str | None = None  # "allow" | "deny"; None: the account's setting
    zdr: bool = False  # zero-data-retention endpoints only
    provider_order: tuple[str, ...] = ()
    provider_sort: str | None = None  # "price" | "throughput" | "latency"
    fallback_models: tuple[str, ...] = ()  # tried in order when the model fails (OpenRouter's `models`)
    # OpenRouter's optional attribution headers, from the environment so that workers pick them up too.
    referer: str | None = field(default_factory=lambda: os.environ.get("OPENROUTER_HTTP_REFERER") or None)
    title: str | None = field(default_factory=lambda: os.environ.get("OPENROUTER_APP_TITLE", "docrouter") or None)
    extra: dict[str, str] = field(default_factory=dict)
    schema: str | None = None  # --schema: the JSON Schema's text
    schema_file: str | None = None  # where it was read from (flow runs get this path when the text is large)

    def __post_init__(self) -> None:
        if self.schema is not None:
            parse_schema(self.schema, f"--schema {self.schema_file}" if self.schema_file else "the schema")
            if self.prompt == DEFAULT_PROMPT:  # the summary default makes no sense for an extraction
                object.__setattr__(self, "prompt", EXTRACTION_PROMPT)
        if not self.sources and not self.urls:
            raise ConfigError("give at least one SOURCE folder, file or URL (or --urls FILE)")
        if self.send_urls not in SEND_URLS:
            raise ConfigError(f"--send-urls must be one of {', '.join(SEND_URLS)}, not {self.send_urls!r}")
        if self.url_cache_size < 0:
            raise ConfigError("--url-cache-size must be a non-negative number of bytes")
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        for flag, name, low, high in _RANGES:
            value = getattr(self, name)
            if value is not None:
                # + 0.0 turns -0.0 into 0.0; whole-number settings stay ints
                object.__setattr__(self, name, checked_number(flag, value, low, high, whole=name in _WHOLE) + 0)
        if self.max_price is not None:
            object.__setattr__(self, "max_price", parse_max_price(self.max_price))
        if self.shards < 1 or not 0 <= self.shard < self.shards:
            raise ConfigError(f"shard must be in 0..{self.shards - 1} (got shard {self.shard} of {self.shards})")
        if not self.prompt.strip():
            raise ConfigError("the prompt is empty")
        check_setting(self.reasoning)
        self._check_preferences()

    def _check_preferences(self) -> None:
        if self.data_collection is not None and self.data_collection not in DATA_COLLECTION:
            raise ConfigError(f"--data-collection must be allow or deny, not {self.data_collection!r}")
        if self.provider_sort is not None and self.provider_sort not in PROVIDER_SORTS:
            raise ConfigError(f"--provider-sort must be one of {', '.join(PROVIDER_SORTS)}, not {self.provider_sort!r}")
        if self.system_prompt is not None and not self.system_prompt.strip():
            raise ConfigError("the system prompt is empty")
        for name, values in (("--provider-order", self.provider_order), ("--fallback-models", self.fallback_models)):
            if any(not v.strip() for v in values):
                raise ConfigError(f"{name} has an empty name (expected a comma-separated list)")
        if self.model in self.fallback_models:
            raise ConfigError(f"--fallback-models repeats the model {self.model!r}")

    @cached_property
    def extraction(self) -> ExtractionSchema | None:
        """The parsed --schema, or None without one."""
        return None if self.schema is None else parse_schema(self.schema)

    @property
    def extraction_sha256(self) -> str | None:
        return self.extraction.sha256 if self.extraction else None

    @property
    def instruction_chars(self) -> int:
        """The characters every request adds to the document: the prompt, and the schema (in the instructions
        or as response_format, input tokens either way)."""
        return len(self.prompt) + (len(self.extraction.text) if self.extraction else 0)

    @property
    def prompt_sha256(self) -> str:
        return answer_sha256(
            self.prompt,
            self.extraction,
            system_prompt=self.system_prompt,
            temperature=self.temperature,
            reasoning=self.reasoning,
        )


def answer_sha256(prompt: str, schema: ExtractionSchema | None = None, **shaping: Any) -> str:
    """SHA-256 of everything that shapes an answer, so changing any of it answers again (the done-set key).

    The prompt, the schema if any, and `shaping`: the other settings (system_prompt, temperature, reasoning,
    ...; add new ones here as keywords). A setting at its default (None, temperature 0, reasoning auto) is left
    out, so the default settings hash to sha256(prompt) as before (runs from before --schema, preferences and
    --reasoning are recognised).
    """
    text = prompt if schema is None else f"{prompt}\n\n--schema sha256:{schema.sha256}"
    settings = {k: v for k, v in sorted(shaping.items()) if v is not None and not _default_shaping(k, v)}
    if not settings:
        return hashlib.sha256(text.encode()).hexdigest()
    canonical = json.dumps({"prompt": text, **settings}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _default_shaping(name: str, value: Any) -> bool:
    if name == "temperature":
        return float(value) == DEFAULT_TEMPERATURE
    return name == "reasoning" and value == DEFAULT_REASONING


def run_preferences(config: RunConfig) -> dict[str, Any]:
    """How the run asked for its answers, for its summary: what shapes them and where they may be routed."""
    return {
        "prompt_sha256": config.prompt_sha256,
        "temperature": config.temperature,
        "system_prompt": config.system_prompt,
        "provider": provider_preferences(config),
        "fallback_models": list(config.fallback_models),
    }


def provider_preferences(config: RunConfig) -> dict[str, Any]:
    """OpenRouter's `provider` routing preferences of the run ({} when none is set; max_price is the budget's)."""
    preferences: dict[str, Any] = {}
    if config.provider_order:
        preferences["order"] = list(config.provider_order)
    if config.provider_sort:
        preferences["sort"] = config.provider_sort
    if config.data_collection:
        preferences["data_collection"] = config.data_collection
    if config.zdr:
        preferences["zdr"] = True
    return preferences


# (flag, field, lowest, highest): every numeric setting is finite and in range, or the run does not start.
_RANGES = (
    ("--budget", "budget_usd", 0.0, MAX_BUDGET_USD),
    ("--concurrency", "concurrency", 1, 1024),
    ("--max-attempts", "max_attempts", 1, 100),
    ("--max-tokens", "max_tokens", 1, 1_000_000),
    ("--ocr-fee", "ocr_fee_per_page", 0.0, 1.0),
    ("--batch-size", "batch_size", 1, 100_000),
    ("--price-headroom", "price_headroom", 0.0, 10.0),
    ("--temperature", "temperature", 0.0, 2.0),
    ("shards", "shards", 1, 1024),
    ("shard", "shard", 0, 1023),
)
_WHOLE = frozenset({"concurrency", "max_attempts", "max_tokens", "batch_size", "shards", "shard"})


def checked_number(flag: str, value: Any, low: float, high: float, *, whole: bool = False) -> Any:
    """`value` when it is a finite number within [low, high] (a whole one if `whole`); a one-line error otherwise."""
    kind = "a whole number" if whole else "a number"
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high or (whole and value != int(value)):
        raise ConfigError(f"{flag} must be {kind} from {low:g} to {high:g}, not {value!r}")
    return int(value) if whole else float(value)


def parse_max_price(value: Any) -> tuple[float, float]:
    """--max-price PROMPT,COMPLETION (USD per million tokens) from "P,C" or a two-item list."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    if len(parts) != 2:
        raise ConfigError(f"--max-price must be PROMPT,COMPLETION in USD per million tokens, not {value!r}")
    try:
        prompt, completion = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(f"--max-price must be two numbers PROMPT,COMPLETION, not {value!r}") from None
    return (
        checked_number("--max-price PROMPT", prompt, 0.0, MAX_PRICE_PER_MILLION) + 0.0,
        checked_number("--max-price COMPLETION", completion, 0.0, MAX_PRICE_PER_MILLION) + 0.0,
    )


# The run flow's parameters are RunConfig's fields under the CLI's names (these three differ), so the CLI,
# the flow and the backfill translate through the two functions below instead of each naming every field.
_FIELD_OF_PARAMETER = {"budget": "budget_usd", "ocr_fee": "ocr_fee_per_page", "pdf_text_name": "pdf_text_wire_name"}
_PARAMETER_OF_FIELD = {f: p for p, f in _FIELD_OF_PARAMETER.items()}
_FLOW_FIELDS = (
    *("sources", "out", "model", "prompt", "engine", "budget_usd", "concurrency", "max_attempts", "include"),
    *("exclude", "reprocess", "retry_failed", "offline", "max_tokens", "base_url", "batch_size", "shard", "shards"),
    *("ocr_fee_per_page", "pdf_text_wire_name", "price_headroom", "max_price", "refresh_models", "reasoning"),
    *("urls", "send_urls", "url_cache_size"),
    *("temperature", "system_prompt", "data_collection", "zdr", "provider_order", "provider_sort", "fallback_models"),
)
_SEQUENCES = ("sources", "include", "exclude", "urls", "provider_order", "fallback_models")


def config_from_parameters(parameters: Mapping[str, Any]) -> RunConfig:
    """The RunConfig that flow parameters describe; names that are not run settings (key_block...) are skipped."""
    fields: dict[str, Any] = {}
    for name, value in parameters.items():
        field_name = _FIELD_OF_PARAMETER.get(name, name)
        if field_name in _FLOW_FIELDS:
            fields[field_name] = tuple(value or ()) if field_name in _SEQUENCES else value
    if fields.get("max_price") is not None and not isinstance(fields["max_price"], str):
        fields["max_price"] = tuple(fields["max_price"])
    return RunConfig(**fields, **schema_fields(parameters.get(SCHEMA_PARAMETER)))


def flow_parameters(config: RunConfig) -> dict[str, Any]:
    """The flow parameters that describe `config` (JSON-friendly: lists, not tuples; never a key)."""
    values = {name: getattr(config, name) for name in _FLOW_FIELDS}
    lists = (*_SEQUENCES, "max_price")
    parameters = {
        _PARAMETER_OF_FIELD.get(k, k): list(v) if k in lists and v is not None else v for k, v in values.items()
    }
    return {**parameters, SCHEMA_PARAMETER: schema_parameter(config)}


def schema_parameter(config: RunConfig) -> dict[str, Any] | str | None:
    """The `extraction_schema` flow parameter: the schema itself, or its path when it is large and came from a
    file (so a deployment's parameters stay small; workers read the path on the shared storage)."""
    if config.extraction is None:
        return None
    if config.schema_file is not None and len(config.extraction.text) > INLINE_SCHEMA_CHARS:
        return str(Path(config.schema_file).absolute())
    return config.extraction.schema


def schema_fields(parameter: Any) -> dict[str, Any]:
    """RunConfig's schema fields from the `extraction_schema` flow parameter (a JSON Schema object, or a path)."""
    if parameter is None:
        return {}
    if isinstance(parameter, str):
        return {"schema": load_schema(parameter).text, "schema_file": parameter}
    return {"schema": as_schema(parameter, "the schema parameter").text}


def resolve_base_url(explicit: str | None) -> str:
    """--base-url, else OPENROUTER_BASE_URL, else OpenRouter's own."""
    return (explicit or os.environ.get("OPENROUTER_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def resolve_api_key(explicit: str | None = None) -> str:
    """The key from the caller (e.g. a Prefect Secret block) or OPENROUTER_API_KEY; a clear error otherwise."""
    key = (explicit or os.environ.get("OPENROUTER_API_KEY", "")).strip()
    if not key:
        raise ConfigError(
            "no API key: set OPENROUTER_API_KEY (or save a Prefect Secret block and pass --key-block NAME), "
            "or run with --offline to use the built-in emulator"
        )
    bad = next((i for i, c in enumerate(key) if not " " <= c <= "~"), None)
    if bad is not None:
        # Never echo the key: only where the odd character is and what it is.
        raise ConfigError(
            f"the API key has a character that is not printable ASCII ({_char_name(key[bad])} at position "
            f"{bad + 1} of {len(key)}), often a copy-paste artefact; paste the key again"
        )
    return key


def _char_name(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}{f' {name}' if name else ''}"


def read_prompt_file(path: str, flag: str = "--prompt-file") -> str:
    """A prompt from --prompt-file (or --system-prompt-file), with a one-line error when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {flag} {path}: {exc}") from None


def comma_list(text: str | None) -> tuple[str, ...]:
    """`A,B` from the command line as ("A", "B") (spaces around names dropped; empty: ())."""
    return tuple(name.strip() for name in text.split(",")) if text and text.strip() else ()
