"""The model catalogue: capabilities and prices from GET /models, cached, with an offline snapshot.

Prices are parsed leniently: decimal strings or numbers, a missing key is 0 (the 2026 API omits zero
prices); a negative token price (OpenRouter's "variable" marker on router models) is 0 with
`placeholder_price` set: such a model's real price is unknown, so a budgeted run needs --max-price. `overrides`
(conditional prices) are kept when they depend on the prompt size (`min_prompt_tokens`, e.g. 2x above
200k): estimates and reservations price a request at the override its prompt can reach. Time-windowed
overrides (`utc_start`/`utc_end`) are not modelled. `reasoning` ({mandatory, default_enabled}) and
`supported_parameters` say whether reasoning can be asked for, or turned off.
This module does no HTTP itself: the caller passes `fetch(offset, limit) -> page of GET /models`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from docrouter.errors import ConfigError, DocrouterError, ServerError

PAGE_SIZE = 500  # the API's default page; its maximum is 1000
MAX_PAGES = 100  # a bound on pagination, in case `links.next` never ends
_PACKAGE = Path(__file__).resolve().parent
SNAPSHOT_CANDIDATES = (_PACKAGE.parent / "data" / "models.json", _PACKAGE / "data" / "models.json")

Source = Literal["api", "cache", "snapshot"]
Fetch = Callable[[int, int], Any]


@dataclass(frozen=True)
class PriceOverride:
    """A conditional price from `pricing.overrides`: these prices apply from `min_prompt_tokens` up."""

    min_prompt_tokens: int
    prompt_price: float
    completion_price: float


@dataclass(frozen=True)
class ModelInfo:
    """One model's capabilities and prices (USD per unit; a missing price is 0)."""

    id: str
    input_modalities: frozenset[str]
    prompt_price: float  # per input token
    completion_price: float  # per output token
    image_price: float = 0.0  # per input image
    request_price: float = 0.0  # per request
    reasoning_price: float = 0.0  # per reasoning token, where a provider bills them apart (`internal_reasoning`)
    context_length: int = 0
    max_completion_tokens: int | None = None
    tokenizer: str = ""
    discount: float = 0.0  # informational; prices above are list prices and are never reduced by it
    placeholder_price: bool = False  # a negative token price (a router's "variable"): not free, unknown
    structured_outputs: bool = False  # `structured_outputs` in supported_parameters: response_format json_schema
    top_context_length: int = 0  # what the top provider serves (0: not given); can be far below context_length
    reasoning: bool = False  # the `reasoning` parameter is supported (or the model reasons at all)
    reasoning_mandatory: bool = False  # reasoning cannot be turned off
    overrides: tuple[PriceOverride, ...] = ()  # higher prices for long prompts, lowest threshold first

    @property
    def usable_context(self) -> int:
        """Prompt plus answer tokens one request may hold: the smaller of the two context lengths (0: unknown)."""
        known = [n for n in (self.context_length, self.top_context_length) if n > 0]
        return min(known) if known else 0

    def prices_at(self, prompt_tokens: int) -> tuple[float, float]:
        """(prompt, completion) price per token for a request of `prompt_tokens` (the override it reaches)."""
        prompt, completion = self.prompt_price, self.completion_price
        for override in self.overrides:
            if prompt_tokens >= override.min_prompt_tokens:
                prompt, completion = override.prompt_price, override.completion_price
        return prompt, completion

    @property
    def takes_files(self) -> bool:
        return "file" in self.input_modalities

    @property
    def takes_images(self) -> bool:
        return "image" in self.input_modalities


@dataclass(frozen=True)
class Catalogue:
    """The models a run may use, and where the list came from."""

    models: Mapping[str, ModelInfo]
    source: Source
    note: str = ""  # why a fallback was used, for the user

    def get(self, model_id: str) -> ModelInfo:
        """The model, or a ConfigError naming the closest ids."""
        found = self.models.get(model_id)
        if found is not None:
            return found
        close = close_matches(model_id, list(self.models))
        hint = f"; did you mean {', '.join(close)}?" if close else "; see https://openrouter.ai/models"
        raise ConfigError(f"unknown model {model_id!r} (not in the {self.source} model list){hint}")


