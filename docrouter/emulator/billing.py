"""What a request costs: token counts (the one token table), prices from the catalogue, the OCR fee.

usage.cost = prompt_tokens * prompt price + completion_tokens * completion price + images * image price
             + request price + OCR pages * OCR fee (per page; $2 per 1,000 pages unless configured).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from docrouter.catalogue import ModelInfo

DEFAULT_OCR_FEE_PER_PAGE = 0.002

# Tokens per native PDF page by model family: (page that is an image, page with a text layer).
PAGE_TOKENS = {"gemini": (258, 258), "claude": (1600, 2200), "gpt": (1000, 1000)}
OTHER_PAGE_TOKENS = (800, 800)
IMAGE_TOKENS_CAP = 1568
GEMINI_IMAGE_TOKENS = 258
URL_IMAGE_SIZE = (1024, 768)  # an image URL before emulator.remote downloads it and reads its real size


def family(model: ModelInfo) -> str:
    """gemini, claude, gpt or other: from the tokenizer, else from the model id."""
    text = f"{model.tokenizer} {model.id}".lower()
    for name in ("gemini", "claude", "gpt"):
        if name in text:
            return name
    return "other"


def text_tokens(chars: int) -> int:
    """The emulator's tokenizer: one token per four characters, rounded up."""
    return math.ceil(chars / 4)


def image_tokens(model: ModelInfo, width: int, height: int) -> int:
    """Tokens for one input image: a flat 258 on Gemini, else one per 750 pixels up to 1568."""
    if family(model) == "gemini":
        return GEMINI_IMAGE_TOKENS
    return min(IMAGE_TOKENS_CAP, math.ceil(width * height / 750))


def native_pdf_tokens(model: ModelInfo, pages_with_text: tuple[bool, ...]) -> int:
    """Tokens for a PDF read natively by the model, page by page."""
    image_page, text_page = PAGE_TOKENS.get(family(model), OTHER_PAGE_TOKENS)
    return sum(text_page if has_text else image_page for has_text in pages_with_text)


NO_ENDPOINT_AT_PRICE = (
    "No endpoints found matching your price limits (provider.max_price). To learn more about provider "
    "routing, visit: https://openrouter.ai/docs/guides/routing/provider-selection"
)


def billed_prices(model: ModelInfo, multiplier: float) -> ModelInfo:
    """The model at the prices its provider bills today (`multiplier` times what /models lists)."""
    if multiplier == 1.0:
        return model
    return dataclasses.replace(
        model,
        prompt_price=model.prompt_price * multiplier,
        completion_price=model.completion_price * multiplier,
        image_price=model.image_price * multiplier,
        request_price=model.request_price * multiplier,
    )


def over_max_price(model: ModelInfo, max_price: dict[str, float]) -> bool:
    """Whether the billed prices exceed provider.max_price (prompt/completion per million tokens)."""
    prices = {
        "prompt": model.prompt_price * 1_000_000,
        "completion": model.completion_price * 1_000_000,
        "image": model.image_price,
        "request": model.request_price,
    }
    return any(prices[name] > limit * (1 + 1e-9) for name, limit in max_price.items() if name in prices)


@dataclass(frozen=True)
class Charge:
    """The money side of one request, in USD, with the counts it came from."""

    prompt_tokens: int
    completion_tokens: int
    images: int
    ocr_pages: int
    prompt_cost: float
    completion_cost: float
    image_cost: float
    request_cost: float
    parse_cost: float

    @property
    def total(self) -> float:
        return self.prompt_cost + self.completion_cost + self.image_cost + self.request_cost + self.parse_cost


def charge(
    model: ModelInfo, *, prompt_tokens: int, completion_tokens: int, images: int, ocr_pages: int, ocr_fee: float
) -> Charge:
    """What these counts cost on `model`."""
    return Charge(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        images=images,
        ocr_pages=ocr_pages,
        prompt_cost=prompt_tokens * model.prompt_price,
        completion_cost=completion_tokens * model.completion_price,
        image_cost=images * model.image_price,
        request_cost=model.request_price,
        parse_cost=ocr_pages * ocr_fee,
    )


def parse_fee_only(model: ModelInfo, ocr_pages: int, ocr_fee: float) -> Charge:
    """What a request that failed after its file was parsed still costs: the parse fee alone."""
    return Charge(0, 0, 0, ocr_pages, 0.0, 0.0, 0.0, 0.0, ocr_pages * ocr_fee)


def unaffordable_message(worst: Charge, model: ModelInfo, max_tokens: int, remaining: float) -> str:
    """The documented 402 text for a request whose worst case is over the remaining credits."""
    fixed = worst.total - worst.completion_cost
    if fixed > remaining:
        left = max(0.0, remaining - worst.parse_cost - worst.request_cost)
        affordable_prompt = int(left / model.prompt_price) if model.prompt_price else 0
        return f"Prompt tokens limit exceeded: {worst.prompt_tokens} > {affordable_prompt}"
    affordable = int((remaining - fixed) / model.completion_price) if model.completion_price else max_tokens
    return (
        f"This request requires more credits, or fewer max_tokens. You requested up to {max_tokens} tokens, "
        f"but can only afford {affordable}. To increase, visit https://openrouter.ai/settings/credits and "
        "upgrade to a paid account"
    )


def usage_body(bill: Charge, *, byok: bool = False, reasoning: int = 0) -> dict[str, Any]:
    """The full `usage` object as recorded (2025-12, 2026-08): the OCR fee is only inside `cost` (cost minus
    the two upstream costs); there is no file_parser field or cost item. `reasoning`: of completion_tokens.

    BYOK: the provider bills the user's own key (upstream_inference_cost) and `cost` is what OpenRouter
    bills, the OCR fee (its own Mistral key) and the request fee.
    """
    upstream = bill.prompt_cost + bill.image_cost + bill.completion_cost
    return {
        "prompt_tokens": bill.prompt_tokens,
        "completion_tokens": bill.completion_tokens,
        "total_tokens": bill.prompt_tokens + bill.completion_tokens,
        "cost": bill.total - upstream if byok else bill.total,
        "is_byok": byok,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0, "audio_tokens": 0, "video_tokens": 0},
        "cost_details": {
            "upstream_inference_cost": upstream,
            "upstream_inference_prompt_cost": bill.prompt_cost + bill.image_cost,
            "upstream_inference_completions_cost": bill.completion_cost,
        },
        "completion_tokens_details": {"reasoning_tokens": reasoning, "image_tokens": 0, "audio_tokens": 0},
    }
