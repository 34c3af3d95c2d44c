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
from docrouter.route.reasoning import SETTINGS as REASONING_SETTINGS
from docrouter.route.reasoning import check_setting
from docrouter.run.environment import Environment
from docrouter.run.references import REFERENCED
from docrouter.run.settings import Described, defaults, described, parameter, setting
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

    sources: tuple[str, ...] = field(metadata=parameter(kind="repeat"))
    out: str = field(metadata=parameter())
    model: str = setting(DEFAULT_MODEL, "OpenRouter model id (default {default})")
    prompt: str = setting(
        DEFAULT_PROMPT,
        "what to ask of every document (default: a short summary)",
        from_file=("--prompt-file", "read the prompt from a file (default: none, --prompt)"),
    )
    engine: str = setting("auto", "force one engine for all PDFs", choices=ENGINES)
    budget_usd: float | None = setting(
        None, "hard cap on money spent (>= 0; 0 sends nothing; for plan: what --pilot may spend; default: no cap)",
        parameter="budget", kind="number", metavar="USD", bounds=(0.0, MAX_BUDGET_USD),
    )  # fmt: skip
    concurrency: int = setting(
        16, "requests in flight, {low}..{high} (default {default})", kind="whole", run_only=True, bounds=(1, 1024)
    )
    max_attempts: int = setting(
        6, "attempts per request, {low}..{high} (default {default})", kind="whole", run_only=True, bounds=(1, 100)
    )
    include: tuple[str, ...] = setting((), "only paths matching (default: every file)", kind="repeat", metavar="GLOB")
    exclude: tuple[str, ...] = setting((), "skip paths matching (default: none)", kind="repeat", metavar="GLOB")
    reprocess: bool = setting(False, "answer again documents already answered", kind="switch", run_only=True)
    retry_failed: bool = setting(  # also try again documents whose last row is a terminal failure
        False,
        "try again unchanged files whose last row is a terminal failure (encrypted, corrupt, unsupported...)",
        kind="switch",
        run_only=True,
    )
    offline: bool = setting(False, "use the built-in emulator: no key, no network", kind="switch")
    max_tokens: int = setting(1024, "answer length cap (default {default})", kind="whole", bounds=(1, 1_000_000))
    base_url: str | None = setting(None, "API base URL (default $OPENROUTER_BASE_URL or OpenRouter's)")
    pdf_text_wire_name: str = setting(
        "cloudflare-ai", "wire name of the free PDF text engine", parameter="pdf_text_name"
    )
    ocr_fee_per_page: float = setting(
        0.002, "mistral-ocr USD per page, {low}..{high} (default {default})", parameter="ocr_fee", kind="number",
        bounds=(0.0, 1.0),
    )  # fmt: skip
    batch_size: int = setting(
        100, "documents per Prefect task ({low}..{high})", kind="whole", run_only=True, bounds=(1, 100_000)
    )
    price_headroom: float = setting(  # provider.max_price = the catalogue price plus this fraction
        0.25, "provider.max_price = catalogue price x (1 + FRACTION); {low}..{high} (default {default})",
        kind="number", metavar="FRACTION", bounds=(0.0, 10.0),
    )  # fmt: skip
    max_price: tuple[float, float] | None = setting(  # USD per million (prompt, completion) tokens, given by hand
        None,
        "most to pay in USD per million prompt,completion tokens (needed for models without a listed price; "
        "default: the listed price plus --price-headroom)",
        metavar="PROMPT,COMPLETION",
    )
    refresh_models: bool = setting(False, "re-read the model list, ignoring the cache", kind="switch")
    # This run handles documents whose content hash falls in shard `shard` of `shards` (flow parameters only).
    shard: int = setting(0, kind="whole", bounds=(0, 1023))
    shards: int = setting(1, kind="whole", bounds=(1, 1024))
    urls: tuple[str, ...] = setting(
        (),
        "a list of URLs to read: one per line (# comments) or a CSV with a url column; repeatable (default: none)",
        kind="repeat",
        metavar="FILE",
    )
    send_urls: str = setting(
        "auto",
        "{default} (default): send URL images and server-parsed PDFs by URL when their server says unchanged; "
        "never: upload the fetched bytes (URLs the API cannot reach: intranet, expiring signatures)",
        choices=SEND_URLS,
        run_only=True,
    )
    url_cache_size: int = setting(  # bytes of answered URL documents kept under DIR/_urls
        DEFAULT_CACHE_BYTES,
        "fetched URL bytes kept under DIR/_urls once answered (default {default}; K, M, G suffixes)",
        kind="size",
        metavar="BYTES",
        run_only=True,
    )
    reasoning: str = setting(  # auto|off|minimal|low|medium|high (docrouter.route.reasoning)
        DEFAULT_REASONING,
        "reasoning effort sent to the model (default {default}: off where the model allows, else low); "
        "an effort adds its reasoning budget to max_tokens, and to estimates and reservations",
        choices=REASONING_SETTINGS,
    )
    # How the answer is asked for: these shape it, so they are part of prompt_sha256 (answer_sha256).
    temperature: float = setting(
        DEFAULT_TEMPERATURE, "sampling temperature, {low}..{high} (default {default})", kind="number", bounds=(0.0, 2.0)
    )
    system_prompt: str | None = setting(
        None,
        "a system message sent before every request (default: none)",
        metavar="TEXT",
        from_file=("--system-prompt-file", "read the system message from a file (default: none)"),
    )
    # OpenRouter's routing preferences (the request's `provider` object and `models` fallback list).
    data_collection: str | None = setting(
        None,
        "deny: only providers that do not store or train on data (default: the account's setting)",
        choices=DATA_COLLECTION,
    )  # None: the account's setting
    zdr: bool = setting(False, "only zero-data-retention endpoints", kind="switch")
    provider_order: tuple[str, ...] = setting(
        (),
        "providers to try first, in this order (OpenRouter slugs; default: OpenRouter's choice)",
        kind="commas",
        metavar="A,B",
    )
    provider_sort: str | None = setting(
        None,
        "prefer providers by price, throughput or latency (default: OpenRouter's load balancing)",
        choices=PROVIDER_SORTS,
    )
    fallback_models: tuple[str, ...] = setting(  # tried in order when the model fails (OpenRouter's `models`)
        (),
        "models to answer with when --model fails (estimates and the budget count the dearest; default: none)",
        kind="commas",
        metavar="M1,M2",
    )
    # What environment variables set (attribution headers, limits, stop grace): read once at the edge (the CLI,
    # the flow run) by Environment.read; a RunConfig made without one has the defaults.
    environment: Environment = field(default_factory=Environment)
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