def cache_dir() -> Path:
    """Where the model catalogue (and the per-user answer history) is cached between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "docrouter"


def close_matches(model_id: str, ids: list[str], n: int = 3) -> list[str]:
    """Ids that share the name after the provider prefix first, then spelling neighbours."""
    name = model_id.rsplit("/", 1)[-1].lower()
    same_name = [i for i in ids if name and name in i.lower()]
    fuzzy = difflib.get_close_matches(model_id, ids, n=n, cutoff=0.6)
    return list(dict.fromkeys(same_name + fuzzy))[:n]


def answering_model(catalogue: Catalogue, model_id: str, fallbacks: tuple[str, ...] = ()) -> ModelInfo:
    """The model as routing and the budget see it when OpenRouter may answer with a fallback instead.

    Any of them may answer, so each price is the highest among them (an estimate or reservation never counts
    less than the most expensive would cost), and an input kind counts only if every one of them takes it.
    """
    model = catalogue.get(model_id)
    others = [catalogue.get(f) for f in fallbacks]
    if not others:
        return model
    every = [model, *others]
    contexts = [m.context_length for m in every if m.context_length]
    tops = [m.top_context_length for m in every if m.top_context_length]
    caps = [m.max_completion_tokens for m in every if m.max_completion_tokens]
    # Prompt-size overrides: at each threshold any of them has, the dearest price any of them charges there.
    thresholds = sorted({o.min_prompt_tokens for m in every for o in m.overrides})
    overrides = tuple(
        PriceOverride(t, max(m.prices_at(t)[0] for m in every), max(m.prices_at(t)[1] for m in every))
        for t in thresholds
    )
    return dataclasses.replace(
        model,
        input_modalities=frozenset.intersection(*(m.input_modalities for m in every)),
        prompt_price=max(m.prompt_price for m in every),
        completion_price=max(m.completion_price for m in every),
        image_price=max(m.image_price for m in every),
        request_price=max(m.request_price for m in every),
        reasoning_price=max(m.reasoning_price for m in every),
        context_length=min(contexts) if contexts else 0,
        top_context_length=min(tops) if tops else 0,
        max_completion_tokens=min(caps) if caps else None,
        reasoning_mandatory=any(m.reasoning_mandatory for m in every),
        overrides=overrides,
    )


def parse_models(payload: Any) -> dict[str, ModelInfo]:
    """ModelInfo by id from a GET /models body (new paginated or old `{"data": [...]}` form)."""
    items = payload.get("data") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        return {}
    models = (parse_model(item) for item in items if isinstance(item, dict))
    return {m.id: m for m in models if m is not None}


def parse_model(item: dict[str, Any]) -> ModelInfo | None:
    """One model object; None when it has no usable id."""
    model_id = item.get("id")
    if not isinstance(model_id, str) or not model_id:
        return None
    arch = _dict(item.get("architecture"))
    pricing = _dict(item.get("pricing"))
    top = _dict(item.get("top_provider"))
    reasoning = item.get("reasoning")
    parameters = item.get("supported_parameters")
    listed = isinstance(parameters, list) and ("reasoning" in parameters or "include_reasoning" in parameters)
    return ModelInfo(
        id=model_id,
        input_modalities=_modalities(arch),
        prompt_price=_price(pricing.get("prompt")),
        completion_price=_price(pricing.get("completion")),
        image_price=_price(pricing.get("image")),
        request_price=_price(pricing.get("request")),
        reasoning_price=_price(pricing.get("internal_reasoning")),
        context_length=_int(item.get("context_length")) or 0,
        max_completion_tokens=_int(top.get("max_completion_tokens")),
        tokenizer=str(arch.get("tokenizer") or ""),
        discount=_price(pricing.get("discount")),
        placeholder_price=any(_negative(pricing.get(name)) for name in ("prompt", "completion")),
        structured_outputs=supports_structured_outputs(item),
        top_context_length=_int(top.get("context_length")) or 0,
        reasoning=listed or isinstance(reasoning, dict),
        reasoning_mandatory=isinstance(reasoning, dict) and reasoning.get("mandatory") is True,
        overrides=parse_overrides(pricing),
    )


def supports_structured_outputs(item: dict[str, Any]) -> bool:
    """Whether a /models object lists `structured_outputs` among its supported parameters."""
    listed = item.get("supported_parameters")
    return isinstance(listed, list) and "structured_outputs" in listed


def parse_overrides(pricing: dict[str, Any]) -> tuple[PriceOverride, ...]:
    """The prompt-size overrides, lowest threshold first; a key an override omits keeps the default price."""
    found = []
    for item in pricing.get("overrides") or ():
        threshold = _int(item.get("min_prompt_tokens")) if isinstance(item, dict) else None
        if threshold is None or threshold < 0 or item.get("utc_start") or item.get("utc_end"):
            continue
        prompt = _price(item.get("prompt", pricing.get("prompt")))
        completion = _price(item.get("completion", pricing.get("completion")))
        found.append(PriceOverride(threshold, prompt, completion))
    return tuple(sorted(found, key=lambda o: o.min_prompt_tokens))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _modalities(arch: dict[str, Any]) -> frozenset[str]:
    """The input_modalities array; the drifting `modality` string only when the array is missing."""
    listed = arch.get("input_modalities")
    if isinstance(listed, list):
        return frozenset(str(m).lower() for m in listed)
    modality = arch.get("modality")
    if isinstance(modality, str) and "->" in modality:
        return frozenset(m.strip().lower() for m in modality.split("->", 1)[0].split("+") if m.strip())
    return frozenset({"text"})


def _price(value: Any) -> float:
    try:
        price = float(value)
    except (TypeError, ValueError):
        return 0.0
    return price if price > 0 and price != float("inf") else 0.0


def _negative(value: Any) -> bool:
    try:
        return float(value) < 0
    except (TypeError, ValueError):
        return False


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def fetch_all(fetch: Fetch, page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """Every model object, following `links.next`; ServerError when a page is not a model list."""
    items: dict[str, Any] = {}
    offset = 0
    for _ in range(MAX_PAGES):
        page = fetch(offset, page_size)
        data = page.get("data") if isinstance(page, dict) else None
        if not isinstance(data, list):
            raise ServerError("GET /models returned something that is not a model list")
        before = len(items)
        items.update((str(m.get("id")), m) for m in data if isinstance(m, dict))
        links = page.get("links")
        more = isinstance(links, dict) and bool(links.get("next"))
        if not more or len(items) == before:  # the end, or a server that ignores offset
            return {"data": list(items.values())}
        offset += len(data)
    raise ServerError(f"GET /models pagination did not end after {MAX_PAGES} pages")


def load_catalogue(
    fetch: Fetch | None,
    *,
    cache_path: Path,
    ttl_s: float = 3600,
    snapshot_path: Path | None = None,
    now: Callable[[], float] = time.time,
) -> Catalogue:
    """A fresh cache, else GET /models (cached), else a stale cache, else the offline snapshot.

    `fetch` None means offline: the snapshot only.
    """
    snapshot = snapshot_path or default_snapshot()
    if fetch is None:
        return Catalogue(read_snapshot(snapshot), "snapshot", "offline: the bundled model list")
    cached = read_cache(cache_path)
    if cached is not None and 0 <= now() - cached[0] < ttl_s:
        return Catalogue(cached[1], "cache")
    try:
        payload = fetch_all(fetch)
        models = parse_models(payload)
        if not models:
            raise ServerError("GET /models listed no usable model")
    except (DocrouterError, OSError, ValueError, TypeError) as exc:
        return _fallback(f"GET /models failed ({_one_line(exc)})", cached, snapshot, now())
    note = write_cache(cache_path, payload, now())
    return Catalogue(models, "api", note)


def _fallback(why: str, cached: tuple[float, dict[str, ModelInfo]] | None, snapshot: Path, at: float) -> Catalogue:
    if cached is not None:
        age_h = max(0.0, at - cached[0]) / 3600
        return Catalogue(cached[1], "cache", f"{why}; using the cached list from {age_h:.1f} h ago")
    try:
        return Catalogue(read_snapshot(snapshot), "snapshot", f"{why}; using the bundled model list")
    except ConfigError as exc:
        raise ConfigError(f"no model catalogue: {why}, and {exc.message}") from None


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc or type(exc).__name__)
    return " ".join(text.split())[:200]


def default_snapshot() -> Path:
    """data/models.json at the repository root, else a copy shipped inside the package."""
    return next((p for p in SNAPSHOT_CANDIDATES if p.is_file()), SNAPSHOT_CANDIDATES[0])


def read_snapshot(path: Path) -> dict[str, ModelInfo]:
    """The offline model list; ConfigError when it is missing or empty."""
    try:
        models = parse_models(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the offline model list {path} cannot be read: {_one_line(exc)}") from None
    if not models:
        raise ConfigError(f"the offline model list {path} lists no model")
    return models


def cache_name(base_url: str) -> str:
    """The cache file name for one API base URL (lists differ between OpenRouter and an emulator)."""
    slug = "".join(c if c.isalnum() else "-" for c in base_url.split("://", 1)[-1]).strip("-")[:80]
    return f"models-{slug}.json"


def read_cache(path: Path) -> tuple[float, dict[str, ModelInfo]] | None:
    """(fetched_at, models) from the cache file; None when absent or unusable (it is only a cache)."""
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(cached, dict) or not isinstance(cached.get("fetched_at"), int | float):
        return None
    models = parse_models(cached.get("payload"))
    return (float(cached["fetched_at"]), models) if models else None


def write_cache(path: Path, payload: dict[str, Any], fetched_at: float) -> str:
    """Write the cache atomically; a note (not an error) when it cannot be written."""
    body = json.dumps({"fetched_at": fetched_at, "payload": payload})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".models-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(body)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        return f"the model list could not be cached at {path}: {_one_line(exc)}"
    return ""
