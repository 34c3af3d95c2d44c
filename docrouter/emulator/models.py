"""The emulator's model catalogue: data/models.json (what GET /models serves and what prices bill)."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docrouter.catalogue import ModelInfo, default_snapshot, supports_structured_outputs
from docrouter.emulator.doc_models import DOC_MODELS
from docrouter.emulator.thinking import ReasoningKnob, listed

DEFAULT_MODELS_PATH = default_snapshot()  # the repository's data/models.json, or the copy in the wheel

_PROVIDERS = {
    "google": "Google",
    "anthropic": "Anthropic",
    "openai": "OpenAI",
    "mistralai": "Mistral",
    "meta-llama": "DeepInfra",
    "qwen": "DeepInfra",
}


@dataclass(frozen=True)
class EmulatedModel:
    """One model: its prices and capabilities, the provider it answers as, and its raw /models object."""

    info: ModelInfo
    provider: str
    raw: dict[str, Any]
    reasoning: ReasoningKnob | None = None  # None: the model does not reason

    @property
    def id(self) -> str:
        return self.info.id


def _price(pricing: dict[str, Any], key: str) -> float:
    """A decimal-string price; a missing key is 0 (the 2026 API omits zero prices)."""
    return float(pricing.get(key) or 0)


def model_from_json(raw: dict[str, Any]) -> EmulatedModel:
    """An EmulatedModel from one /models object."""
    architecture = raw.get("architecture") or {}
    pricing = raw.get("pricing") or {}
    top = raw.get("top_provider") or {}
    info = ModelInfo(
        id=raw["id"],
        input_modalities=frozenset(architecture.get("input_modalities") or ("text",)),
        prompt_price=_price(pricing, "prompt"),
        completion_price=_price(pricing, "completion"),
        image_price=_price(pricing, "image"),
        request_price=_price(pricing, "request"),
        context_length=int(raw.get("context_length") or top.get("context_length") or 0),
        max_completion_tokens=top.get("max_completion_tokens"),
        tokenizer=str(architecture.get("tokenizer") or ""),
        structured_outputs=supports_structured_outputs(raw),
        top_context_length=int(top.get("context_length") or 0),
    )
    provider = _PROVIDERS.get(info.id.split("/")[0], "Emulated Provider")
    return EmulatedModel(info=info, provider=provider, raw=raw)


def load_models(path: Path | None = None, *, with_doc_models: bool = True) -> dict[str, EmulatedModel]:
    """The catalogue by model id: the snapshot at `path` (default data/models.json), plus the doc models."""
    listed = json.loads(Path(path or DEFAULT_MODELS_PATH).read_text(encoding="utf-8"))["data"]
    models: dict[str, EmulatedModel] = {}
    for raw in [*listed, *(DOC_MODELS if with_doc_models else [])]:
        models.setdefault(raw["id"], model_from_json(raw))
    return models


def with_reasoning(models: dict[str, EmulatedModel], knobs: Mapping[str, ReasoningKnob]) -> dict[str, EmulatedModel]:
    """The catalogue with reasoning knobs applied (listed in /models as the API lists reasoning models)."""
    unknown = sorted(set(knobs) - set(models))
    if unknown:
        raise ValueError(f"reasoning knob for unknown model(s): {', '.join(unknown)}")
    updated = dict(models)
    for model_id, knob in knobs.items():
        model = models[model_id]
        updated[model_id] = EmulatedModel(model.info, model.provider, listed(model.raw, knob), knob)
    return updated


def models_page(
    models: dict[str, EmulatedModel], *, offset: int, limit: int, input_modalities: frozenset[str], prefix: str
) -> dict[str, Any]:
    """One page of GET /models in the current paginated form (`data`, `total_count`, `links.next`)."""
    matching = [m for m in models.values() if input_modalities <= m.info.input_modalities]
    page = [copy.deepcopy(m.raw) for m in matching[offset : offset + limit]]
    more = offset + limit < len(matching)
    following = f"{prefix}/models?offset={offset + limit}&limit={limit}" if more else None
    return {"data": page, "total_count": len(matching), "links": {"next": following}}