# The settings that RunConfig describes (docrouter.run.settings), as the checks and the flows need them.
SETTINGS: tuple[Described, ...] = tuple(described(RunConfig))
RUN_DEFAULTS = defaults(RunConfig)  # by flow parameter name: the flows' defaults
# (flag, field, lowest, highest): every numeric setting is finite and in range, or the run does not start.
_RANGES = tuple((d.flag, d.field, *d.setting.bounds) for d in SETTINGS if d.setting.bounds is not None)
_WHOLE = frozenset(d.field for d in SETTINGS if d.setting.kind == "whole")


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


# The run flow's parameters are RunConfig's described fields under the CLI's names (budget, ocr_fee,
# pdf_text_name differ), so the CLI, the flow and the backfill translate through the two functions below.
_FIELD_OF_PARAMETER = {d.parameter: d.field for d in SETTINGS}
_SEQUENCES = frozenset(d.field for d in SETTINGS if d.setting.is_list)


def config_from_parameters(parameters: Mapping[str, Any], environment: Environment | None = None) -> RunConfig:
    """The RunConfig that flow parameters describe, with `environment` (Environment.read of the process running
    the flow; the defaults without one); names that are not run settings (key_block...) are skipped."""
    fields: dict[str, Any] = {}
    for name, value in parameters.items():
        field_name = _FIELD_OF_PARAMETER.get(name)
        if field_name is not None:
            fields[field_name] = tuple(value or ()) if field_name in _SEQUENCES else value
    if fields.get("max_price") is not None and not isinstance(fields["max_price"], str):
        fields["max_price"] = tuple(fields["max_price"])
    fields.update(referenced_texts(parameters))
    environment = environment or Environment()
    return RunConfig(**fields, **schema_fields(parameters.get(SCHEMA_PARAMETER)), environment=environment)


def referenced_texts(parameters: Mapping[str, Any]) -> dict[str, str]:
    """The texts that the `prompt_file` and `system_prompt_file` parameters name (large texts reach a flow run
    by reference: docrouter.run.references); one-line errors for an unreadable file or a text given both ways."""
    texts: dict[str, str] = {}
    for name, file_name in REFERENCED.items():
        path = parameters.get(file_name)
        if not path:
            continue
        if parameters.get(name) not in (None, DEFAULT_PROMPT):
            raise ConfigError(f"give {name} or {file_name}, not both")
        texts[name] = read_prompt_file(str(path), file_name)
    return texts


def flow_parameters(config: RunConfig) -> dict[str, Any]:
    """The flow parameters that describe `config` (JSON-friendly: lists, not tuples; never a key)."""
    lists = {*_SEQUENCES, "max_price"}
    values = {d.parameter: (d.field, getattr(config, d.field)) for d in SETTINGS}
    parameters = {name: list(v) if k in lists and v is not None else v for name, (k, v) in values.items()}
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
