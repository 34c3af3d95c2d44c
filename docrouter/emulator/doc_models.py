"""Models named by OpenRouter's documentation examples but absent from data/models.json.

The emulator serves them too, so the documentation's examples run against it unchanged. Prices are
approximate list prices (claude-sonnet-4: verbatim from a 2026 capture); they are marked as such.
"""

from __future__ import annotations

from typing import Any


def _model(
    model_id: str,
    name: str,
    modalities: list[str],
    prices: tuple[str, str],
    limits: tuple[int, int],
    tokenizer: str,
) -> dict[str, Any]:
    """One /models object in the current shape (zero prices omitted)."""
    context, max_completion = limits
    return {
        "id": model_id,
        "canonical_slug": model_id,
        "hugging_face_id": "",
        "name": name,
        "created": 1750000000,
        "description": f"{name} (docrouter emulator: a model named by OpenRouter's documentation examples; "
        "prices approximate).",
        "context_length": context,
        "architecture": {
            "modality": "+".join(modalities) + "->text",
            "input_modalities": modalities,
            "output_modalities": ["text"],
            "tokenizer": tokenizer,
            "instruct_type": None,
        },
        "pricing": {"prompt": prices[0], "completion": prices[1]},
        "top_provider": {"context_length": context, "max_completion_tokens": max_completion, "is_moderated": False},
        "per_request_limits": None,
        "supported_parameters": ["max_tokens", "temperature", "top_p", "stop", "seed"],
        "default_parameters": {"temperature": None, "top_p": None, "frequency_penalty": None},
        "supported_voices": None,
        "links": {"details": f"/api/v1/models/{model_id}/endpoints"},
    }


DOC_MODELS: list[dict[str, Any]] = [
    _model(
        "google/gemma-3-27b-it",
        "Google: Gemma 3 27B",
        ["text", "image"],
        ("0.00000009", "0.00000017"),
        (131072, 16384),
        "Gemini",
    ),
    _model(
        "google/gemini-3-flash-preview",
        "Google: Gemini 3 Flash Preview",
        ["text", "image", "file", "audio", "video"],
        ("0.0000005", "0.000003"),
        (1048576, 65535),
        "Gemini",
    ),
    _model(
        "anthropic/claude-sonnet-4",
        "Anthropic: Claude Sonnet 4",
        ["image", "text", "file"],
        ("0.000003", "0.000015"),
        (1000000, 64000),
        "Claude",
    ),
]
