"""Provider preferences: the `provider` object checked as the API does, and which endpoint answers."""

from __future__ import annotations

import dataclasses
from typing import Any

from docrouter.emulator.intake import ChatRequest, Rejection
from docrouter.emulator.models import EmulatedModel

# Every emulated model is served by its own provider and these two; by price, throughput and latency the
# best endpoint is the one at this index, so a test can see a preference in the answering `provider`.
EXTRA_PROVIDERS = ("DeepInfra", "Together")
BEST_INDEX = {"price": 1, "throughput": 2, "latency": 0}
PREFERENCE_KEYS = frozenset(
    {
        *("order", "allow_fallbacks", "require_parameters", "data_collection", "zdr", "enforce_distillable_text"),
        *("only", "ignore", "quantizations", "sort", "preferred_min_throughput", "preferred_max_latency"),
        "max_price",
    }
)


def endpoints(model: EmulatedModel) -> tuple[str, ...]:
    """The providers serving `model`, its own first."""
    return tuple(dict.fromkeys((model.provider, *EXTRA_PROVIDERS)))


def slug(provider: str) -> str:
    """A provider's name as `provider.order` spells it ("DeepInfra" -> "deepinfra")."""
    return provider.lower().replace(" ", "-")


def routed(chat: ChatRequest) -> ChatRequest:
    """The request with its model answering as the endpoint its `provider` preferences pick."""
    preferences = check_preferences(chat.options.get("provider"))
    provider = choose_provider(chat.model, preferences)
    return dataclasses.replace(chat, model=dataclasses.replace(chat.model, provider=provider))


def check_preferences(value: Any) -> dict[str, Any]:
    """The `provider` object ({} when absent); unknown keys or bad values are a 400, as the schema says."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Rejection(400, "provider: an object of provider preferences is expected")
    unknown = sorted(set(value) - PREFERENCE_KEYS)
    if unknown:
        raise Rejection(400, f"provider: unknown field(s) {', '.join(unknown)}")
    if value.get("data_collection", "allow") not in ("allow", "deny"):
        raise Rejection(400, "provider.data_collection must be 'allow' or 'deny'")
    if not isinstance(value.get("zdr", False), bool):
        raise Rejection(400, "provider.zdr must be a boolean")
    order = value.get("order", [])
    if not isinstance(order, list) or not all(isinstance(o, str) for o in order):
        raise Rejection(400, "provider.order must be an array of provider slugs")
    if _sort_by(value) not in (None, *BEST_INDEX, "exacto"):
        raise Rejection(400, f"provider.sort must be one of {', '.join(BEST_INDEX)}")
    return value


def _sort_by(preferences: dict[str, Any]) -> Any:
    sort = preferences.get("sort")
    return sort.get("by") if isinstance(sort, dict) else sort


def choose_provider(model: EmulatedModel, preferences: dict[str, Any]) -> str:
    """The first serving provider of `order`, else the best by `sort`, else the model's own."""
    serving = endpoints(model)
    by_slug = {slug(p): p for p in serving}
    for wanted in preferences.get("order") or ():
        found = by_slug.get(wanted.lower().split("/")[0])
        if found is not None:
            return found
    if preferences.get("order") and preferences.get("allow_fallbacks") is False:
        raise Rejection(404, "No endpoints found matching your provider preferences", error_type="not_found")
    index = BEST_INDEX.get(_sort_by(preferences), 0)
    return serving[min(index, len(serving) - 1)]
