"""The model catalogue: capabilities and prices from GET /models, cached, with an offline snapshot."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    """One model's capabilities and prices (USD per unit; a missing price is 0)."""

    id: str
    input_modalities: frozenset[str]
    prompt_price: float  # per input token
    completion_price: float  # per output token
    image_price: float = 0.0  # per input image
    request_price: float = 0.0  # per request
    context_length: int = 0
    max_completion_tokens: int | None = None
    tokenizer: str = ""

    @property
    def takes_files(self) -> bool:
        return "file" in self.input_modalities

    @property
    def takes_images(self) -> bool:
        return "image" in self.input_modalities
