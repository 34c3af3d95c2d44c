"""Run configuration: flags beat environment; the API key is resolved here and never stored elsewhere."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docrouter.client import DEFAULT_BASE_URL
from docrouter.errors import ConfigError

DEFAULT_MODEL = "google/gemini-2.5-flash"
DEFAULT_PROMPT = "Summarize this document in 3-5 sentences: what it is, its main points, and any key figures."
ENGINES = ("auto", "pdf-text", "mistral-ocr", "native", "local-text")


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
    shard: int = 0  # this run handles documents whose content hash falls in shard `shard` of `shards`
    shards: int = 1
    # OpenRouter's optional attribution headers, from the environment so that workers pick them up too.
    referer: str | None = field(default_factory=lambda: os.environ.get("OPENROUTER_HTTP_REFERER") or None)
    title: str | None = field(default_factory=lambda: os.environ.get("OPENROUTER_APP_TITLE", "docrouter") or None)
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sources:
            raise ConfigError("give at least one SOURCE folder or file")
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.budget_usd is not None and self.budget_usd < 0:
            raise ConfigError("--budget must be a non-negative amount in USD")
        if self.concurrency < 1:
            raise ConfigError("--concurrency must be at least 1")
        if self.max_attempts < 1:
            raise ConfigError("--max-attempts must be at least 1")
        if self.max_tokens < 1:
            raise ConfigError("--max-tokens must be at least 1")
        if self.shards < 1 or not 0 <= self.shard < self.shards:
            raise ConfigError(f"shard must be in 0..{self.shards - 1} (got shard {self.shard} of {self.shards})")
        if not self.prompt.strip():
            raise ConfigError("the prompt is empty")

    @property
    def prompt_sha256(self) -> str:
        return hashlib.sha256(self.prompt.encode()).hexdigest()


# The run flow's parameters are RunConfig's fields under the CLI's names (these three differ), so the CLI,
# the flow and the backfill translate through the two functions below instead of each naming every field.
_FIELD_OF_PARAMETER = {"budget": "budget_usd", "ocr_fee": "ocr_fee_per_page", "pdf_text_name": "pdf_text_wire_name"}
_PARAMETER_OF_FIELD = {f: p for p, f in _FIELD_OF_PARAMETER.items()}
_FLOW_FIELDS = (
    *("sources", "out", "model", "prompt", "engine", "budget_usd", "concurrency", "max_attempts", "include"),
    *("exclude", "reprocess", "retry_failed", "offline", "max_tokens", "base_url", "batch_size", "shard", "shards"),
    *("ocr_fee_per_page", "pdf_text_wire_name"),
)
_SEQUENCES = ("sources", "include", "exclude")


def config_from_parameters(parameters: Mapping[str, Any]) -> RunConfig:
    """The RunConfig that flow parameters describe; names that are not run settings (key_block...) are skipped."""
    fields: dict[str, Any] = {}
    for name, value in parameters.items():
        field_name = _FIELD_OF_PARAMETER.get(name, name)
        if field_name in _FLOW_FIELDS:
            fields[field_name] = tuple(value or ()) if field_name in _SEQUENCES else value
    return RunConfig(**fields)


def flow_parameters(config: RunConfig) -> dict[str, Any]:
    """The flow parameters that describe `config` (JSON-friendly: lists, not tuples; never a key)."""
    values = {name: getattr(config, name) for name in _FLOW_FIELDS}
    return {_PARAMETER_OF_FIELD.get(k, k): list(v) if k in _SEQUENCES else v for k, v in values.items()}


def resolve_base_url(explicit: str | None) -> str:
    """--base-url, else OPENROUTER_BASE_URL, else OpenRouter's own."""
    return (explicit or os.environ.get("OPENROUTER_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def resolve_api_key(explicit: str | None = None) -> str:
    """The key from the caller (e.g. a Prefect Secret block) or OPENROUTER_API_KEY; a clear error otherwise."""
    key = explicit or os.environ.get("OPENROUTER_API_KEY", "")
    if not key.strip():
        raise ConfigError(
            "no API key: set OPENROUTER_API_KEY (or save a Prefect Secret block and pass --key-block NAME), "
            "or run with --offline to use the built-in emulator"
        )
    return key.strip()


def cache_dir() -> Path:
    """Where the model catalogue is cached between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "docrouter"


def read_prompt_file(path: str) -> str:
    """The prompt from --prompt-file, with a one-line error when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read --prompt-file {path}: {exc}") from None
